"""execute decides from the approval store at the moment of acting, never from the approval step's result
(XCom, which a UI user can edit), and never acts again on an execution that already has its audit record."""

from __future__ import annotations

import boto3
import pytest

from local.scenarios import add_messages, dead_letter_queue, public_access_block, public_bucket, queue_depth
from matcarv_aiops import approvals
from matcarv_aiops.pipeline import StepFailed, StepRecord, StepSkipped, call, step_by_id
from matcarv_aiops.pipeline.inline import InlineRun, run_inline
from tests.events import alarm_event, cloudtrail_event

FORGED = {"decision": "auto", "operator": "automated", "reason": "edited in the UI"}


def _waiting_run(bucket: str, run_id: str = "manual__forge") -> InlineRun:
    """A public-bucket run up to its approval request, as the DAG leaves it while it waits."""
    event = cloudtrail_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": bucket})
    run = InlineRun("s3_public_access", {"event": event}, run_id=run_id)
    for task_id in ("collect_diagnostics", "check_eligibility", "request_approval"):
        run.records[task_id] = StepRecord(done=call(step_by_id(task_id), run))
    assert run.records["request_approval"].done["requested"]
    return run


def _execute_with_forged_decision(run: InlineRun):
    run.records["wait_for_approval"] = StepRecord(done=FORGED)
    return call(step_by_id("execute"), run)


def _execution_id(run: InlineRun) -> str:
    return run.result("collect_diagnostics").execution_id


def test_a_rejection_holds_whatever_the_approval_step_says(aws):
    s3, bucket = public_bucket()
    run = _waiting_run(bucket)
    approvals.decide(aws, _execution_id(run), approve=False, approver="alice", reason="public website")
    with pytest.raises(StepSkipped, match="rejected by alice: public website") as skipped:
        _execute_with_forged_decision(run)
    assert skipped.value.operator == "alice"
    assert not any(public_access_block(s3, bucket).values())


def test_no_decision_yet_is_no_change(aws):
    s3, bucket = public_bucket()
    run = _waiting_run(bucket)
    with pytest.raises(StepFailed, match="no decision yet"):
        _execute_with_forged_decision(run)
    assert not any(public_access_block(s3, bucket).values())


def test_an_expired_request_is_no_change(aws, monkeypatch):
    from matcarv_aiops.settings import reload_settings

    s3, bucket = public_bucket()
    monkeypatch.setenv("AIOPS_APPROVAL_TIMEOUT_MINUTES", "0")
    reload_settings()
    run = _waiting_run(bucket)
    with pytest.raises(StepSkipped, match="expired"):
        _execute_with_forged_decision(run)
    assert approvals.ApprovalStore(reload_settings()).get(_execution_id(run)).status.value == "EXPIRED"
    assert not any(public_access_block(s3, bucket).values())


def test_an_approval_counts_only_for_its_own_run(aws):
    s3, bucket = public_bucket()
    run = _waiting_run(bucket)
    approvals.decide(aws, _execution_id(run), approve=True, approver="alice", reason="ok")
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName=aws.platform.approvals_table,
        Key={"executionId": {"S": _execution_id(run)}},
        UpdateExpression="SET runId = :other",
        ExpressionAttributeValues={":other": {"S": "manual__another"}},
    )
    with pytest.raises(StepFailed, match="belongs to run manual__another"):
        _execute_with_forged_decision(run)
    assert not any(public_access_block(s3, bucket).values())


def test_an_approved_request_acts_as_its_approver(aws):
    s3, bucket = public_bucket()
    run = _waiting_run(bucket)
    approvals.decide(aws, _execution_id(run), approve=True, approver="alice", reason="ok")
    acted = _execute_with_forged_decision(run)
    assert acted["operator"] == "alice"
    assert all(public_access_block(s3, bucket).values())


def test_a_finished_execution_is_never_acted_on_again(aws):
    sqs, dlq, source = dead_letter_queue(150)
    conf = {
        "event": alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders-dlq"})
    }
    run = run_inline("sqs_dlq_depth_high", conf)
    assert run.outcome == "SUCCESS"
    add_messages(sqs, dlq, 150)
    with pytest.raises(StepFailed, match="already has its audit record \\(SUCCESS\\)"):
        call(step_by_id("execute"), run)  # the execute task cleared and run again from the UI
    assert queue_depth(sqs, dlq) == 150


@pytest.mark.parametrize(
    ("approver", "refusal"),
    [
        ("mallory", "mallory is not in the approver group"),
        ("automated", "'automated' is the platform's own name"),
        ("alice", "alice requested this run and cannot approve it"),
    ],
)
def test_an_approval_written_around_decide_does_not_count(aws, approver, refusal):
    """A record set to APPROVED directly in the table (not through decide) is checked again at acting."""
    s3, bucket = public_bucket()
    run = _waiting_run(bucket)
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName=aws.platform.approvals_table,
        Key={"executionId": {"S": _execution_id(run)}},
        UpdateExpression="SET #status = :approved, approver = :who, requestedBy = :requester",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":approved": {"S": "APPROVED"},
            ":who": {"S": approver},
            ":requester": {"S": "alice" if approver == "alice" else "automated"},
        },
    )
    with pytest.raises(StepFailed, match=refusal):
        _execute_with_forged_decision(run)
    assert not any(public_access_block(s3, bucket).values())


def test_a_production_change_needs_as_many_distinct_approvers_as_the_request_says(aws):
    s3, bucket = public_bucket()
    run = _waiting_run(bucket)
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName=aws.platform.approvals_table,
        Key={"executionId": {"S": _execution_id(run)}},
        UpdateExpression="SET #status = :approved, approver = :who, approvalsRequired = :two",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":approved": {"S": "APPROVED"},
            ":who": {"S": "alice,alice"},
            ":two": {"S": "2"},
        },
    )
    with pytest.raises(StepFailed, match="needs 2 distinct approvers, has 1"):
        _execute_with_forged_decision(run)
    assert not any(public_access_block(s3, bucket).values())
