"""The three core remediations, end to end through their DAGs (dag.test, in-process, moto)."""

from __future__ import annotations

import threading
import time

import boto3
import pytest

from local.scenarios import (
    add_messages,
    dead_letter_queue,
    failing_instance,
    instance_state,
    public_access_block,
    public_bucket,
    queue_depth,
)
from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.models import ApprovalStatus
from tests.events import alarm_event, cloudtrail_event

S3_DAG, SQS_DAG, EC2_DAG = (
    "remediate_s3_public_access",
    "remediate_sqs_dlq_depth_high",
    "remediate_ec2_status_check_failed",
)


def s3_event(bucket="team-share", **kw):
    return cloudtrail_event(
        "s3", "DeleteBucketPublicAccessBlock", {"bucketName": bucket, "publicAccessBlock": ""}, **kw
    )


def sqs_event(queue="orders-dlq", **kw):
    return alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue}, **kw)


def ec2_event(instance_id, **kw):
    return alarm_event("AWS/EC2", "StatusCheckFailed", {"InstanceId": instance_id}, **kw)


class Approver:
    """Decides the first pending approval request, from another thread, as a named human would."""

    def __init__(self, settings, *, approve=True, who="alice@example.com", reason="checked the diagnostics"):
        self.store = ApprovalStore(settings)
        self.approve, self.who, self.reason = approve, who, reason
        self.decided: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        while not self._stop.is_set():
            for item in ddb.scan(TableName=self.store.settings.platform.approvals_table)["Items"]:
                if (
                    item["status"]["S"] == ApprovalStatus.PENDING.value
                    and item["executionId"]["S"] not in self.decided
                ):
                    self.store.decide(
                        item["executionId"]["S"], approve=self.approve, approver=self.who, reason=self.reason
                    )
                    self.decided.append(item["executionId"]["S"])
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def only_record(audit_items):
    records = audit_items()
    assert len(records) == 1, records
    return records[0]


def metric_outcomes(remediation):
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    metrics = cw.list_metrics(Namespace="AIOps/Automation", MetricName="RemediationExecuted")["Metrics"]
    return {
        d["Value"]
        for m in metrics
        for d in m["Dimensions"]
        if d["Name"] == "Outcome" and {"Name": "Remediation", "Value": remediation} in m["Dimensions"]
    }


@pytest.fixture
def ec2_calls(monkeypatch):
    """Counts real stop/start transitions in moto's EC2 model."""
    from moto.ec2.models.instances import Instance

    calls = []
    for name in ("stop", "start"):
        original = getattr(Instance, name)

        def spy(self, *a, _original=original, _name=name, **kw):
            calls.append(_name)
            return _original(self, *a, **kw)

        monkeypatch.setattr(Instance, name, spy)
    return calls


# --- automatic success -----------------------------------------------------------------------------


def test_sqs_automatic_success(run_dag, audit_items):
    sqs, dlq, source = dead_letter_queue(150)
    _, states = run_dag(SQS_DAG, {"event": sqs_event()})
    record = only_record(audit_items)
    assert record["outcome"] == "SUCCESS" and record["operator"] == "automated"
    assert queue_depth(sqs, dlq) == 0 and queue_depth(sqs, source) == 150
    assert states["rollback"] == "skipped" and states["audit"] == "success"
    # No human decides: check_eligibility skipped the approval steps (never started), execute still ran.
    assert states["check_eligibility"] == "success"
    assert states["request_approval"] == states["wait_for_approval"] == "skipped"
    assert states["execute"] == states["validate"] == "success"
    assert metric_outcomes("sqs_dlq_depth_high") == {"SUCCESS"}


def test_ec2_automatic_success(run_dag, audit_items, ec2_calls):
    ec2, instance = failing_instance()
    _, states = run_dag(EC2_DAG, {"event": ec2_event(instance)})
    record = only_record(audit_items)
    assert record["outcome"] == "SUCCESS", record
    assert states["wait_for_automation"] == "success"
    assert "AIOps-EC2StatusCheckRestart" in record["action"]
    assert ec2_calls == ["stop", "start"] and instance_state(ec2, instance) == "running"
    assert record["targetResource"].endswith(f"instance/{instance}")
    assert metric_outcomes("ec2_status_check_failed") == {"SUCCESS"}


def test_s3_waits_for_approval_then_succeeds(run_dag, audit_items, aws):
    s3, bucket = public_bucket()
    with Approver(aws) as approver:
        _, states = run_dag(S3_DAG, {"event": s3_event()})
    record = only_record(audit_items)
    assert record["outcome"] == "SUCCESS" and record["operator"] == "alice@example.com"
    assert states["request_approval"] == states["wait_for_approval"] == states["execute"] == "success"
    assert approver.decided == [record["executionId"]]
    assert all(public_access_block(s3, bucket).values())
    assert metric_outcomes("s3_public_access") == {"SUCCESS"}


# --- ineligible --------------------------------------------------------------------------------------


