"""Fault cases of the maintenance deletions (EBS snapshot retention, IAM access key deletion): a forged
decision or plan in XCom, a plan changed in S3 after its approval, an approval that expired before the
deletion, and items that became production, exempt or AMI-used between the plan and the deletion.

The deleting task must delete nothing it is not allowed to, and say why. The four invariants, as the
maintenance jobs define their records: (1) no DeleteSnapshot/DeleteAccessKey repeated; (2) every deleted
item has exactly one SUCCESS record, every skipped item its SKIPPED record, and a refused run exactly one
FAILURE record; (3) no event lost (no events here: 0); (4) no decision by anyone outside the group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matcarv_aiops import approvals
from matcarv_aiops.maintenance import ebs_snapshots, iam_keys
from matcarv_aiops.maintenance.common import Clients, PlanRefused, RunInfo
from matcarv_aiops.safety import SafetyStore
from tests.faults.invariants import ActionLog, Invariants, audit_records, check
from tests.maintenance.helpers import (
    REGION,
    REGION_RULE,
    attach_snapshot_to_ami,
    backdate_access_key,
    backdate_snapshot,
    rbin_client,
)

APPROVERS = ["alice"]
NOW = datetime.now(UTC)
DELETES = ("DeleteSnapshot", "DeleteAccessKey")


# --- setting the scene -----------------------------------------------------------------------------
@pytest.fixture
def ec2(aws, monkeypatch):
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # 1,300 snapshots that only slow things down
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def iam(aws):
    return boto3.client("iam", region_name=REGION)


def _snapshot(ec2, days: float, name: str) -> str:
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    snapshot = ec2.create_snapshot(
        VolumeId=volume,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": name}]}],
    )["SnapshotId"]
    backdate_snapshot(snapshot, days)
    return snapshot


def _exists(ec2, snapshot: str) -> bool:
    found = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": [snapshot]}])
    return bool(found["Snapshots"])


def _ebs_run(run_id: str = "scheduled__2026-11-27T02:00:00+00:00") -> RunInfo:
    return RunInfo("ebs_snapshot_retention", run_id, datetime(2026, 11, 27, 2, tzinfo=UTC))


def _ebs_clients(settings, rules: list[dict]) -> Clients:
    rbin, _ = rbin_client(rules)
    return Clients(settings, overrides={"rbin": rbin})


def _planned_and_approved(aws, ec2, *, rules: list[dict], snapshots: int = 1):
    """Old snapshots without a Recycle Bin rule, their plan, and alice's approval of it."""
    ids = [_snapshot(ec2, 45, f"old-{i}") for i in range(snapshots)]
    run, clients = _ebs_run(), _ebs_clients(aws, rules)
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    execution = summary["approval"]["execution_id"]
    approvals.decide(aws, execution, approve=True, approver="alice", reason="old")
    return ids, run, clients, summary, execution


def _delete_ebs(aws, clients, run, summary, decision) -> dict:
    return ebs_snapshots.execute(
        aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": decision}
    )


def _expire(aws, execution: str) -> None:
    """Time passes: the approval's expiry is now in the past (the store's own record of it)."""
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=aws.platform.approvals_table,
        Key={"executionId": {"S": execution}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"S": "2026-01-01T00:00:00.000Z"}},
    )


# --- the invariants as the maintenance jobs define their records ------------------------------------
def _records_not_one(aws, actions: ActionLog, *, runbook: str, skipped: list[str], refused: bool) -> int:
    """How many items lack exactly one true record: each deleted item one SUCCESS record naming it (and
    none for an item not deleted), each skipped item its SKIPPED record, a refused run one FAILURE."""
    rows = [r for r in audit_records(aws).values() if r["runbook"] == runbook]
    deleted = [
        params.get("SnapshotId") or params.get("AccessKeyId")
        for _, op, params in actions.calls
        if op in DELETES
    ]
    success = [r for r in rows if r["outcome"] == "SUCCESS" and r["action"].startswith("deleted")]
    wrong = sum(1 for item in deleted if sum(item in r["action"] for r in success) != 1)
    wrong += sum(1 for r in success if not any(item and item in r["action"] for item in deleted))
    wrong += sum(
        1 for item in skipped if sum(r["outcome"] == "SKIPPED" and item in r["action"] for r in rows) != 1
    )
    failures = [r for r in rows if r["outcome"] == "FAILURE" and r["action"].startswith("refused")]
    wrong += abs(len(failures) - (1 if refused else 0))
    return wrong


