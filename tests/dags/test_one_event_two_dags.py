"""One Config result that matches two catalogue entries starts two DAG runs: each acts on its own resource
and writes its own audit record under its own execution id."""

from __future__ import annotations

from tests.events import config_compliance_event
from tests.remediations.iam_setup import key_status, user_with_keys
from tests.remediations.stubs import stubbed_clients
from tests.remediations.test_config_rule_noncompliant import RULE, _findings, _rule_is_described


def test_access_keys_rotated_result_runs_both_dags(run_dag, audit_items, monkeypatch):
    iam, user_id, (old,) = user_with_keys("deploy-bot", [150])
    config = stubbed_clients(monkeypatch)("config")
    _rule_is_described(config, [("AWS::IAM::User", user_id)])
    event = config_compliance_event(RULE, "AWS::IAM::User", user_id)

    for dag_id in ("remediate_iam_access_key_old", "remediate_config_rule_noncompliant"):
        _, states = run_dag(dag_id, {"event": event})
        assert states["audit"] == "success", (dag_id, states)

    assert key_status(iam, "deploy-bot") == {old: "Inactive"}
    assert [f["Resources"][0]["Id"] for f in _findings()] == [user_id]
    records = {item["runbook"]: item for item in audit_items()}
    assert set(records) == {"remediate_iam_access_key_old", "remediate_config_rule_noncompliant"}
    assert {r["outcome"] for r in records.values()} == {"SUCCESS"}
    assert len({r["executionId"] for r in records.values()}) == 2