def test_s3_already_fixed_is_skipped(run_dag, audit_items):
    s3, bucket = public_bucket()
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            k: True
            for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        },
    )
    _, states = run_dag(S3_DAG, {"event": s3_event()})
    record = only_record(audit_items)
    assert record["outcome"] == "SKIPPED" and "already fixed" in record["action"]
    # A skip at check_eligibility leaves execute no step that succeeded: skipped with the approval steps.
    assert states["check_eligibility"] == states["request_approval"] == "skipped"
    assert states["wait_for_approval"] == states["execute"] == "skipped" and states["audit"] == "success"


def test_gone_resource_is_skipped(run_dag, audit_items):
    run_dag(SQS_DAG, {"event": sqs_event("no-such-queue")})
    record = only_record(audit_items)
    assert record["outcome"] == "SKIPPED" and "no longer exists" in record["action"]


def test_exempt_resource_is_skipped(run_dag, audit_items):
    sqs, dlq, source = dead_letter_queue(150, tags={"aiops:exempt": "true"})
    run_dag(SQS_DAG, {"event": sqs_event()})
    record = only_record(audit_items)
    assert record["outcome"] == "SKIPPED" and "exempt" in record["action"]
    assert queue_depth(sqs, dlq) == 150


def test_ec2_stopped_instance_is_skipped(run_dag, audit_items, ec2_calls):
    ec2, instance = failing_instance()
    ec2.stop_instances(InstanceIds=[instance])
    ec2_calls.clear()
    run_dag(EC2_DAG, {"event": ec2_event(instance)})
    record = only_record(audit_items)
    assert record["outcome"] == "SKIPPED" and "not running" in record["action"]
    assert ec2_calls == [] and instance_state(ec2, instance) == "stopped"


def test_cooldown_skips_a_second_event(run_dag, audit_items):
    sqs, dlq, source = dead_letter_queue(150)
    run_dag(SQS_DAG, {"event": sqs_event()})
    add_messages(sqs, dlq, 150)
    run_dag(SQS_DAG, {"event": sqs_event()})  # a new event, same queue, minutes later
    outcomes = sorted(r["outcome"] for r in audit_items())
    assert outcomes == ["SKIPPED", "SUCCESS"]
    assert any("cooldown" in r["action"] for r in audit_items())
    assert queue_depth(sqs, dlq) == 150


# --- approval: production, rejected, expired --------------------------------------------------------


def test_production_waits_for_approval(run_dag, audit_items, aws):
    sqs, dlq, source = dead_letter_queue(150, tags={"Environment": "Production"})
    with Approver(aws, who="bob@example.com") as approver:
        run_dag(SQS_DAG, {"event": sqs_event()})
    record = only_record(audit_items)
    assert approver.decided == [record["executionId"]]
    assert record["outcome"] == "SUCCESS" and record["operator"] == "bob@example.com"
    assert queue_depth(sqs, dlq) == 0


def test_rejected(run_dag, audit_items, aws):
    s3, bucket = public_bucket()
    with Approver(aws, approve=False, who="carol@example.com", reason="bucket hosts the public website"):
        _, states = run_dag(S3_DAG, {"event": s3_event()})
    record = only_record(audit_items)
    assert record["outcome"] == "SKIPPED" and record["operator"] == "carol@example.com"
    # execute reads the rejection from the approval store and ends skipped, with nothing after it run.
    assert states["wait_for_approval"] == "success" and states["execute"] == "skipped"
    assert states["validate"] == "skipped" and states["rollback"] == "skipped"
    assert "rejected by carol@example.com: bucket hosts the public website" in record["action"]
    assert not any(public_access_block(s3, bucket).values())


def test_expired_approval(run_dag, audit_items, aws, monkeypatch):
    from matcarv_aiops.settings import reload_settings

    monkeypatch.setenv("AIOPS_APPROVAL_TIMEOUT_MINUTES", "0.03")
    reload_settings()
    ec2, instance = failing_instance(tags={"Environment": "prod"})
    run_dag(EC2_DAG, {"event": ec2_event(instance)})
    record = only_record(audit_items)
    assert record["outcome"] == "SKIPPED" and "expired" in record["action"]
    approval = ApprovalStore(reload_settings()).get(record["executionId"])
    assert approval.status is ApprovalStatus.EXPIRED
    assert instance_state(ec2, instance) == "running"


# --- validation failure and rollback ----------------------------------------------------------------


def test_ec2_validation_failure_rolls_back(run_dag, audit_items, monkeypatch, ec2_calls):
    from matcarv_aiops.remediations.ec2_status_check_failed import Ec2StatusCheckFailed

    run_runbook = Ec2StatusCheckFailed.execute

    def runbook_then_instance_dies(self, ctx, state):  # the runbook succeeds, then the instance stops again
        result = run_runbook(self, ctx, state)
        ctx.client("ec2").stop_instances(InstanceIds=[state["instance_id"]])
        return result

    monkeypatch.setattr(Ec2StatusCheckFailed, "execute", runbook_then_instance_dies)
    ec2, instance = failing_instance()
    _, states = run_dag(EC2_DAG, {"event": ec2_event(instance)})
    record = only_record(audit_items)
    assert record["outcome"] == "FAILURE"
    assert "validation failed: instance is stopped" in record["action"]
    assert "Rollback: started instance" in record["action"]
    assert states["wait_for_automation"] == "success"
    assert states["validate"] == "failed" and states["rollback"] == "success" and states["audit"] == "failed"
    assert ec2_calls == ["stop", "start", "stop", "start"] and instance_state(ec2, instance) == "running"
    assert metric_outcomes("ec2_status_check_failed") == {"FAILURE"}


