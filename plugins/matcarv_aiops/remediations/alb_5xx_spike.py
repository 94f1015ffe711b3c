"""Invalidate the CloudFront cache in front of one Application Load Balancer whose 5xx responses spiked
(cached error pages and stale objects are served again from the recovered origin)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list, unrecorded
from matcarv_aiops.remediations.metric_reads import total

FIVE_XX_METRICS = ("HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count")
ALL_PATHS = "/*"


def _origin_matches(domain: str, dns_name: str) -> bool:
    domain, dns_name = domain.lower().rstrip("."), dns_name.lower().rstrip(".")
    return domain in (dns_name, f"dualstack.{dns_name}")


@register
class Alb5xxSpike(Remediation):
    remediation_id = "alb_5xx_spike"

    def _distributions(self, ctx, dns_name: str) -> list[dict]:
        found = []
        for page in ctx.client("cloudfront").get_paginator("list_distributions").paginate():
            for dist in page.get("DistributionList", {}).get("Items", []) or []:
                origins = dist.get("Origins", {}).get("Items", []) or []
                if any(_origin_matches(o["DomainName"], dns_name) for o in origins):
                    found.append(
                        {
                            "id": dist["Id"],
                            "arn": dist["ARN"],
                            "domain_name": dist["DomainName"],
                            "enabled": dist["Enabled"],
                            "status": dist["Status"],
                        }
                    )
        return found

    def collect_diagnostics(self, ctx):
        elbv2 = ctx.client("elbv2")
        try:
            lbs = elbv2.describe_load_balancers(LoadBalancerArns=[ctx.target.arn])["LoadBalancers"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("LoadBalancerNotFound", "LoadBalancerNotFoundException"):
                return None
            raise
        if not lbs:
            return None
        lb = lbs[0]
        tags = elbv2.describe_tags(ResourceArns=[ctx.target.arn])["TagDescriptions"]
        dimension = {"LoadBalancer": ctx.target.resource_id}  # app/<name>/<id>
        minutes = ctx.threshold("lookback_minutes")
        count = sum(
            total(ctx.client("cloudwatch"), "AWS/ApplicationELB", metric, dimension, minutes=minutes)
            for metric in FIVE_XX_METRICS
        )
        return {
            "load_balancer_arn": lb["LoadBalancerArn"],
            "dns_name": lb["DNSName"],
            "type": lb.get("Type"),
            "state": lb.get("State", {}).get("Code"),
            "five_xx_count": count,
            "distributions": self._distributions(ctx, lb["DNSName"]),
            "tags": tags_from_list(tags[0]["Tags"] if tags else []),
        }

    def check_eligibility(self, ctx, state):
        if state["type"] != "application":
            return f"not an application load balancer (type {state['type']})"
        alarm = ctx.entry.metric_alarm
        minimum = alarm.threshold
        if not alarm.breached(state["five_xx_count"]):
            return (
                f"already fixed: {state['five_xx_count']:g} 5xx responses in the last "
                f"{ctx.threshold('lookback_minutes'):g} minutes, under {minimum:g}"
            )
        enabled = [d for d in state["distributions"] if d["enabled"]]
        if not enabled:
            return (
                f"no enabled CloudFront distribution has {state['dns_name']} as an origin: nothing to "
                "invalidate"
            )
        if len(enabled) > 1:
            return (
                f"{len(enabled)} distributions front this load balancer "
                f"({', '.join(d['id'] for d in enabled)}); one resource per run, so a human chooses"
            )
        return None

    def _distribution(self, state) -> dict:
        return next(d for d in state["distributions"] if d["enabled"])

    def plan(self, ctx, state):
        dist = self._distribution(state)
        return (
            f"invalidate {ALL_PATHS} on CloudFront distribution {dist['id']} ({dist['domain_name']}), "
            f"origin {state['dns_name']} had {state['five_xx_count']:g} 5xx responses"
        )

    def execute(self, ctx, state):
        dist = self._distribution(state)
        # CallerReference = execution id: a retried task gets CloudFront's existing invalidation back.
        invalidation = ctx.client("cloudfront").create_invalidation(
            DistributionId=dist["id"],
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": [ALL_PATHS]},
                "CallerReference": ctx.execution_id,
            },
        )["Invalidation"]
        return {"distribution_id": dist["id"], "invalidation_id": invalidation["Id"]}

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("the CloudFront invalidation it created")
        try:
            invalidation = ctx.client("cloudfront").get_invalidation(
                DistributionId=result["distribution_id"], Id=result["invalidation_id"]
            )["Invalidation"]
        except ClientError as exc:
            return Validation(
                False, f"invalidation {result['invalidation_id']} not found: {exc.response['Error']['Code']}"
            )
        status = invalidation["Status"]
        if status.lower() not in ("inprogress", "completed"):
            return Validation(False, f"invalidation {invalidation['Id']} has status {status}")
        paths = invalidation["InvalidationBatch"]["Paths"].get("Items", [])
        if ALL_PATHS not in paths:
            return Validation(False, f"invalidation {invalidation['Id']} covers {paths}, not {ALL_PATHS}")
        return Validation(
            True,
            f"invalidation {invalidation['Id']} of {ALL_PATHS} on {result['distribution_id']} is {status}",
        )
