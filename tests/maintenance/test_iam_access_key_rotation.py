from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.approvals import decision as plan_decision
from matcarv_aiops.maintenance import iam_keys
from tests.maintenance.helpers import backdate_access_key

NOW = datetime.now(UTC)


@pytest.fixture
def iam(aws):
    return boto3.client("iam", region_name="us-east-1")


def _user(iam, name: str, key_ages: list[float], tags: dict | None = None) -> list[str]:
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    keys = []
    for age in key_ages:
        key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
        backdate_access_key(name, key, age)
        keys.append(key)
    return keys


def _keys(iam, name: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]}


def _secret(name: str) -> dict:
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    return json.loads(sm.get_secret_value(SecretId=f"aiops/iam-access-keys/{name}")["SecretString"])


def test_old_key_is_rotated_into_secrets_manager_and_deactivated(aws, iam, clients, run_for, audit_rows):
    [old] = _user(iam, "ci-bot", [120])
    [fresh] = _user(iam, "fresh", [10])
    [prod] = _user(iam, "prod-bot", [200], {"Environment": "prod"})
    [exempt] = _user(iam, "legacy", [200], {"aiops:exempt": "true"})
    summary = iam_keys.rotate(aws, clients, run_for("iam_access_key_rotation"), now=NOW)

    assert summary["rotated"] == 1 and summary["production"] == 1 and summary["exempt"] == 1
    keys = _keys(iam, "ci-bot")
    [new] = [k for k in keys if k != old]
    assert keys == {old: "Inactive", new: "Active"}
    secret = _secret("ci-bot")
    assert secret["AccessKeyId"] == new and secret["SecretAccessKey"]
    assert _keys(iam, "fresh") == {fresh: "Active"}
    assert _keys(iam, "prod-bot") == {prod: "Active"} and _keys(iam, "legacy") == {exempt: "Active"}
    rows = audit_rows("iam_access_key_rotation")
    assert sorted(r["action"].split()[0] for r in rows) == ["created", "deactivated"]
    assert all(r["targetResource"].endswith(":user/ci-bot") and r["outcome"] == "SUCCESS" for r in rows)
    assert summary["approval"] is None  # nothing past its grace period yet


def test_inactive_key_past_grace_is_deleted_only_with_approval(aws, iam, clients, run_for, audit_rows):
    [old] = _user(iam, "svc", [120])
    iam_keys.rotate(aws, clients, run_for("iam_access_key_rotation", "week1"), now=NOW)
    later = NOW + timedelta(days=aws.maintenance.access_key_grace_days + 1)
    run = run_for("iam_access_key_rotation", "week3")
    summary = iam_keys.rotate(aws, clients, run, now=later)
    assert summary["deletion_plan"]["count"] == 1
    execution = summary["approval"]["execution_id"]
    assert plan_decision(aws, execution) is None
    assert old in _keys(iam, "svc")

    ApprovalStore(aws).decide(execution, approve=True, approver="carol", reason="grace over")
    result = iam_keys.delete_keys(
        aws, clients, run, now=later, xcom={"summary": summary, "decision": plan_decision(aws, execution)}
    )
    assert result["deleted"] == 1 and old not in _keys(iam, "svc")
    deleted = [r for r in audit_rows() if r["action"].startswith("deleted access key")]
    assert len(deleted) == 1 and deleted[0]["operator"] == "carol"


def test_a_key_reactivated_before_deletion_is_kept(aws, iam, clients, run_for):
    [old] = _user(iam, "svc", [120])
    iam_keys.rotate(aws, clients, run_for("iam_access_key_rotation", "w1"), now=NOW)
    run = run_for("iam_access_key_rotation", "w3")
    later = NOW + timedelta(days=30)
    summary = iam_keys.rotate(aws, clients, run, now=later)
    execution = summary["approval"]["execution_id"]
    ApprovalStore(aws).decide(execution, approve=True, approver="dan", reason="grace over")
    iam.update_access_key(UserName="svc", AccessKeyId=old, Status="Active")
    result = iam_keys.delete_keys(
        aws, clients, run, now=later, xcom={"summary": summary, "decision": plan_decision(aws, execution)}
    )
    assert result == {
        "deleted": 0,
        "reactivated_since": 1,
        "skipped": 1,
        "not_authorised": 0,
        "decision": "approved",
    }
    assert _keys(iam, "svc")[old] == "Active"


