from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matcarv_aiops.remediations.ec2_cpu_high import Ec2CpuHigh
from tests.events import alarm_event
from tests.remediations.iam_calls import declared_permissions_only  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("declared_permissions_only")

REGION = "us-east-1"
MOTO_AMI = "ami-03cf127a"  # one of the images moto ships


def _group(*, desired=1, max_size=3, tags=None):
    boto3.client("ec2", region_name=REGION).create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": MOTO_AMI, "InstanceType": "t3.micro"}
    )
    asg = boto3.client("autoscaling", region_name=REGION)
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
        MinSize=1,
        MaxSize=max_size,
        DesiredCapacity=desired,
        AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in (tags or {}).items()],
    )
    instance = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0][
        "Instances"
    ][0]
    return asg, instance["InstanceId"]


def _cpu(dimensions: dict, values: list[float]):
    now = datetime.now(UTC)
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Value": value,
                "Unit": "Percent",
                "Timestamp": now - timedelta(minutes=2 * i + 1),
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            }
            for i, value in enumerate(values)
        ],
    )


def _desired(asg):
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0][
        "DesiredCapacity"
    ]


def test_instance_alarm_scales_its_group_out_by_one(remediate):
    asg, instance = _group()
    _cpu({"InstanceId": instance}, [97, 95, 93, 99])
    run = remediate(
        "ec2_cpu_high", {"event": alarm_event("AWS/EC2", "CPUUtilization", {"InstanceId": instance})}
    )
    assert run.outcome == "SUCCESS", run
    assert _desired(asg) == 2


def test_group_alarm_never_passes_max_size(remediate):
    asg, _ = _group(desired=2, max_size=3)
    _cpu({"AutoScalingGroupName": "web"}, [96, 96])
    event = alarm_event("AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": "web"})
    assert remediate("ec2_cpu_high", {"event": event}).outcome == "SUCCESS"
    assert _desired(asg) == 3
    again = remediate(
        "ec2_cpu_high", {"event": alarm_event("AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": "web"})}
    )
    assert again.outcome == "SKIPPED"
    assert _desired(asg) == 3


def test_failed_validation_restores_recorded_capacity(remediate, monkeypatch):
    asg, instance = _group()
    _cpu({"InstanceId": instance}, [97, 95])
    real_execute = Ec2CpuHigh.execute

    def partial(self, ctx, state):  # the group took one more instance than validation will look for
        result = real_execute(self, ctx, state)
        return {**result, "planned_capacity": result["planned_capacity"] + 1}

    monkeypatch.setattr(Ec2CpuHigh, "execute", partial)
    run = remediate(
        "ec2_cpu_high", {"event": alarm_event("AWS/EC2", "CPUUtilization", {"InstanceId": instance})}
    )
    assert run.outcome == "FAILURE" and run.record("rollback").done["rolled_back"], run
    assert "back from 2 to 1" in run.audit.action
    assert _desired(asg) == 1


def test_cpu_not_sustained_is_skipped(remediate):
    asg, instance = _group()
    _cpu({"InstanceId": instance}, [97, 40, 95])
    run = remediate(
        "ec2_cpu_high", {"event": alarm_event("AWS/EC2", "CPUUtilization", {"InstanceId": instance})}
    )
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action, run
    assert _desired(asg) == 1
