"""Real problems to create in an AWS account (moto: tests, `make demo`, the local stack),
one per remediation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3

REGION = "us-east-1"
# Amazon Linux, EBS-backed, one of moto's built-in images. Asked for by name: describing every Amazon image
# (1,301 in moto) to take the first took seconds of serialization per call.
EBS_IMAGE_NAME = "amzn-ami-hvm-2017.09.1.20171103-x86_64-gp2"


def public_bucket(name: str = "team-share", *, tags: dict[str, str] | None = None):
    """A bucket whose Block Public Access settings were switched off."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": False,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    if tags:
        s3.put_bucket_tagging(
            Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
        )
    return s3, name


def public_access_block(s3, bucket: str) -> dict[str, bool]:
    return s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]


def dead_letter_queue(depth: int, name: str = "orders-dlq", *, tags: dict[str, str] | None = None):
    """A DLQ with `depth` messages and its source queue. Returns (sqs, dlq_url, source_url)."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName=name, tags=tags or {})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName=name.removesuffix("-dlq") or "source",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
    )["QueueUrl"]
    add_messages(sqs, dlq, depth)
    return sqs, dlq, source


def add_messages(sqs, url: str, count: int) -> None:
    for start in range(0, count, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": f"message {start + i}"} for i in range(min(10, count - start))
            ],
        )


def queue_depth(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def ebs_image(ec2) -> str:
    """The id of the EBS-backed Amazon Linux image instances are launched from."""
    [image] = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [EBS_IMAGE_NAME]}])[
        "Images"
    ]
    return image["ImageId"]


def failing_instance(*, tags: dict[str, str] | None = None, failing: bool = True, region: str = REGION):
    """A running EBS-backed instance whose StatusCheckFailed metric reports a failure now (or, with
    failing=False, a pass), in ``region``."""
    ec2 = boto3.client("ec2", region_name=region)
    image = ebs_image(ec2)
    spec = {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        **({"TagSpecifications": [spec]} if tags else {}),
    )["Instances"][0]["InstanceId"]
    report_status_check(instance, 1.0 if failing else 0.0, region=region)
    return ec2, instance


def report_status_check(instance_id: str, value: float, *, region: str = REGION) -> None:
    boto3.client("cloudwatch", region_name=region).put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "StatusCheckFailed",
                "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                "Timestamp": datetime.now(UTC),
                "Value": value,
            }
        ],
    )


def instance_state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"][
        "Name"
    ]


def failing_over_dns(name: str = "api.shop.example.com."):
    """A failover record pair whose primary's health check reports unhealthy and secondary healthy.
    Returns (route53, zone_id, primary_check_id)."""
    import uuid
    from datetime import timedelta

    route53 = boto3.client("route53", region_name=REGION)
    zone = route53.create_hosted_zone(Name=name.split(".", 1)[1], CallerReference=str(uuid.uuid4()))[
        "HostedZone"
    ]["Id"]
    checks = {}
    for ip in ("192.0.2.10", "198.51.100.10"):
        checks[ip] = route53.create_health_check(
            CallerReference=str(uuid.uuid4()),
            HealthCheckConfig={
                "IPAddress": ip,
                "Port": 443,
                "Type": "HTTPS",
                "ResourcePath": "/health",
                "RequestInterval": 30,
                "FailureThreshold": 3,
            },
        )["HealthCheck"]["Id"]
    route53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "A",
                        "SetIdentifier": region,
                        "Failover": role,
                        "TTL": 60,
                        "ResourceRecords": [{"Value": ip}],
                        "HealthCheckId": checks[ip],
                    },
                }
                for region, role, ip in (
                    ("us-east-1", "PRIMARY", "192.0.2.10"),
                    ("eu-west-1", "SECONDARY", "198.51.100.10"),
                )
            ]
        },
    )
    when = datetime.now(UTC) - timedelta(minutes=1)
    for ip, healthy in (("192.0.2.10", 0.0), ("198.51.100.10", 1.0)):
        boto3.client("cloudwatch", region_name=REGION).put_metric_data(
            Namespace="AWS/Route53",
            MetricData=[
                {
                    "MetricName": "HealthCheckStatus",
                    "Value": healthy,
                    "Timestamp": when,
                    "Dimensions": [{"Name": "HealthCheckId", "Value": checks[ip]}],
                }
            ],
        )
    return route53, zone, checks["192.0.2.10"]


def failover_roles(route53, zone: str) -> dict[str, str]:
    sets = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Failover"] for r in sets if r.get("Failover")}


def alb_with_5xx(name: str = "shop", errors: float = 120.0):
    """An ALB behind a CloudFront distribution, with a burst of target 5xx. Returns (lb, cloudfront, dist)."""
    from datetime import timedelta

    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
            "SubnetId"
        ]
        for i, z in enumerate("ab")
    ]
    lb = boto3.client("elbv2", region_name=REGION).create_load_balancer(
        Name=name, Subnets=subnets, Type="application", Scheme="internet-facing"
    )["LoadBalancers"][0]
    cloudfront = boto3.client("cloudfront", region_name=REGION)
    dist = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": f"{name}-cdn",
            "Comment": name,
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "alb",
                        "DomainName": lb["DNSName"],
                        "CustomOriginConfig": {
                            "HTTPPort": 80,
                            "HTTPSPort": 443,
                            "OriginProtocolPolicy": "https-only",
                        },
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "alb",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )["Distribution"]["Id"]
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Value": errors,
                "Unit": "Count",
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
                "Dimensions": [{"Name": "LoadBalancer", "Value": lb_dimension(lb)}],
            }
        ],
    )
    return lb, cloudfront, dist


def lb_dimension(lb) -> str:
    return lb["LoadBalancerArn"].split(":loadbalancer/")[1]


def world_open_ssh(name: str = "bastion", *, region: str = REGION, ec2=None):
    """A security group with SSH open to the world next to a legitimate office rule, in ``region`` (or
    where the ``ec2`` client given acts: another account's)."""
    ec2 = ec2 or boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]},
        ],
    )
    return ec2, group


