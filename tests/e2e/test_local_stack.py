"""End to end on the local stack: moto_server + airflow standalone, driven through the trigger handler
(the Lambda's code) and the Airflow REST API, as `make demo` does. One stack for the whole session."""

from __future__ import annotations

import time

import pytest

from local import scenarios
from local.stack import APPROVER_USER
from matcarv_aiops.catalogue import get_entry
from matcarv_aiops.ingress import handler as lambda_module
from matcarv_aiops.ingress.routing import dag_run_id
from matcarv_aiops.models import EventBridgeEvent
from matcarv_aiops.settings import get_settings
from tests.events import alarm_event, cloudtrail_event

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def send(stack, event: dict, remediation: str) -> tuple[str, str]:
    """The event through the handler, as the trigger Lambda's role; returns (dag_id, run_id) of the run it
    started for ``remediation``."""
    outcome = stack.invoke_trigger(event)
    (match,) = [m for m in outcome["matches"] if m["remediation"] == remediation]
    assert match["status"] in ("created", "duplicate"), match
    return match["dag_id"], match["dag_run_id"]


def audit_for(stack, target_suffix: str) -> list[dict]:
    items = stack.aws_client("dynamodb").scan(TableName=get_settings().platform.audit_table)["Items"]
    return [
        {k: v["S"] for k, v in i.items()} for i in items if i["targetResource"]["S"].endswith(target_suffix)
    ]


def pending_request(stack, target_suffix: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in stack.aws_client("dynamodb").scan(TableName=get_settings().platform.approvals_table)[
            "Items"
        ]:
            if item["targetResource"]["S"].endswith(target_suffix) and item["status"]["S"] == "PENDING":
                return item["executionId"]["S"]
        time.sleep(1)
    raise AssertionError(f"no approval request for {target_suffix} within {timeout} s")


def decide(stack, execution_id: str, decision: str) -> None:
    """What the approver does in the UI: trigger approve_remediation with the form's fields."""
    status, body = stack.api(
        "POST",
        "/dags/approve_remediation/dagRuns",
        {
            "dag_run_id": f"decision_{execution_id}",
            "logical_date": None,
            "conf": {
                "execution_id": execution_id,
                "decision": decision,
                "reason": f"{decision} in the e2e test",
            },
        },
        user=APPROVER_USER,
    )
    assert status in (200, 201), body
    stack.wait_for_run("approve_remediation", f"decision_{execution_id}", timeout=180)


def dlq_alarm(queue: str) -> dict:
    return alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue})


def test_auto_approved_success(stack_env):
    sqs, dlq, source = scenarios.dead_letter_queue(150, name="e2e-auto-dlq")
    dag_id, run_id = send(stack_env, dlq_alarm("e2e-auto-dlq"), "sqs_dlq_depth_high")
    assert stack_env.wait_for_run(dag_id, run_id, timeout=300)["state"] == "success"
    (record,) = audit_for(stack_env, ":e2e-auto-dlq")
    assert (record["outcome"], record["operator"]) == ("SUCCESS", "automated")
    assert scenarios.queue_depth(sqs, dlq) == 0 and scenarios.queue_depth(sqs, source) == 150


def test_approval_through_approve_remediation(stack_env):
    s3, bucket = scenarios.public_bucket("e2e-approved-bucket")
    dag_id, run_id = send(
        stack_env, cloudtrail_event("s3", "PutBucketAcl", {"bucketName": bucket}), "s3_public_access"
    )
    decide(stack_env, pending_request(stack_env, ":::e2e-approved-bucket"), "approve")
    assert stack_env.wait_for_run(dag_id, run_id, timeout=300)["state"] == "success"
    (record,) = audit_for(stack_env, ":::e2e-approved-bucket")
    assert (record["outcome"], record["operator"]) == ("SUCCESS", APPROVER_USER)
    assert all(scenarios.public_access_block(s3, bucket).values())


def test_rejection(stack_env):
    s3, bucket = scenarios.public_bucket("e2e-rejected-bucket")
    dag_id, run_id = send(
        stack_env, cloudtrail_event("s3", "PutBucketAcl", {"bucketName": bucket}), "s3_public_access"
    )
    decide(stack_env, pending_request(stack_env, ":::e2e-rejected-bucket"), "reject")
    stack_env.wait_for_run(dag_id, run_id, timeout=300)
    (record,) = audit_for(stack_env, ":::e2e-rejected-bucket")
    assert (record["outcome"], record["operator"]) == ("SKIPPED", APPROVER_USER)
    assert "rejected by alice" in record["action"]
    assert not any(scenarios.public_access_block(s3, bucket).values())


