"""matcarv_aiops.reconcile without Airflow: when a claim counts as stuck while its run's state cannot be
read, what the record says about a possible change, claims from before claims kept their details, and
one claim's trouble not keeping the others unfinished."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import boto3
import pytest

from matcarv_aiops.models import utc_now
from matcarv_aiops.reconcile import ReconcileIncomplete, reconcile
from matcarv_aiops.safety import SafetyStore

TARGET = "arn:aws:sqs:us-east-1:123456789012:orders-dlq"


def _claim(settings, *, details: bool = True) -> str:
    execution_id = str(uuid.uuid4())
    SafetyStore(settings).claim_execution(
        execution_id,
        f"manual__{execution_id[:8]}",
        "remediate_sqs_dlq_depth_high",
        details={"remediation": "sqs_dlq_depth_high", "targetArn": TARGET, "trigger": '{"manual": true}'}
        if details
        else None,
    )
    return execution_id


def _record(settings, execution_id: str) -> dict | None:
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=settings.platform.audit_table, Key={"executionId": {"S": execution_id}}
    )
    return {k: v["S"] for k, v in item["Item"].items()} if "Item" in item else None


def test_an_unreadable_run_is_stuck_only_after_the_lock_lifetime_and_the_intent_is_told(aws):
    execution_id = _claim(aws)
    safety = SafetyStore(aws)
    safety.acquire_lock(TARGET, execution_id)
    safety.mark_intent(execution_id, "manual__x", "Redrive 150 messages")
    lock_ttl = timedelta(minutes=aws.safety.lock_ttl_minutes)

    early = reconcile(aws, now=utc_now() + lock_ttl - timedelta(minutes=1))
    assert early["left"] == [execution_id] and _record(aws, execution_id) is None

    late = reconcile(aws, now=utc_now() + lock_ttl + timedelta(minutes=1))
    assert late["written"] == [execution_id]
    record = _record(aws, execution_id)
    assert record["outcome"] == "FAILURE" and "no sign of progress since" in record["action"]
    assert "A change may have been made: Redrive 150 messages started at" in record["action"]
    assert record["action"].endswith("needs a human")
    assert len(safety.recent_actions("sqs_dlq_depth_high", TARGET)) == 1
    assert safety._get(f"lock#{TARGET}") is None
    assert reconcile(aws, now=utc_now() + lock_ttl * 2) == {"written": [], "settled": [], "left": []}


def test_a_claim_without_details_is_rebuilt_from_its_diagnostics(aws):
    execution_id = _claim(aws, details=False)
    event = {"id": "e-1", "source": "aws.cloudwatch"}
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=aws.platform.diagnostics_bucket,
        Key=f"diagnostics/sqs_dlq_depth_high/{execution_id}/state.json",
        Body=json.dumps({"target": TARGET, "trigger": event}).encode(),
    )
    reconcile(aws, run_state=lambda dag_id, run_id: "failed", now=utc_now() + timedelta(hours=1))
    record = _record(aws, execution_id)
    assert record["targetResource"] == TARGET and json.loads(record["trigger"]) == event
    assert record["runbook"] == "remediate_sqs_dlq_depth_high" and "Nothing was changed" in record["action"]


def test_one_bad_claim_does_not_keep_the_others_unfinished(aws):
    good, bad = _claim(aws), _claim(aws)

    def run_state(dag_id: str, run_id: str) -> str | None:
        if run_id.endswith(bad[:8]):
            raise RuntimeError("Airflow API answered 500")
        return "failed"

    with pytest.raises(ReconcileIncomplete, match=f"1 claims not reconciled.*{bad}.*answered 500"):
        reconcile(aws, run_state=run_state, now=utc_now() + timedelta(hours=1))
    assert _record(aws, good)["outcome"] == "FAILURE" and _record(aws, bad) is None
