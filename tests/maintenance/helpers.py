"""Backdating and stubbing for the maintenance tests: moto stamps resources with "now", and lacks the
Recycle Bin and Cost Explorer anomaly APIs (botocore Stubber with the documented shapes stands in)."""

from __future__ import annotations

from datetime import datetime, timedelta

from moto.core import DEFAULT_ACCOUNT_ID

REGION = "us-east-1"


def backdate_snapshot(snapshot_id: str, days: float) -> None:
    from moto.ec2.models import ec2_backends

    snapshot = ec2_backends[DEFAULT_ACCOUNT_ID][REGION].snapshots[snapshot_id]
    snapshot.start_time = datetime.utcnow() - timedelta(days=days)


def backdate_access_key(user: str, key_id: str, days: float) -> None:
    from moto.iam.models import iam_backends

    for key in iam_backends[DEFAULT_ACCOUNT_ID]["global"].users[user].access_keys:
        if key.access_key_id == key_id:
            key.create_date = datetime.utcnow() - timedelta(days=days)
            return
    raise KeyError(key_id)


def rbin_client(rules: list[dict], rounds: int = 2):
    """A Recycle Bin client answering ListRules then GetRule per rule, as documented, ``rounds`` times
    (the plan reads the rules, and the deletion reads them again)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("rbin", region_name=REGION)
    stubber = Stubber(client)
    for _ in range(rounds):
        stub_rules(stubber, rules)
    stubber.activate()
    return client, stubber


def stub_rules(stubber, rules: list[dict]) -> None:
    """One more ListRules + GetRule round, answered with these rules."""
    stubber.add_response(
        "list_rules",
        {
            "Rules": [
                {
                    "Identifier": r["Identifier"],
                    "RetentionPeriod": r["RetentionPeriod"],
                    "LockState": "unlocked",
                    "RuleArn": f"arn:aws:rbin:{REGION}:{DEFAULT_ACCOUNT_ID}:rule/{r['Identifier']}",
                }
                for r in rules
            ]
        },
        {"ResourceType": "EBS_SNAPSHOT"},
    )
    for r in rules:
        stubber.add_response(
            "get_rule",
            {
                "Identifier": r["Identifier"],
                "ResourceType": "EBS_SNAPSHOT",
                "RetentionPeriod": r["RetentionPeriod"],
                "Status": "available",
                **({"ResourceTags": r["ResourceTags"]} if "ResourceTags" in r else {}),
            },
            {"Identifier": r["Identifier"]},
        )


REGION_RULE = {
    "Identifier": "abcdefghijk",
    "RetentionPeriod": {"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"},
}


def attach_snapshot_to_ami(snapshot_id: str) -> str:
    """Register an AMI whose root device is this snapshot. moto gives a registered image a snapshot of
    its own; pointing the image at this one makes DescribeImages list it and DeleteSnapshot refuse it
    (InvalidSnapshot.InUse), as EC2 does."""
    import boto3
    from moto.ec2.models import ec2_backends

    image_id = boto3.client("ec2", region_name=REGION).register_image(
        Name=f"uses-{snapshot_id}",
        RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot_id}}],
    )["ImageId"]
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    snapshot = backend.snapshots[snapshot_id]
    backend.amis[image_id].ebs_snapshot = snapshot
    snapshot.from_ami = image_id
    return image_id
