from datetime import UTC, datetime, timedelta

import boto3

from matcarv_aiops.remediations import alb_5xx_spike
from tests.events import alarm_event

REGION = "us-east-1"


def _alb():
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
            "SubnetId"
        ]
        for i, z in enumerate("ab")
    ]
    elbv2 = boto3.client("elbv2", region_name=REGION)
    lb = elbv2.create_load_balancer(
        Name="shop",
        Subnets=subnets,
        Type="application",
        Scheme="internet-facing",
        Tags=[{"Key": "Environment", "Value": "staging"}],
    )["LoadBalancers"][0]
    return lb


def _distribution(origin_domain: str, *, reference: str = "shop-cdn"):
    cloudfront = boto3.client("cloudfront", region_name=REGION)
    config = {
        "CallerReference": reference,
        "Comment": "shop",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "alb",
                    "DomainName": origin_domain,
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
    return cloudfront, cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


def _errors(lb, count: float):
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Value": count,
                "Unit": "Count",
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
                "Dimensions": [
                    {"Name": "LoadBalancer", "Value": lb["LoadBalancerArn"].split(":loadbalancer/")[1]}
                ],
            }
        ],
    )


def _event(lb):
    return alarm_event(
        "AWS/ApplicationELB",
        "HTTPCode_Target_5XX_Count",
        {"LoadBalancer": lb["LoadBalancerArn"].split(":loadbalancer/")[1]},
    )


def _invalidations(cloudfront, dist):
    listing = cloudfront.list_invalidations(DistributionId=dist)["InvalidationList"]
    return [
        cloudfront.get_invalidation(DistributionId=dist, Id=i["Id"])["Invalidation"]
        for i in listing.get("Items", [])
    ]


def test_invalidates_the_distribution_in_front_of_the_alb(remediate):
    lb = _alb()
    cloudfront, dist = _distribution(lb["DNSName"])
    _, other = _distribution("unrelated.example.com", reference="other-cdn")
    _errors(lb, 120)
    run = remediate("alb_5xx_spike", {"event": _event(lb)})
    assert run.outcome == "SUCCESS", run
    [invalidation] = _invalidations(cloudfront, dist)
    assert invalidation["InvalidationBatch"]["Paths"]["Items"] == ["/*"]
    assert invalidation["InvalidationBatch"]["CallerReference"] == run.audit.execution_id
    assert _invalidations(cloudfront, other) == []


def test_validation_failure_is_failure_and_nothing_else_changes(remediate, monkeypatch):
    lb = _alb()
    cloudfront, dist = _distribution(lb["DNSName"])
    config_before = cloudfront.get_distribution_config(Id=dist)["DistributionConfig"]
    _errors(lb, 120)

    def execute_one_path(self, ctx, state):  # an invalidation that misses most of the cache
        made = ctx.client("cloudfront").create_invalidation(
            DistributionId=dist,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/index.html"]},
                "CallerReference": ctx.execution_id,
            },
        )
        return {"distribution_id": dist, "invalidation_id": made["Invalidation"]["Id"]}

    monkeypatch.setattr(alb_5xx_spike.Alb5xxSpike, "execute", execute_one_path)
    run = remediate("alb_5xx_spike", {"event": _event(lb)})
    assert run.outcome == "FAILURE" and "not /*" in run.audit.action
    assert run.record("rollback").done["rolled_back"] is False
    assert [i["InvalidationBatch"]["Paths"]["Items"] for i in _invalidations(cloudfront, dist)] == [
        ["/index.html"]
    ]
    assert cloudfront.get_distribution_config(Id=dist)["DistributionConfig"] == config_before


def test_errors_under_threshold_is_skipped(remediate):
    lb = _alb()
    cloudfront, dist = _distribution(lb["DNSName"])
    _errors(lb, 7)
    run = remediate("alb_5xx_spike", {"event": _event(lb)})
    assert run.outcome == "SKIPPED" and "already fixed: 7 5xx responses" in run.audit.action
    assert _invalidations(cloudfront, dist) == []


def test_alb_without_distribution_is_skipped(remediate):
    lb = _alb()
    cloudfront, other = _distribution("unrelated.example.com")
    _errors(lb, 500)
    run = remediate("alb_5xx_spike", {"event": _event(lb)})
    assert run.outcome == "SKIPPED" and "no enabled CloudFront distribution" in run.audit.action
    assert _invalidations(cloudfront, other) == []