def _invariants(aws, actions: ActionLog, *, runbook: str, skipped=(), refused: bool = False) -> Invariants:
    base = check(aws, actions=actions, approver_group=APPROVERS)
    return Invariants(
        double_actions=actions.double_actions(DELETES),
        executions_without_one_record=base.executions_without_one_record
        + _records_not_one(aws, actions, runbook=runbook, skipped=list(skipped), refused=refused),
        events_lost=base.events_lost,
        unauthorised_decisions=base.unauthorised_decisions,
    )


def _audit_cell(aws, runbook: str, outcome: str) -> str:
    rows = [r for r in audit_records(aws).values() if r["runbook"] == runbook and r["outcome"] == outcome]
    assert rows, f"no {outcome} record"
    return f"{outcome}: {rows[0]['action'][:110]}" + (f" (+{len(rows) - 1} more)" if len(rows) > 1 else "")


@contextmanager
def _recorded() -> Iterator[ActionLog]:
    log = ActionLog()
    with log.record():
        yield log


# --- EBS snapshot retention --------------------------------------------------------------------------
def test_a_decision_forged_in_xcom_deletes_nothing(aws, ec2, fault_report):
    [old] = [_snapshot(ec2, 45, "old")]
    run, clients = _ebs_run(), _ebs_clients(aws, [])
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    execution = summary["approval"]["execution_id"]
    approvals.decide(aws, execution, approve=False, approver="alice", reason="keep it")
    forged = {"decision": "approved", "operator": "alice", "reason": "edited in the UI"}
    with (
        _recorded() as actions,
        pytest.raises(
            PlanRefused,
            match=r"decision in XCom \(approved by alice\) is not .* \(rejected by alice\)",
        ) as refused,
    ):
        _delete_ebs(aws, clients, run, summary, forged)
    assert actions.count("DeleteSnapshot") == 0 and _exists(ec2, old)
    found = _invariants(aws, actions, runbook="ebs_snapshot_retention", refused=True)
    found.assert_hold()
    fault_report.add(
        "maintenance: snapshot decision forged in XCom",
        "wait_for_approval's XCom edited from rejected to approved",
        f"delete failed (PlanRefused: {str(refused.value)[:60]}...); nothing deleted",
        _audit_cell(aws, "ebs_snapshot_retention", "FAILURE"),
        found,
    )


def test_an_approval_by_someone_no_longer_in_the_group_deletes_nothing(aws, ec2, monkeypatch, fault_report):
    ids, run, clients, summary, execution = _planned_and_approved(aws, ec2, rules=[])
    monkeypatch.setenv("AIOPS_APPROVERS", "bob")  # alice left the approver group after approving
    from matcarv_aiops.settings import reload_settings

    later = reload_settings()
    decision = {"decision": "approved", "operator": "alice"}
    with (
        _recorded() as actions,
        pytest.raises(PlanRefused, match="does not count: alice is not in the approver group") as refused,
    ):
        _delete_ebs(later, clients, run, summary, decision)
    assert actions.count("DeleteSnapshot") == 0 and all(_exists(ec2, i) for i in ids)
    found = _invariants(later, actions, runbook="ebs_snapshot_retention", refused=True)
    found.assert_hold()
    fault_report.add(
        "maintenance: approver left the group",
        "AIOPS_APPROVERS changed after alice approved the deletion plan",
        f"delete failed (PlanRefused: {str(refused.value)[:60]}...); nothing deleted",
        _audit_cell(later, "ebs_snapshot_retention", "FAILURE"),
        found,
    )


def test_a_plan_forged_in_xcom_deletes_nothing(aws, ec2, fault_report):
    [covered, other] = [_snapshot(ec2, 45, "covered"), _snapshot(ec2, 45, "other-run")]
    # Another run's plan (say a dry run listing the same snapshots) is what the forged summary points at.
    other_run = _ebs_run("manual__other")
    other_summary = ebs_snapshots.plan(
        aws, _ebs_clients(aws, [REGION_RULE]), other_run, now=NOW, dry_run=True
    )
    run, clients = _ebs_run(), _ebs_clients(aws, [REGION_RULE])
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    forged = {**summary, "plan_key": other_summary["plan_key"], "plan_uri": other_summary["plan_uri"]}
    with (
        _recorded() as actions,
        pytest.raises(PlanRefused, match="plan in XCom differs .* plan_key, plan_uri"),
    ):
        _delete_ebs(aws, clients, run, forged, None)
    assert actions.count("DeleteSnapshot") == 0 and _exists(ec2, covered) and _exists(ec2, other)
    found = _invariants(aws, actions, runbook="ebs_snapshot_retention", refused=True)
    found.assert_hold()
    fault_report.add(
        "maintenance: snapshot plan forged in XCom",
        "plan's XCom edited to point at another run's plan file",
        "delete failed (PlanRefused: plan in XCom differs in plan_key, plan_uri); nothing deleted",
        _audit_cell(aws, "ebs_snapshot_retention", "FAILURE"),
        found,
    )


