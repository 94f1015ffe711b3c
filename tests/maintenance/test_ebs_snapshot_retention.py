from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest

from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.approvals import decision as plan_decision
from matcarv_aiops.maintenance import ebs_snapshots
from matcarv_aiops.maintenance.common import Clients, JobFailed, get_json
from matcarv_aiops.safety import SafetyStore
from tests.maintenance.helpers import REGION, REGION_RULE, backdate_snapshot, rbin_client

NOW = datetime.now(UTC)


def _snapshot(ec2, days: float, tags: dict | None = None, description: str = "") -> str:
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    kwargs = {"VolumeId": volume, "Description": description}
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    snapshot = ec2.create_snapshot(**kwargs)["SnapshotId"]
    backdate_snapshot(snapshot, days)
    return snapshot


def _all(ec2) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def _existing(ec2) -> set[str]:
    """The test's own snapshots still there (moto starts with snapshots of its default AMIs, all new)."""
    return _all(ec2) - ec2.baseline


@pytest.fixture
def ec2(aws, monkeypatch):
    # moto's default AMIs bring 1,300 snapshots "owned" by the account, only slowing every listing down.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    client = boto3.client("ec2", region_name=REGION)
    client.baseline = _all(client)
    return client


def _clients(settings, rules, rounds: int = 2):
    rbin, _ = rbin_client(rules, rounds)
    return Clients(settings, overrides={"rbin": rbin})