def test_duplicate_event_does_not_act_twice(stack_env):
    sqs, dlq, source = scenarios.dead_letter_queue(150, name="e2e-dup-dlq")
    event = dlq_alarm("e2e-dup-dlq")
    dag_id, run_id = send(stack_env, event, "sqs_dlq_depth_high")
    lambda_module._client = None  # the redelivery reaches a cold container: Airflow itself answers 409
    outcome = stack_env.invoke_trigger(event)
    assert [m["status"] for m in outcome["matches"] if m["remediation"] == "sqs_dlq_depth_high"] == [
        "duplicate"
    ]
    stack_env.wait_for_run(dag_id, run_id, timeout=300)
    # Started again by hand with the same event: the run claims nothing and does nothing.
    status, body = stack_env.api(
        "POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {"event": event}}
    )
    assert status in (200, 201), body
    scenarios.add_messages(sqs, dlq, 150)
    stack_env.wait_for_run(dag_id, body["dag_run_id"], timeout=300)
    assert len(audit_for(stack_env, ":e2e-dup-dlq")) == 1
    assert scenarios.queue_depth(sqs, dlq) == 150


def test_dry_run(stack_env):
    sqs, dlq, source = scenarios.dead_letter_queue(150, name="e2e-dry-dlq")
    event = dlq_alarm("e2e-dry-dlq")
    entry = get_entry("sqs_dlq_depth_high")
    run_id = dag_run_id(entry, EventBridgeEvent.model_validate(event))
    status, body = stack_env.api(
        "POST",
        f"/dags/{entry.dag_id}/dagRuns",
        {"dag_run_id": run_id, "logical_date": None, "conf": {"event": event, "dry_run": True}},
    )
    assert status in (200, 201), body
    stack_env.wait_for_run(entry.dag_id, run_id, timeout=300)
    (record,) = audit_for(stack_env, ":e2e-dry-dlq")
    assert record["outcome"] == "SKIPPED" and record["action"].startswith("SKIPPED: dry run")
    assert scenarios.queue_depth(sqs, dlq) == 150


def test_production_waits_for_approval(stack_env):
    sqs, dlq, source = scenarios.dead_letter_queue(
        150, name="e2e-prod-dlq", tags={"Environment": "production"}
    )
    dag_id, run_id = send(stack_env, dlq_alarm("e2e-prod-dlq"), "sqs_dlq_depth_high")
    execution = pending_request(stack_env, ":e2e-prod-dlq")
    time.sleep(5)  # it keeps waiting: nothing acts without the human
    status, run = stack_env.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
    assert run["state"] == "running" and audit_for(stack_env, ":e2e-prod-dlq") == []
    assert scenarios.queue_depth(sqs, dlq) == 150
    decide(stack_env, execution, "approve")
    assert stack_env.wait_for_run(dag_id, run_id, timeout=300)["state"] == "success"
    (record,) = audit_for(stack_env, ":e2e-prod-dlq")
    assert (record["outcome"], record["operator"]) == ("SUCCESS", APPROVER_USER)
    assert scenarios.queue_depth(sqs, dlq) == 0


def test_iam_is_enforced_on_the_stack(stack_env):
    """The stack's AWS authenticates and authorises every request: keys of no principal are refused, and
    the hub's execution role (Airflow's credentials) cannot act outside its policy, which the admin can."""
    import boto3
    from botocore.exceptions import ClientError

    from aiops_local import enforcement

    def iam(**keys):
        return boto3.client("iam", endpoint_url=stack_env.moto_url, region_name="us-east-1", **keys)

    with pytest.raises(ClientError) as unknown:
        iam(aws_access_key_id="testing", aws_secret_access_key="testing").list_users()
    assert unknown.value.response["Error"]["Code"] == "InvalidClientTokenId"

    principals = stack_env.principals
    worker = enforcement.assumed_keys(
        stack_env.aws_client("sts"), principals.execution_role_arn, enforcement.WORKER_SESSION
    )
    as_worker = {k.lower(): v for k, v in worker.items()}
    with pytest.raises(ClientError) as denied:
        iam(**as_worker).create_user(UserName="e2e-not-allowed")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert principals.worker_session_arn in denied.value.response["Error"]["Message"]
    assert "e2e-not-allowed" not in [
        u["UserName"] for u in iam(**principals.admin_keys).list_users()["Users"]
    ]