def test_s3_validation_failure_has_no_rollback(run_dag, audit_items, monkeypatch, aws):
    from matcarv_aiops.remediations.s3_public_access import S3PublicAccess

    monkeypatch.setattr(S3PublicAccess, "execute", lambda self, ctx, state: {"applied": {}})
    s3, bucket = public_bucket()
    with Approver(aws):
        run_dag(S3_DAG, {"event": s3_event()})
    record = only_record(audit_items)
    assert record["outcome"] == "FAILURE" and "validation failed" in record["action"]
    assert "Rollback: no rollback: irreversible" in record["action"]
    assert not any(public_access_block(s3, bucket).values())


def test_sqs_validation_failure(run_dag, audit_items, monkeypatch):
    from matcarv_aiops.remediations.sqs_dlq_depth_high import SqsDlqDepthHigh

    monkeypatch.setattr(SqsDlqDepthHigh, "execute", lambda self, ctx, state: {"moved": 0})
    sqs, dlq, source = dead_letter_queue(150)
    run_dag(SQS_DAG, {"event": sqs_event()})
    record = only_record(audit_items)
    assert record["outcome"] == "FAILURE" and "still holds 150 messages" in record["action"]
    assert "Rollback: no rollback: nothing to undo" in record["action"]
    assert queue_depth(sqs, dlq) == 150


# --- dry run, duplicate, crash, bad input -------------------------------------------------------------


@pytest.mark.parametrize("dag_id", [S3_DAG, SQS_DAG, EC2_DAG])
def test_dry_run_changes_nothing(dag_id, run_dag, audit_items, ec2_calls):
    s3, bucket = public_bucket()
    sqs, dlq, source = dead_letter_queue(150)
    ec2, instance = failing_instance()
    ec2_calls.clear()
    event = {S3_DAG: s3_event(), SQS_DAG: sqs_event(), EC2_DAG: ec2_event(instance)}[dag_id]
    _, states = run_dag(dag_id, {"event": event, "dry_run": True})
    record = only_record(audit_items)
    assert record["outcome"] == "SKIPPED" and record["action"].startswith("SKIPPED: dry run")
    # Nothing will change, so nobody is asked (S3 would otherwise need a human): execute says dry run.
    assert states["request_approval"] == states["wait_for_approval"] == "skipped"
    assert states["execute"] == "skipped"
    assert not any(public_access_block(s3, bucket).values())
    assert queue_depth(sqs, dlq) == 150 and ec2_calls == []


def test_duplicate_run_does_nothing(run_dag, audit_items):
    sqs, dlq, source = dead_letter_queue(150)
    event = sqs_event()
    run_dag(SQS_DAG, {"event": event})
    add_messages(sqs, dlq, 150)
    _, states = run_dag(SQS_DAG, {"event": event})  # the same event, delivered again
    record = only_record(audit_items)
    assert record["outcome"] == "SUCCESS"
    assert states["collect_diagnostics"] == "skipped" and states["audit"] == "success"
    assert states["check_eligibility"] == states["execute"] == "skipped"
    assert queue_depth(sqs, dlq) == 150


def test_crashing_task_is_audited_once(run_dag, audit_items, monkeypatch):
    from matcarv_aiops.remediations.sqs_dlq_depth_high import SqsDlqDepthHigh

    def boom(self, ctx):
        raise RuntimeError("simulated AWS outage")

    monkeypatch.setattr(SqsDlqDepthHigh, "collect_diagnostics", boom)
    _, states = run_dag(SQS_DAG, {"event": sqs_event()})
    record = only_record(audit_items)
    assert states["collect_diagnostics"] == "failed"
    assert record["outcome"] == "FAILURE" and "collect_diagnostics failed" in record["action"]


def test_bad_request_is_audited_and_does_nothing(run_dag, audit_items):
    _, states = run_dag(SQS_DAG, {"event": {"id": "x", "source": "aws.sqs"}})
    record = only_record(audit_items)
    assert record["outcome"] == "FAILURE" and "bad request" in record["action"]
    assert states["check_eligibility"] == states["execute"] == "upstream_failed"


def test_manual_run_with_target(run_dag, audit_items):
    sqs, dlq, source = dead_letter_queue(150)
    run_dag(SQS_DAG, {"target": "arn:aws:sqs:us-east-1:123456789012:orders-dlq", "reason": "on-call"})
    record = only_record(audit_items)
    assert record["outcome"] == "SUCCESS" and '"manual": true' in record["trigger"]
