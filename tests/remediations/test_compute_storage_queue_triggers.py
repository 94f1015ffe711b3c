"""The EventBridge patterns and targets of ec2_cpu_high, ecs_tasks_below_desired, lambda_throttles,
ebs_volume_utilisation_high, dynamodb_read_throttles, sqs_queue_depth_high and sns_delivery_failures,
checked with moto's EventBridge pattern matcher as in test_security_and_network_triggers.py.

moto's matcher does not descend into an alarm's detail.configuration.metrics[] (EventBridge does), so for
the alarm entries a match is not asserted (None), only non-matches and the target resolved from the event.
"""


import pytest

from matcarv_aiops.catalogue import get_entry
from tests.events import ACCOUNT, alarm_event, ecs_service_action
from tests.remediations.triggers import check_pattern_and_target
from tests.remediations.triggers import matches as matches_pattern

SERVICE = f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/shop/web"
DISK = {"InstanceId": "i-0abc", "path": "/data", "device": "nvme1n1", "fstype": "xfs"}

CASES = [
    # (entry, event, matches, target ARN or None)
    ("ec2_cpu_high", alarm_event("AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": "web"}), None,
     f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/web"),
    ("ec2_cpu_high", alarm_event("AWS/EC2", "CPUUtilization", {"InstanceId": "i-0abc"}), None,
     f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abc"),
    ("ec2_cpu_high", alarm_event("AWS/EC2", "CPUUtilization", {"InstanceId": "i-0abc"}, state="OK"), False, None),
    ("ecs_tasks_below_desired", ecs_service_action(SERVICE), True, SERVICE),
    ("ecs_tasks_below_desired", ecs_service_action(SERVICE, "SERVICE_STEADY_STATE", event_type="INFO"), False, None),
    ("lambda_throttles", alarm_event("AWS/Lambda", "Throttles", {"FunctionName": "checkout"}), None,
     f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:checkout"),
    ("ebs_volume_utilisation_high", alarm_event("CWAgent", "disk_used_percent", DISK | {"VolumeId": "vol-0abc"}),
     None, f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/vol-0abc"),
    ("ebs_volume_utilisation_high", alarm_event("CWAgent", "disk_used_percent", DISK), None,
     f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abc"),
    ("dynamodb_read_throttles", alarm_event("AWS/DynamoDB", "ReadThrottleEvents", {"TableName": "orders"}), None,
     f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"),
    ("sqs_queue_depth_high", alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders"}),
     None, f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"),
    ("sns_delivery_failures", alarm_event("AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": "events"}), None,
     f"arn:aws:sns:us-east-1:{ACCOUNT}:events"),
    ("sns_delivery_failures", alarm_event("AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": "events"},
                                          state="INSUFFICIENT_DATA"), False, None),
]


@pytest.mark.parametrize("entry_id, event, matches, target", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_pattern_and_target(entry_id, event, matches, target):
    check_pattern_and_target(entry_id, event, matches, target)


def test_one_queue_alarm_starts_both_queue_entries_on_the_same_queue():
    # Identical triggers, so one alarm starts both DAGs; eligibility lets only one act (see the entry tests).
    assert get_entry("sqs_queue_depth_high").trigger == get_entry("sqs_dlq_depth_high").trigger
    event = alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders"})
    queue_entry, dlq_entry = get_entry("sqs_queue_depth_high"), get_entry("sqs_dlq_depth_high")
    assert queue_entry.resolve_target(event) == dlq_entry.resolve_target(event)