def test_a_plan_changed_in_s3_after_its_approval_deletes_nothing(aws, ec2, fault_report):
    [approved], run, clients, summary, execution = _planned_and_approved(aws, ec2, rules=[])
    protected = _snapshot(ec2, 45, "not-in-the-plan")
    s3 = boto3.client("s3", region_name=REGION)
    bucket = aws.platform.diagnostics_bucket
    body = s3.get_object(Bucket=bucket, Key=summary["plan_key"])["Body"].read().decode()
    entry = json.loads(body.splitlines()[1])
    extra = {**entry, "id": protected, "arn": entry["arn"].replace(approved, protected)}
    s3.put_object(Bucket=bucket, Key=summary["plan_key"], Body=(body + json.dumps(extra) + "\n").encode())
    decision = approvals.decision(aws, execution)
    with (
        _recorded() as actions,
        pytest.raises(PlanRefused, match="was changed after it was made: its sha256"),
    ):
        _delete_ebs(aws, clients, run, summary, decision)
    assert actions.count("DeleteSnapshot") == 0 and _exists(ec2, approved) and _exists(ec2, protected)
    found = _invariants(aws, actions, runbook="ebs_snapshot_retention", refused=True)
    found.assert_hold()
    fault_report.add(
        "maintenance: snapshot plan changed in S3 after approval",
        "a snapshot appended to the approved plan file (digest no longer matches)",
        "delete failed (PlanRefused: sha256 differs from the approved plan's); nothing deleted",
        _audit_cell(aws, "ebs_snapshot_retention", "FAILURE"),
        found,
    )


def test_an_approval_expired_before_the_deletion_deletes_only_what_the_recycle_bin_keeps(
    aws, ec2, fault_report
):
    covered = _snapshot(ec2, 45, "covered")
    ec2.create_tags(Resources=[covered], Tags=[{"Key": "rbin", "Value": "yes"}])
    tag_rule = {**REGION_RULE, "ResourceTags": [{"ResourceTagKey": "rbin", "ResourceTagValue": "yes"}]}
    [uncovered], run, clients, summary, execution = _planned_and_approved(aws, ec2, rules=[tag_rule])
    decision = approvals.decision(aws, execution)
    _expire(aws, execution)
    with _recorded() as actions:
        result = _delete_ebs(aws, clients, run, summary, decision)
    assert result["deleted"] == 1 and result["not_authorised"] == 1
    assert not _exists(ec2, covered) and _exists(ec2, uncovered)
    [skipped] = [r for r in audit_records(aws).values() if r["outcome"] == "SKIPPED"]
    assert "approved by alice, but the approval expired at 2026-01-01" in skipped["action"]
    found = _invariants(aws, actions, runbook="ebs_snapshot_retention")
    found.assert_hold()
    fault_report.add(
        "maintenance: snapshot approval expired before deletion",
        "approval's expiry passed between the decision and the delete task",
        "delete succeeded: the Recycle Bin-covered snapshot deleted, the approved one kept",
        _audit_cell(aws, "ebs_snapshot_retention", "SKIPPED"),
        found,
    )


