"""The EventBridge patterns and targets of ec2_cpu_high, ecs_tasks_below_desired, lambda_throttles,
ebs_volume_utilisation_high, dynamodb_read_throttles, sqs_queue_depth_high and sns_delivery_failures,
checked with moto's EventBridge pattern matcher as in test_security_and_network_triggers.py.

moto's matcher does not descend into an alarm's detail.configuration.metrics[] (EventBridge does), so for
the alarm entries a match is not asserted (None), only non-matches and the target resolved from the event.
"""

import copy

import pytest

from matcarv_aiops.catalogue import get_entry
from tests.events import ACCOUNT, alarm_event, ecs_service_action
from tests.remediations.triggers import check_pattern_and_target

SERVICE = f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/shop/web"
DISK = {"InstanceId": "i-0abc", "path": "/data", "device": "nvme1n1", "fstype": "xfs"}

CASES = [
    # (entry, event, matches, target ARN or None)
    (
        "ec2_cpu_high",
        alarm_event("AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": "web"}),
        None,
        f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/web",
    ),
    (
        "ec2_cpu_high",
        alarm_event("AWS/EC2", "CPUUtilization", {"InstanceId": "i-0abc"}),
        None,
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abc",
    ),
    (
        "ec2_cpu_high",
        alarm_event("AWS/EC2", "CPUUtilization", {"InstanceId": "i-0abc"}, state="OK"),
        False,
        None,
    ),
    ("ecs_tasks_below_desired", ecs_service_action(SERVICE), True, SERVICE),
    (
        "ecs_tasks_below_desired",
        ecs_service_action(SERVICE, "SERVICE_STEADY_STATE", event_type="INFO"),
        False,
        None,
    ),
    (
        "lambda_throttles",
        alarm_event("AWS/Lambda", "Throttles", {"FunctionName": "checkout"}),
        None,
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:checkout",
    ),
    (
        "ebs_volume_utilisation_high",
        alarm_event("CWAgent", "disk_used_percent", DISK | {"VolumeId": "vol-0abc"}),
        None,
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/vol-0abc",
    ),
    (
        "ebs_volume_utilisation_high",
        alarm_event("CWAgent", "disk_used_percent", DISK),
        None,
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abc",
    ),
    (
        "dynamodb_read_throttles",
        alarm_event("AWS/DynamoDB", "ReadThrottleEvents", {"TableName": "orders"}),
        None,
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders",
    ),
    (
        "sqs_queue_depth_high",
        alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders"}),
        None,
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders",
    ),
    (
        "sns_delivery_failures",
        alarm_event("AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": "events"}),
        None,
        f"arn:aws:sns:us-east-1:{ACCOUNT}:events",
    ),
    (
        "sns_delivery_failures",
        alarm_event(
            "AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": "events"}, state="INSUFFICIENT_DATA"
        ),
        False,
        None,
    ),
]


@pytest.mark.parametrize(
    "entry_id, event, matches, target", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_pattern_and_target(entry_id, event, matches, target):
    check_pattern_and_target(entry_id, event, matches, target)


def test_the_queue_entries_differ_only_in_the_queue_name_they_take():
    # One alarm metric for both; a name containing "-dlq" goes to the dead-letter entry, any other to the
    # depth entry (routing tests: tests/ingress/test_routing.py), and both name the queue the same way.
    queue_entry, dlq_entry = get_entry("sqs_queue_depth_high"), get_entry("sqs_dlq_depth_high")
    metric = ("detail", "configuration", "metrics", "metricStat", "metric")

    def without_queue_name(trigger):
        trigger = copy.deepcopy(trigger)
        node = trigger
        for key in metric:
            node = node[key]
        return trigger, node["dimensions"].pop("QueueName")

    queue_trigger, queue_names = without_queue_name(queue_entry.trigger)
    dlq_trigger, dlq_names = without_queue_name(dlq_entry.trigger)
    assert queue_trigger == dlq_trigger
    assert queue_names == [{"anything-but": dlq_names[0]}] and len(dlq_names) == 1
    event = alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders-dlq"})
    assert queue_entry.resolve_target(event) == dlq_entry.resolve_target(event)
