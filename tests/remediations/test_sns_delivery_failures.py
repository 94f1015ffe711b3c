import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matcarv_aiops.remediations.sns_delivery_failures import SnsDeliveryFailures
from tests.events import ACCOUNT, alarm_event
from tests.remediations.iam_calls import declared_permissions_only  # noqa: F401 (a fixture)
from tests.remediations.notifications import TopicInbox

pytestmark = pytest.mark.usefixtures("declared_permissions_only")

REGION = "us-east-1"
TOPIC = "order-events"
EVENT = alarm_event("AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": TOPIC})
ORIGINAL_POLICY = {"type": ["order"]}


def _topic(*, failed: float, delivered: float):
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    subscriptions, queues = {}, {}
    for name in ("billing", "fulfilment"):
        queues[name] = sqs.create_queue(QueueName=name)["QueueUrl"]
        subscriptions[name] = sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        )["SubscriptionArn"]
    failing = subscriptions["fulfilment"]
    sns.set_subscription_attributes(
        SubscriptionArn=failing, AttributeName="FilterPolicyScope", AttributeValue="MessageBody"
    )
    sns.set_subscription_attributes(
        SubscriptionArn=failing, AttributeName="FilterPolicy", AttributeValue=json.dumps(ORIGINAL_POLICY)
    )
    now = datetime.now(UTC) - timedelta(minutes=1)
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/SNS",
        MetricData=[
            {
                "MetricName": metric,
                "Value": value,
                "Timestamp": now,
                "Dimensions": [{"Name": "TopicName", "Value": TOPIC}],
            }
            for metric, value in (
                ("NumberOfNotificationsFailed", failed),
                ("NumberOfNotificationsDelivered", delivered),
            )
        ],
    )
    # delivery status logging, in the documented record format
    logs, group = boto3.client("logs", region_name=REGION), f"sns/{REGION}/{ACCOUNT}/{TOPIC}/Failure"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="stream")
    logs.put_log_events(
        logGroupName=group,
        logStreamName="stream",
        logEvents=[
            {
                "timestamp": int(time.time() * 1000) - 30000 + i,
                "message": json.dumps(
                    {
                        "notification": {
                            "messageId": f"m{i}",
                            "topicArn": topic,
                            "timestamp": "2026-11-27 03:59:00.000",
                        },
                        "delivery": {
                            "deliveryId": f"d{i}",
                            "destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:fulfilment",
                            "providerResponse": '{"ErrorCode":"AccessDenied"}',
                            "dwellTimeMs": 20,
                            "attempts": 1,
                            "statusCode": 403,
                        },
                        "status": "FAILURE",
                    }
                ),
            }
            for i in range(5)
        ],
    )
    return sns, sqs, topic, subscriptions, queues


def _policy(sns, subscription):
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]
    return attributes.get("FilterPolicyScope"), json.loads(attributes.get("FilterPolicy") or "{}")


def _received(sqs, url):
    return len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []))


def test_disables_the_failing_subscription_and_alerts(remediate, settings):
    inbox = TopicInbox(settings)
    sns, sqs, topic, subscriptions, queues = _topic(failed=20, delivered=80)
    run = remediate("sns_delivery_failures", {"event": EVENT})
    assert run.outcome == "SUCCESS", run.audit.action
    assert _policy(sns, subscriptions["fulfilment"])[1] == {"aiops-disabled-by": [run.audit.execution_id]}
    sns.publish(TopicArn=topic, Message=json.dumps({"type": "order"}))
    assert _received(sqs, queues["fulfilment"]) == 0 and _received(sqs, queues["billing"]) == 1
    [alert] = inbox.messages("alert")
    payload = json.loads(alert["MessageAttributes"]["payload"]["Value"])
    assert payload["subscription"] == subscriptions["fulfilment"] and "MessageBody" in payload["toRestore"]


def test_failed_validation_restores_recorded_filter_policy(remediate, monkeypatch):
    sns, sqs, topic, subscriptions, queues = _topic(failed=20, delivered=80)
    real_execute = SnsDeliveryFailures.execute

    def overwritten(self, ctx, state):  # another writer replaced the policy right after ours
        result = real_execute(self, ctx, state)
        ctx.client("sns").set_subscription_attributes(
            SubscriptionArn=result["subscription_arn"],
            AttributeName="FilterPolicy",
            AttributeValue=json.dumps({"type": ["refund"]}),
        )
        return result

    monkeypatch.setattr(SnsDeliveryFailures, "execute", overwritten)
    run = remediate("sns_delivery_failures", {"event": EVENT})
    assert run.outcome == "FAILURE" and "restored the filter policy" in run.audit.action, run.audit.action
    assert _policy(sns, subscriptions["fulfilment"]) == ("MessageBody", ORIGINAL_POLICY)
    sns.publish(TopicArn=topic, Message=json.dumps({"type": "order"}))
    assert _received(sqs, queues["fulfilment"]) == 1


def test_low_failure_rate_is_skipped_and_nothing_changes(remediate, settings):
    inbox = TopicInbox(settings)
    sns, sqs, topic, subscriptions, queues = _topic(failed=3, delivered=97)
    run = remediate("sns_delivery_failures", {"event": EVENT})
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action, run.audit.action
    assert _policy(sns, subscriptions["fulfilment"]) == ("MessageBody", ORIGINAL_POLICY)
    assert inbox.messages("alert") == []