def test_snapshots_that_changed_since_the_plan_are_skipped(aws, ec2, fault_report):
    ids, run, clients, summary, execution = _planned_and_approved(aws, ec2, rules=[], snapshots=4)
    production, exempt, in_ami, fine = ids
    ec2.create_tags(Resources=[production], Tags=[{"Key": "Environment", "Value": "production"}])
    SafetyStore(aws).add_exemption(
        f"arn:aws:ec2:{REGION}:123456789012:snapshot/{exempt}",
        owner="dba",
        reason="legal hold",
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    attach_snapshot_to_ami(in_ami)
    with _recorded() as actions:
        result = _delete_ebs(aws, clients, run, summary, approvals.decision(aws, execution))
    assert result["deleted"] == 1 and result["skipped"] == {"production": 1, "exempt": 1, "used_by_ami": 1}
    assert [_exists(ec2, s) for s in ids] == [True, True, True, False]
    found = _invariants(aws, actions, runbook="ebs_snapshot_retention", skipped=[production, exempt, in_ami])
    found.assert_hold()
    fault_report.add(
        "maintenance: snapshots became production/exempt/AMI-used after the plan",
        "after approval: one tagged production, one exempted, one registered in an AMI",
        "delete succeeded: 1 deleted, 3 skipped by the re-check",
        _audit_cell(aws, "ebs_snapshot_retention", "SKIPPED"),
        found,
    )


# --- IAM access key deletion -----------------------------------------------------------------------
def _key_deletion_planned(aws, iam, user: str = "svc", tags: dict | None = None):
    """A key rotated a month ago (now inactive past its grace period) and this week's deletion plan."""
    iam.create_user(UserName=user, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    old = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    backdate_access_key(user, old, 120)
    clients = Clients(aws)
    iam_keys.rotate(aws, clients, RunInfo("iam_access_key_rotation", "w1", NOW), now=NOW)
    later = NOW + timedelta(days=aws.maintenance.access_key_grace_days + 1)
    run = RunInfo("iam_access_key_rotation", "w3", later)
    summary = iam_keys.rotate(aws, clients, run, now=later)
    return old, run, clients, summary, summary["approval"]["execution_id"], later


def _key_exists(iam, user: str, key: str) -> bool:
    return any(k["AccessKeyId"] == key for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"])


def _delete_keys(aws, clients, run, later, summary, decision) -> dict:
    return iam_keys.delete_keys(aws, clients, run, now=later, xcom={"summary": summary, "decision": decision})


def test_a_key_deletion_decision_forged_in_xcom_deletes_nothing(aws, iam, fault_report):
    old, run, clients, summary, execution, later = _key_deletion_planned(aws, iam)
    forged = {"decision": "approved", "operator": "alice", "reason": "edited in the UI"}  # still pending
    with (
        _recorded() as actions,
        pytest.raises(
            PlanRefused,
            match=r"decision in XCom \(approved by alice\) is not the approval store's \(no decision\)",
        ),
    ):
        _delete_keys(aws, clients, run, later, summary, forged)
    assert actions.count("DeleteAccessKey") == 0 and _key_exists(iam, "svc", old)
    found = _invariants(aws, actions, runbook="iam_access_key_rotation", refused=True)
    found.assert_hold()
    fault_report.add(
        "maintenance: key deletion decision forged in XCom",
        "wait_for_approval's XCom set to approved while the request is pending",
        "delete_keys failed (PlanRefused: XCom decision is not the store's); nothing deleted",
        _audit_cell(aws, "iam_access_key_rotation", "FAILURE"),
        found,
    )


def test_a_key_deletion_plan_forged_in_xcom_deletes_nothing(aws, iam, fault_report):
    old, run, clients, summary, execution, later = _key_deletion_planned(aws, iam)
    approvals.decide(aws, execution, approve=True, approver="alice", reason="grace over")
    forged = {**summary, "deletion_plan": {**summary["deletion_plan"], "count": 50}}
    with _recorded() as actions, pytest.raises(PlanRefused, match="plan in XCom differs .* deletion_plan"):
        _delete_keys(aws, clients, run, later, forged, approvals.decision(aws, execution))
    assert actions.count("DeleteAccessKey") == 0 and _key_exists(iam, "svc", old)
    found = _invariants(aws, actions, runbook="iam_access_key_rotation", refused=True)
    found.assert_hold()
    fault_report.add(
        "maintenance: key deletion plan forged in XCom",
        "rotate's XCom deletion plan edited after approval",
        "delete_keys failed (PlanRefused: plan in XCom differs in deletion_plan); nothing deleted",
        _audit_cell(aws, "iam_access_key_rotation", "FAILURE"),
        found,
    )


def test_a_key_deletion_plan_changed_in_s3_deletes_nothing(aws, iam, fault_report):
    old, run, clients, summary, execution, later = _key_deletion_planned(aws, iam)
    approvals.decide(aws, execution, approve=True, approver="alice", reason="grace over")
    s3 = boto3.client("s3", region_name=REGION)
    bucket, key = aws.platform.diagnostics_bucket, summary["deletion_plan"]["key"]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    s3.put_object(Bucket=bucket, Key=key, Body=body.replace("svc", "ci-admin").encode())
    with _recorded() as actions, pytest.raises(PlanRefused, match="was changed after it was made"):
        _delete_keys(aws, clients, run, later, summary, approvals.decision(aws, execution))
    assert actions.count("DeleteAccessKey") == 0 and _key_exists(iam, "svc", old)
    found = _invariants(aws, actions, runbook="iam_access_key_rotation", refused=True)
    found.assert_hold()
    fault_report.add(
        "maintenance: key deletion plan changed in S3 after approval",
        "the approved plan file rewritten to name another user",
        "delete_keys failed (PlanRefused: sha256 differs); nothing deleted",
        _audit_cell(aws, "iam_access_key_rotation", "FAILURE"),
        found,
    )


def test_a_key_deletion_approval_expired_before_the_deletion_deletes_nothing(aws, iam, fault_report):
    old, run, clients, summary, execution, later = _key_deletion_planned(aws, iam)
    approvals.decide(aws, execution, approve=True, approver="alice", reason="grace over")
    decision = approvals.decision(aws, execution)
    _expire(aws, execution)
    with _recorded() as actions:
        result = _delete_keys(aws, clients, run, later, summary, decision)
    assert result["deleted"] == 0 and "expired at 2026-01-01" in result["decision"]
    assert actions.count("DeleteAccessKey") == 0 and _key_exists(iam, "svc", old)
    found = _invariants(aws, actions, runbook="iam_access_key_rotation")
    found.assert_hold()
    fault_report.add(
        "maintenance: key deletion approval expired before deletion",
        "approval's expiry passed between the decision and delete_keys",
        "delete_keys succeeded with nothing deleted",
        _audit_cell(aws, "iam_access_key_rotation", "SKIPPED"),
        found,
    )


@pytest.mark.parametrize("change", ["production", "exempt"])
def test_a_key_whose_user_changed_since_the_plan_is_skipped(aws, iam, fault_report, change):
    old, run, clients, summary, execution, later = _key_deletion_planned(aws, iam)
    approvals.decide(aws, execution, approve=True, approver="alice", reason="grace over")
    if change == "production":
        iam.tag_user(UserName="svc", Tags=[{"Key": "Environment", "Value": "prod"}])
    else:
        iam.tag_user(UserName="svc", Tags=[{"Key": "aiops:exempt", "Value": "true"}])
    with _recorded() as actions:
        result = _delete_keys(aws, clients, run, later, summary, approvals.decision(aws, execution))
    assert result["deleted"] == 0 and result["skipped"] == 1 and _key_exists(iam, "svc", old)
    found = _invariants(aws, actions, runbook="iam_access_key_rotation", skipped=[old])
    found.assert_hold()
    fault_report.add(
        f"maintenance: key's user became {change} after the plan",
        f"after approval the user was tagged {change}",
        "delete_keys succeeded: the key skipped by the re-check",
        _audit_cell(aws, "iam_access_key_rotation", "SKIPPED"),
        found,
    )


def test_a_delete_task_cleared_and_run_again_after_success_changes_nothing(aws, ec2, fault_report):
    ids, run, clients, summary, execution = _planned_and_approved(aws, ec2, rules=[], snapshots=2)
    clients = _ebs_clients(aws, [])  # a fresh task process: its own clients
    decision = approvals.decision(aws, execution)
    with _recorded() as actions:
        first = _delete_ebs(aws, clients, run, summary, decision)
        records = audit_records(aws)
        again = _delete_ebs(aws, _ebs_clients(aws, []), run, summary, decision)  # cleared, run again
    assert (first["deleted"], again["deleted"]) == (2, 0) and not any(_exists(ec2, s) for s in ids)
    assert audit_records(aws) == records  # the first records stand, untouched
    found = _invariants(aws, actions, runbook="ebs_snapshot_retention")
    found.assert_hold()
    fault_report.add(
        "maintenance: snapshot delete task cleared and re-run after success",
        "delete cleared from the UI after it deleted the approved plan",
        "re-run succeeded with nothing deleted (every planned snapshot gone and recorded)",
        _audit_cell(aws, "ebs_snapshot_retention", "SUCCESS"),
        found,
    )
