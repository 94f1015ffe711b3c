"""The manage_exemption DAG, triggered as a human would from its Params form (dag.test), against moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from matcarv_aiops.audit import AuditQuery, query_audit
from matcarv_aiops.exemptions import EXEMPT_RUNBOOK
from matcarv_aiops.safety import SafetyStore

TARGET = "arn:aws:s3:::dag-exempted-bucket"


def _records(settings) -> list:
    now = datetime.now(UTC)
    query = AuditQuery(since=now - timedelta(hours=1), until=now + timedelta(minutes=1), target=TARGET)
    return query_audit(settings, query).records


def test_add_then_remove_from_the_form_each_audited_as_the_triggering_user(run_dag, aws):
    _, states = run_dag(
        "manage_exemption",
        {
            "action": "add",
            "target": TARGET,
            "owner": "web-team",
            "reason": "public website",
            "expiry_days": 2,
        },
    )
    assert states == {"change_exemption": "success"}
    exemption = SafetyStore(aws).exemption_of(TARGET)
    assert exemption is not None and (exemption.owner, exemption.reason) == ("web-team", "public website")
    left = exemption.expires_at - datetime.now(UTC)
    assert timedelta(days=2) - timedelta(minutes=5) < left <= timedelta(days=2)

    _, states = run_dag(
        "manage_exemption",
        {"action": "remove", "target": TARGET, "owner": "", "reason": "site moved", "expiry_days": 1},
    )
    assert states == {"change_exemption": "success"}
    assert SafetyStore(aws).exemption_of(TARGET) is None
    records = _records(aws)
    assert [r.runbook for r in records] == [EXEMPT_RUNBOOK, EXEMPT_RUNBOOK]
    assert {r.operator for r in records} == {"dag_test"}  # dag.test()'s triggering user
    removed, added = records  # newest first
    assert "exempted from automated remediation until" in added.action and "web-team" in added.action
    assert "exemption removed" in removed.action and "site moved" in removed.action


def test_the_form_refuses_an_expiry_beyond_the_maximum_and_a_non_arn_before_running(dagbag, aws):
    from airflow.sdk.definitions.param import ParamsDict, ParamValidationError

    dag = dagbag.get_dag("manage_exemption")
    good = {"action": "add", "target": TARGET, "owner": "o", "reason": "why not", "expiry_days": 3}
    ParamsDict(dag.params).update(good)  # accepted as it is
    for bad in ({"expiry_days": aws.safety.exemption_max_days + 1}, {"expiry_days": 0}, {"target": "bucket"}):
        (name,) = bad
        with pytest.raises(ParamValidationError, match=f"Invalid input for param {name}"):
            ParamsDict(dag.params).update(good | bad)
    assert SafetyStore(aws).exemption_of(TARGET) is None