def test_user_with_two_keys_is_explained_not_rotated(aws, iam, clients, run_for, audit_rows):
    keys = _user(iam, "two", [200, 150])
    summary = iam_keys.rotate(aws, clients, run_for("iam_access_key_rotation"), now=NOW)
    assert summary["two_keys"] == 1 and _keys(iam, "two") == {k: "Active" for k in keys}
    [row] = audit_rows()
    assert row["outcome"] == "SKIPPED" and "already has two keys" in row["action"]


def test_crash_after_creating_the_key_is_finished_by_the_next_run(
    aws, iam, clients, run_for, audit_rows, monkeypatch
):
    [old] = _user(iam, "svc", [120])
    sm = clients("secretsmanager")
    monkeypatch.setattr(sm, "create_secret", lambda **kw: (_ for _ in ()).throw(SystemExit("worker killed")))
    with pytest.raises(SystemExit):
        iam_keys.rotate(aws, clients, run_for("iam_access_key_rotation", "crashed"), now=NOW)
    assert len(_keys(iam, "svc")) == 2  # a new key exists whose secret nobody has
    monkeypatch.undo()

    from matcarv_aiops.maintenance.common import Clients

    summary = iam_keys.rotate(aws, Clients(aws), run_for("iam_access_key_rotation", "rerun"), now=NOW)
    assert summary["orphans_deleted"] == 1 and summary["rotated"] == 1
    keys = _keys(iam, "svc")
    [new] = [k for k in keys if k != old]
    assert keys == {old: "Inactive", new: "Active"} and _secret("svc")["AccessKeyId"] == new
    actions = sorted(r["action"].split()[0] for r in audit_rows())
    assert actions == ["created", "deactivated", "deleted"]


def test_throttled_iam_calls_are_retried(aws, iam, clients, run_for, throttle):
    [old] = _user(iam, "svc", [120])
    throttled = throttle("ListAccessKeys", 2)
    throttle("UpdateAccessKey", 1)
    assert iam_keys.rotate(aws, clients, run_for("iam_access_key_rotation"), now=NOW)["rotated"] == 1
    assert throttled["ListAccessKeys"] == 2 and throttled["UpdateAccessKey"] == 1
    assert _keys(iam, "svc")[old] == "Inactive"


def test_a_key_of_a_user_recreated_since_the_plan_is_not_counted_deleted(
    aws, iam, clients, run_for, audit_rows
):
    [old] = _user(iam, "svc", [120])
    iam_keys.rotate(aws, clients, run_for("iam_access_key_rotation", "w1"), now=NOW)
    later = NOW + timedelta(days=30)
    run = run_for("iam_access_key_rotation", "w3")
    summary = iam_keys.rotate(aws, clients, run, now=later)
    execution = summary["approval"]["execution_id"]
    ApprovalStore(aws).decide(execution, approve=True, approver="erin", reason="grace over")
    for key in list(_keys(iam, "svc")):  # someone deletes the user and makes a new one of that name
        iam.delete_access_key(UserName="svc", AccessKeyId=key)
    iam.delete_user(UserName="svc")
    iam.create_user(UserName="svc")
    result = iam_keys.delete_keys(
        aws, clients, run, now=later, xcom={"summary": summary, "decision": plan_decision(aws, execution)}
    )
    assert result["deleted"] == 0 and result["skipped"] == 1
    [row] = [r for r in audit_rows() if old in r["action"] and r["outcome"] == "SKIPPED"]
    assert "is another user now" in row["action"]


def test_a_retried_rotate_keeps_the_deletion_plan_already_recorded(aws, iam, clients, run_for):
    _user(iam, "svc", [120])
    iam_keys.rotate(aws, clients, run_for("iam_access_key_rotation", "w1"), now=NOW)
    run = run_for("iam_access_key_rotation", "w3")
    later = NOW + timedelta(days=30)
    first = iam_keys.rotate(aws, clients, run, now=later)
    _user(iam, "another", [120])  # a retried rotate rotates it, but the approved plan stays the first one
    again = iam_keys.rotate(aws, clients, run, now=later)
    assert again == first and first["deletion_plan"]["count"] == 1
    request = ApprovalStore(aws).get(first["approval"]["execution_id"])
    assert request is not None and request.plan_digest == first["deletion_plan"]["digest"]
