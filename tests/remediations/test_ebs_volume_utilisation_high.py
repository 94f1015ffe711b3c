import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matcarv_aiops.remediations.ebs_volume_utilisation_high import EbsVolumeUtilisationHigh
from tests.events import alarm_event
from tests.remediations.iam_calls import declared_permissions_only  # noqa: F401 (a fixture)
from tests.remediations.notifications import TopicInbox

pytestmark = pytest.mark.usefixtures("declared_permissions_only")

REGION = "us-east-1"


def _volume(used_percent: float, *, with_volume_dimension: bool = True):
    ec2 = boto3.client("ec2", region_name=REGION)
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=100, VolumeType="gp3")["VolumeId"]
    dimensions = {"InstanceId": "i-0123456789abcdef0", "path": "/data", "device": "nvme1n1", "fstype": "xfs"}
    if with_volume_dimension:
        dimensions["VolumeId"] = volume
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="CWAgent",
        MetricData=[
            {
                "MetricName": "disk_used_percent",
                "Value": used_percent,
                "Unit": "Percent",
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            }
        ],
    )
    return ec2, volume, alarm_event("CWAgent", "disk_used_percent", dimensions)


def _snapshots(ec2, volume):
    return ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [volume]}])[
        "Snapshots"
    ]


def test_snapshots_the_volume_and_alerts_for_resize(remediate, settings):
    inbox = TopicInbox(settings)
    ec2, volume, event = _volume(91.5)
    run = remediate("ebs_volume_utilisation_high", {"event": event})
    assert run.outcome == "SUCCESS", run
    [snapshot] = _snapshots(ec2, volume)
    assert {"Key": "aiops:remediation", "Value": "ebs_volume_utilisation_high"} in snapshot["Tags"]
    [alert] = inbox.messages("alert")
    payload = json.loads(alert["MessageAttributes"]["payload"]["Value"])
    assert payload["volume"] == volume and payload["snapshot"] == snapshot["SnapshotId"]
    assert payload["usedPercent"] == 91.5


def test_failed_validation_is_failure_and_changes_nothing_else(remediate, monkeypatch):
    ec2, volume, event = _volume(95)
    broken = {"VolumeId": volume, "State": "error"}  # validation's read-back: the snapshot failed
    monkeypatch.setattr(
        EbsVolumeUtilisationHigh,
        "_snapshot",
        lambda self, ctx, snapshot_id: broken | {"SnapshotId": snapshot_id},
    )
    run = remediate("ebs_volume_utilisation_high", {"event": event})
    assert run.outcome == "FAILURE" and not run.record("rollback").done["rolled_back"], run
    assert "is error" in run.audit.action
    assert len(_snapshots(ec2, volume)) == 1  # the one snapshot taken; no other change
    assert ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["Size"] == 100


def test_disk_not_full_or_volume_unknown_is_skipped(remediate, settings):
    inbox = TopicInbox(settings)
    ec2, volume, event = _volume(70)
    run = remediate("ebs_volume_utilisation_high", {"event": event})
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action, run
    instance = ec2.run_instances(
        ImageId="ami-03cf127a",
        MinCount=1,
        MaxCount=1,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 50}},
        ],
    )["Instances"][0]["InstanceId"]
    event = alarm_event(
        "CWAgent",
        "disk_used_percent",
        {"InstanceId": instance, "path": "/", "device": "xvda1", "fstype": "xfs"},
    )
    run = remediate("ebs_volume_utilisation_high", {"event": event})
    assert run.outcome == "SKIPPED" and "does not say which is full" in run.audit.action, run
    taken = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["aiops:execution-id"]}]
    )
    assert taken["Snapshots"] == [] and inbox.messages("alert") == []
