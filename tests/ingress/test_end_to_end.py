"""End to end: the trigger Lambda's handler starts a real remediation on a real ``airflow standalone``.

moto_server plays AWS: an SQS dead-letter queue holds 150 messages. The CloudWatch alarm event goes
through the handler (local backend, REST API v2 with a JWT), the remediate_sqs_dlq_depth_high DAG runs
on Airflow and redrives the messages; a second delivery of the same event starts nothing.
"""

from __future__ import annotations

import json

import pytest

from matcarv_aiops.ingress import handler as lambda_module
from tests.ingress import samples

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DAG_ID = "remediate_sqs_dlq_depth_high"


def test_an_alarm_event_runs_its_remediation_once(stack_env):
    stack = stack_env
    sqs = stack.aws_client("sqs")
    dlq_url = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    source_url = sqs.create_queue(
        QueueName="orders",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
    )["QueueUrl"]
    for start in range(0, 150, 10):
        sqs.send_message_batch(
            QueueUrl=dlq_url,
            Entries=[{"Id": str(i), "MessageBody": json.dumps({"order": start + i})} for i in range(10)],
        )
    stack.unpause(DAG_ID)

    event = samples.load("cloudwatch_alarm_sqs_dlq_depth.json")
    first = stack.invoke_trigger(event)
    (match,) = [m for m in first["matches"] if m["remediation"] == "sqs_dlq_depth_high"]
    assert match["status"] == "created"

    lambda_module._client = None  # the redelivery lands on another container: Airflow answers 409
    again = stack.invoke_trigger(event)
    assert [m["status"] for m in again["matches"] if m["dag_id"] == DAG_ID] == ["duplicate"]

    run = stack.wait_for_run(DAG_ID, match["dag_run_id"], timeout=400)
    assert run["state"] == "success", run
    assert run["logical_date"] is None and run["conf"]["event"]["id"] == event["id"]
    status, runs = stack.api("GET", f"/dags/{DAG_ID}/dagRuns?limit=100")
    assert status == 200
    assert [
        r["dag_run_id"]
        for r in runs["dag_runs"]
        if (r["conf"] or {}).get("event", {}).get("id") == event["id"]
    ] == [match["dag_run_id"]]

    def depth(url):
        return int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )

    assert (depth(dlq_url), depth(source_url)) == (0, 150)
