"""Real problems to create in an AWS account (moto: tests, `make demo`, the local stack), one per remediation."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3

REGION = "us-east-1"


def public_bucket(name: str = "team-share", *, tags: dict[str, str] | None = None):
    """A bucket whose Block Public Access settings were switched off."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False})
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    return s3, name


def public_access_block(s3, bucket: str) -> dict[str, bool]:
    return s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]


def dead_letter_queue(depth: int, name: str = "orders-dlq", *, tags: dict[str, str] | None = None):
    """A DLQ with `depth` messages and its source queue. Returns (sqs, dlq_url, source_url)."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName=name, tags=tags or {})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(QueueName=name.removesuffix("-dlq") or "source", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    add_messages(sqs, dlq, depth)
    return sqs, dlq, source


def add_messages(sqs, url: str, count: int) -> None:
    for start in range(0, count, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"message {start + i}"}
                                                      for i in range(min(10, count - start))])


def queue_depth(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def failing_instance(*, tags: dict[str, str] | None = None, failing: bool = True):
    """A running EBS-backed instance whose StatusCheckFailed metric reports a failure now (or, with
    failing=False, a pass)."""
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    spec = {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 **({"TagSpecifications": [spec]} if tags else {}))["Instances"][0]["InstanceId"]
    report_status_check(instance, 1.0 if failing else 0.0)
    return ec2, instance


def report_status_check(instance_id: str, value: float) -> None:
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(Namespace="AWS/EC2", MetricData=[{
        "MetricName": "StatusCheckFailed", "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
        "Timestamp": datetime.now(timezone.utc), "Value": value}])


def instance_state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
