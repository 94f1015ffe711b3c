"""alarm_sync on the local stack, as MWAA would run it: the hourly DAG, as the execution role, assumes
``AIOpsMaintenance-alarm_sync`` in the hub and in the member account (deployed from the synthesized
templates, IAM enforced) and keeps each opted-in queue's alarm in the queue's own account and Region."""

from __future__ import annotations

import json

import pytest

from aiops_local.cloudformation import MEMBER_ACCOUNT, OTHER_REGION, REGION
from local import scenarios
from matcarv_aiops.settings import get_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAG = "alarm_sync"
DLQ_ENTRY = "sqs_dlq_depth_high"
RUN_ID = "e2e_alarm_sync"


def _opted_in_queue(sqs, name: str) -> str:
    url = sqs.create_queue(QueueName=name, tags={"aiops:managed": "true"})["QueueUrl"]
    return url.rsplit("/", 1)[-1]


def _alarms(cloudwatch) -> set[str]:
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix="AIOps-")
    return {alarm["AlarmName"] for page in pages for alarm in page["MetricAlarms"]}


def test_alarm_sync_keeps_each_alarm_in_its_queues_account_and_region(stack_env):
    hub_queue = _opted_in_queue(stack_env.aws_client("sqs"), "e2e-alarm-sync-hub-dlq")
    member_sqs = scenarios.admin_client_in(MEMBER_ACCOUNT, "sqs", region=OTHER_REGION)
    member_queue = _opted_in_queue(member_sqs, "e2e-alarm-sync-member-dlq")

    stack_env.unpause(DAG)
    status, body = stack_env.api(
        "POST", f"/dags/{DAG}/dagRuns", {"dag_run_id": RUN_ID, "logical_date": None, "conf": {}}
    )
    assert status == 200, body
    run = stack_env.wait_for_run(DAG, RUN_ID, timeout=300)
    assert run["state"] == "success", stack_env.api("GET", f"/dags/{DAG}/dagRuns/{RUN_ID}/taskInstances")[1]

    hub_alarms = _alarms(stack_env.aws_client("cloudwatch"))
    member_alarms = _alarms(scenarios.admin_client_in(MEMBER_ACCOUNT, "cloudwatch", region=OTHER_REGION))
    member_hub_region = _alarms(scenarios.admin_client_in(MEMBER_ACCOUNT, "cloudwatch", region=REGION))
    assert f"AIOps-{DLQ_ENTRY}-{hub_queue}" in hub_alarms
    assert f"AIOps-{DLQ_ENTRY}-{member_queue}" in member_alarms
    assert f"AIOps-{DLQ_ENTRY}-{member_queue}" not in hub_alarms | member_hub_region
    # The run's one audit record (unpausing also started the latest hourly run, which writes its own).
    items = stack_env.aws_client("dynamodb").scan(TableName=get_settings().platform.audit_table)["Items"]
    (record,) = [
        i for i in items if i["runbook"]["S"] == DAG and json.loads(i["trigger"]["S"])["runId"] == RUN_ID
    ]
    assert record["outcome"]["S"] == "SUCCESS", json.dumps(record)