def test_recycle_bin_covered_snapshots_are_deleted_and_the_rest_left_alone(aws, ec2, run_for, audit_rows):
    old = _snapshot(ec2, 45)
    young = _snapshot(ec2, 3)
    prod = _snapshot(ec2, 60, {"Environment": "production"})
    tagged_exempt = _snapshot(ec2, 60, {"aiops:exempt": "true"})
    table_exempt = _snapshot(ec2, 60)
    backup = _snapshot(ec2, 60, description=ebs_snapshots.BACKUP_DESCRIPTION + " for resource vol-1")
    image = ec2.register_image(
        Name="ami",
        RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": _snapshot(ec2, 1)}}],
    )["ImageId"]
    # moto gives the image a snapshot of its own: that is the one in use
    [mapping] = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"]
    in_ami = mapping["Ebs"]["SnapshotId"]
    backdate_snapshot(in_ami, 60)
    source = next(
        s for s in _existing(ec2) if s not in {old, young, prod, tagged_exempt, table_exempt, backup, in_ami}
    )
    SafetyStore(aws).add_exemption(
        f"arn:aws:ec2:{REGION}:123456789012:snapshot/{table_exempt}",
        owner="dba",
        reason="legal hold",
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    run = run_for("ebs_snapshot_retention")
    clients = _clients(aws, [REGION_RULE])

    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    assert summary["to_delete"] == 1 and summary["recycle_bin"] == 1 and summary["approval"] is None
    assert summary["skipped"] == {"production": 1, "exempt": 2, "aws_backup": 1, "used_by_ami": 1}
    result = ebs_snapshots.execute(
        aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": None}
    )

    assert result["deleted"] == 1
    assert _existing(ec2) == {young, prod, tagged_exempt, table_exempt, backup, in_ami, source}
    rows = audit_rows("ebs_snapshot_retention")
    assert len(rows) == 1 and rows[0]["targetResource"].endswith(old) and rows[0]["outcome"] == "SUCCESS"
    assert (
        "restore-snapshot-from-recycle-bin" in rows[0]["rollbackPlan"] and rows[0]["operator"] == "automated"
    )
    assert get_json(clients, f"maintenance/ebs_snapshot_retention/{REGION}/in-progress.json") is None


def test_without_a_recycle_bin_rule_the_plan_waits_for_approval(aws, ec2, run_for, audit_rows):
    old = _snapshot(ec2, 45, {"team": "data"})
    covered = _snapshot(ec2, 45, {"rbin": "yes"})
    tag_rule = {
        **REGION_RULE,
        "Identifier": "taggedrule01",
        "ResourceTags": [{"ResourceTagKey": "rbin", "ResourceTagValue": "yes"}],
    }
    run = run_for("ebs_snapshot_retention")
    clients = _clients(aws, [tag_rule])
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    assert summary["needs_approval"] == 1 and summary["recycle_bin"] == 1
    execution = summary["approval"]["execution_id"]
    assert plan_decision(aws, execution) is None  # pending

    ApprovalStore(aws).decide(execution, approve=True, approver="alice@example.com", reason="ok")
    decision = plan_decision(aws, execution)
    assert {k: decision[k] for k in ("decision", "operator", "reason")} == {
        "decision": "approved",
        "operator": "alice@example.com",
        "reason": "ok",
    }
    assert decision["decided_at"] and decision["expires_at"]  # the same shape as a remediation's decision
    ebs_snapshots.execute(aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": decision})
    assert old not in _existing(ec2) and covered not in _existing(ec2)
    by_target = {r["targetResource"].rsplit("/", 1)[1]: r for r in audit_rows()}
    assert (
        by_target[old]["operator"] == "alice@example.com"
        and "cannot be restored" in by_target[old]["rollbackPlan"]
    )
    assert by_target[covered]["operator"] == "automated"


def test_rejected_plan_deletes_only_what_the_recycle_bin_keeps(aws, ec2, run_for, audit_rows):
    old = _snapshot(ec2, 45)
    run = run_for("ebs_snapshot_retention")
    clients = _clients(aws, [])
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    execution = summary["approval"]["execution_id"]
    ApprovalStore(aws).decide(execution, approve=False, approver="bob", reason="no")
    ebs_snapshots.execute(
        aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": plan_decision(aws, execution)}
    )
    assert old in _existing(ec2)
    [row] = audit_rows()
    assert row["outcome"] == "SKIPPED" and row["operator"] == "bob" and "rejected" in row["action"]


def test_dry_run_lists_and_deletes_nothing(aws, ec2, run_for, audit_rows):
    old = _snapshot(ec2, 45)
    clients = _clients(aws, [REGION_RULE])
    run = run_for("ebs_snapshot_retention")
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW, dry_run=True)
    assert summary["sample"] == [old] and summary["dry_run"]
    result = ebs_snapshots.execute(
        aws, clients, run, dry_run=True, xcom={"summary": summary, "decision": None}
    )
    assert result == {"deleted": 0, "dry_run": True, "would_delete": 1, "plan_uri": summary["plan_uri"]}
    assert old in _existing(ec2) and audit_rows() == []


def test_crash_halfway_then_rerun_loses_and_duplicates_nothing(aws, ec2, run_for, audit_rows, monkeypatch):
    snapshots = [_snapshot(ec2, 40 + i) for i in range(30)]
    run = run_for("ebs_snapshot_retention")
    clients = _clients(aws, [REGION_RULE])
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    real_delete = clients("ec2").delete_snapshot
    calls = {"n": 0}

    def dying_delete(**kwargs):
        calls["n"] += 1
        if calls["n"] == 12:  # the worker dies: 11 deleted, none of their records flushed
            raise SystemExit("worker killed")
        return real_delete(**kwargs)

    monkeypatch.setattr(clients("ec2"), "delete_snapshot", dying_delete)
    with pytest.raises(SystemExit):
        ebs_snapshots.execute(aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": None})
    assert len(_existing(ec2)) == 30 - 11 and audit_rows() == []

    # The next day's run settles the interrupted plan, then plans and deletes the rest.
    monkeypatch.setattr(clients("ec2"), "delete_snapshot", real_delete)
    tomorrow = run_for("ebs_snapshot_retention", "scheduled__2026-11-28T02:00:00+00:00")
    clients2 = _clients(aws, [REGION_RULE])
    summary2 = ebs_snapshots.plan(aws, clients2, tomorrow, now=NOW)
    assert summary2["to_delete"] == 19
    ebs_snapshots.execute(
        aws, clients2, tomorrow, dry_run=False, xcom={"summary": summary2, "decision": None}
    )
    assert _existing(ec2) == set()
    rows = audit_rows()
    assert sorted(r["targetResource"].rsplit("/", 1)[1] for r in rows) == sorted(
        snapshots
    )  # each exactly once


def test_task_retry_after_a_crash_audits_what_the_first_attempt_deleted(
    aws, ec2, run_for, audit_rows, monkeypatch
):
    snapshots = [_snapshot(ec2, 40) for _ in range(5)]
    run = run_for("ebs_snapshot_retention")
    clients = _clients(aws, [REGION_RULE], rounds=3)  # the plan, the attempt that dies, the retry
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    real_delete = clients("ec2").delete_snapshot
    monkeypatch.setattr(
        clients("ec2"),
        "delete_snapshot",
        lambda **kw: (
            real_delete(**kw) if kw["SnapshotId"] != snapshots[3] else (_ for _ in ()).throw(SystemExit())
        ),
    )
    with pytest.raises(SystemExit):
        ebs_snapshots.execute(aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": None})
    monkeypatch.setattr(clients("ec2"), "delete_snapshot", real_delete)
    ebs_snapshots.execute(
        aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": None}
    )  # Airflow's retry of the same task
    assert _existing(ec2) == set()
    assert len(audit_rows()) == 5


def test_a_snapshot_that_cannot_be_deleted_fails_the_run_with_its_record(
    aws, ec2, run_for, audit_rows, monkeypatch
):
    from botocore.exceptions import ClientError

    snapshot = _snapshot(ec2, 40)
    run = run_for("ebs_snapshot_retention")
    clients = _clients(aws, [REGION_RULE])
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)

    def refused(**kwargs):
        raise ClientError(
            {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, "DeleteSnapshot"
        )

    monkeypatch.setattr(clients("ec2"), "delete_snapshot", refused)
    with pytest.raises(JobFailed):
        ebs_snapshots.execute(aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": None})
    [row] = audit_rows()
    assert row["outcome"] == "FAILURE" and snapshot in row["targetResource"]


def test_throttled_listing_and_deletes_are_retried(aws, ec2, run_for, audit_rows, throttle):
    _snapshot(ec2, 40)
    _snapshot(ec2, 40)
    throttled = throttle("DescribeSnapshots", 2)
    throttle("DeleteSnapshot", 2)
    run = run_for("ebs_snapshot_retention")
    clients = _clients(aws, [REGION_RULE])
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    ebs_snapshots.execute(aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": None})
    assert throttled["DescribeSnapshots"] == 2 and throttled["DeleteSnapshot"] == 2
    assert _existing(ec2) == set() and len(audit_rows()) == 2


def test_a_retried_plan_step_returns_the_recorded_plan_bound_to_its_approval(aws, ec2, run_for):
    import hashlib

    from matcarv_aiops.approvals import ApprovalStore

    _snapshot(ec2, 45)
    run = run_for("ebs_snapshot_retention")
    first = ebs_snapshots.plan(aws, _clients(aws, []), run, now=NOW)
    _snapshot(ec2, 45)  # a second plan would list it; the retried step must not replace the first plan
    again = ebs_snapshots.plan(aws, _clients(aws, []), run, now=NOW)
    assert again == first and first["needs_approval"] == 1
    stored = (
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket=aws.platform.diagnostics_bucket, Key=first["plan_key"])["Body"]
        .read()
    )
    assert hashlib.sha256(stored).hexdigest() == first["plan_digest"]
    request = ApprovalStore(aws).get(first["approval"]["execution_id"])
    assert request is not None and request.plan_digest == first["plan_digest"]


def test_the_approval_sensor_reads_the_recorded_plan_not_xcom(aws, ec2, run_for):
    from matcarv_aiops.maintenance.common import plan_decision as sensor_view

    _snapshot(ec2, 45)
    dry = run_for("ebs_snapshot_retention", "manual__dry")
    ebs_snapshots.plan(aws, _clients(aws, []), dry, now=NOW, dry_run=True)
    assert sensor_view(aws, "ebs_snapshot_retention", dry.run_id) == (True, None)  # nothing to approve
    run = run_for("ebs_snapshot_retention")
    summary = ebs_snapshots.plan(aws, _clients(aws, []), run, now=NOW)
    assert sensor_view(aws, "ebs_snapshot_retention", run.run_id) == (False, None)  # pending
    ApprovalStore(aws).decide(summary["approval"]["execution_id"], approve=False, approver="bob", reason="no")
    done, decision = sensor_view(aws, "ebs_snapshot_retention", run.run_id)
    assert done and decision is not None and decision["decision"] == "rejected"


def test_a_snapshot_an_ami_takes_at_the_moment_of_deletion_is_skipped_not_failed(
    aws, ec2, run_for, audit_rows, monkeypatch
):
    from botocore.exceptions import ClientError

    snapshot = _snapshot(ec2, 40)
    run = run_for("ebs_snapshot_retention")
    clients = _clients(aws, [REGION_RULE])
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)

    def in_use(**kwargs):
        raise ClientError(
            {"Error": {"Code": "InvalidSnapshot.InUse", "Message": "in use by ami-1"}}, "DeleteSnapshot"
        )

    monkeypatch.setattr(clients("ec2"), "delete_snapshot", in_use)
    result = ebs_snapshots.execute(
        aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": None}
    )
    assert result["deleted"] == 0 and result["skipped"] == {"used_by_ami": 1}
    [row] = audit_rows()
    assert row["outcome"] == "SKIPPED" and snapshot in row["action"] and "an AMI uses it" in row["action"]


def test_a_recycle_bin_rule_gone_since_the_plan_makes_the_snapshot_wait_for_approval(
    aws, ec2, run_for, audit_rows
):
    from tests.maintenance.helpers import stub_rules

    snapshot = _snapshot(ec2, 40)
    rbin, stubber = rbin_client([REGION_RULE], rounds=1)
    stub_rules(stubber, [])  # the rule was deleted before the deletion step
    clients = Clients(aws, overrides={"rbin": rbin})
    run = run_for("ebs_snapshot_retention")
    summary = ebs_snapshots.plan(aws, clients, run, now=NOW)
    assert summary["recycle_bin"] == 1 and summary["approval"] is None
    result = ebs_snapshots.execute(
        aws, clients, run, dry_run=False, xcom={"summary": summary, "decision": None}
    )
    assert result["deleted"] == 0 and result["not_authorised"] == 1 and snapshot in _existing(ec2)
    [row] = audit_rows()
    assert (
        row["outcome"] == "SKIPPED"
        and "without a Recycle Bin rule: the plan asked no approval" in row["action"]
    )