def ssh_rules(ec2, group: str) -> list[str]:
    perms = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    return sorted(r["CidrIp"] for p in perms if p.get("FromPort") == 22 for r in p.get("IpRanges", []))


def public_bucket_reported_by_security_hub(name: str = "findings-bucket"):
    """A public bucket as Security Hub reports it: a failed [S3.8] finding (bucket-level Block Public
    Access), delivered as `Security Hub Findings - Imported`. Returns (s3, bucket, event)."""
    from tests.events import securityhub_event, securityhub_finding

    s3, bucket = public_bucket(name)
    event = securityhub_event(securityhub_finding("S3.8", "AwsS3Bucket", f"arn:aws:s3:::{bucket}"))
    return s3, bucket, event


def raised_in(event: dict, *, account: str, region: str) -> dict:
    """``event`` (one of tests.events', raised in the hub's account and Region) as another account and
    Region raise it; forwarded to the hub's bus by a regional stack's rule, it keeps both: the envelope's
    fields, CloudTrail's, and the ARNs in it."""
    from tests.events import ACCOUNT

    moved = json.loads(json.dumps(event).replace(f":{REGION}:", f":{region}:").replace(ACCOUNT, account))
    moved["region"] = region
    if "awsRegion" in moved["detail"]:
        moved["detail"]["awsRegion"] = region
    return moved


def admin_client_in(account: str, service: str, *, region: str = REGION):
    """A client in a member account of the local stack's AWS, as a human of the hub's account gets one: the
    caller's credentials (the local admin's: IAM is enforced) assume the account's
    OrganizationAccountAccessRole."""
    import os

    from aiops_local.cloudformation import assumed_role_clients
    from aiops_local.enforcement import ADMIN_USER, MEMBER_ADMIN_ROLE

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    clients = assumed_role_clients(
        lambda name: boto3.client(name, region_name=region, endpoint_url=endpoint),
        endpoint,
        f"arn:aws:iam::{account}:role/{MEMBER_ADMIN_ROLE}",
        session_name=ADMIN_USER,
        region=region,
    )
    return clients(service)


def world_open_ssh_elsewhere(name: str, *, account: str, region: str):
    """``world_open_ssh`` in another account (through its OrganizationAccountAccessRole) and Region of the
    local stack's AWS, and its CloudTrail event as the hub receives it. Returns
    (ec2, group id, event)."""
    from tests.events import cloudtrail_event

    ec2, group = world_open_ssh(name, ec2=admin_client_in(account, "ec2", region=region))
    world = [
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}
    ]
    event = cloudtrail_event(
        "ec2", "AuthorizeSecurityGroupIngress", {"groupId": group, "ipPermissions": {"items": world}}
    )
    return ec2, group, raised_in(event, account=account, region=region)
