"""Turn CloudTrail logging back on for one trail, recreating a deleted trail from the configuration AWS
Config recorded for it, and open a SEV-2 incident (someone turned the audit trail off)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from matcarv_aiops.notifications import Kind
from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list, unrecorded

TRAIL_TYPE = "AWS::CloudTrail::Trail"
INCIDENT_SEVERITY = "SEV-2"
# CreateTrail parameter <- the configuration item's field (Config records DescribeTrails' fields).
_CREATE_FROM_RECORDED = {
    "S3BucketName": "s3BucketName",
    "S3KeyPrefix": "s3KeyPrefix",
    "SnsTopicName": "snsTopicName",
    "IncludeGlobalServiceEvents": "includeGlobalServiceEvents",
    "IsMultiRegionTrail": "isMultiRegionTrail",
    "EnableLogFileValidation": "logFileValidationEnabled",
    "CloudWatchLogsLogGroupArn": "cloudWatchLogsLogGroupArn",
    "CloudWatchLogsRoleArn": "cloudWatchLogsRoleArn",
    "KmsKeyId": "kmsKeyId",
    "IsOrganizationTrail": "isOrganizationTrail",
}


def _field(config: dict, name: str):
    """A configuration field whatever its capitalisation (Config items and DescribeTrails differ)."""
    lowered = {key.lower(): value for key, value in config.items()}
    return lowered.get(name.lower())


def create_trail_params(name: str, recorded: dict, tags: dict[str, str]) -> dict:
    params: dict[str, Any] = {"Name": name}
    for parameter, field in _CREATE_FROM_RECORDED.items():
        value = _field(recorded, field)
        if value not in (None, ""):
            params[parameter] = value
    if tags:
        params["TagsList"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return params


@register
class CloudtrailDisabled(Remediation):
    remediation_id = "cloudtrail_disabled"

    def _account_wide(self, ctx) -> bool:
        return ctx.target.arn.endswith(":root")

    def _trails(self, ctx, names: list[str] | None = None) -> list[dict]:
        kwargs: dict[str, Any] = {"includeShadowTrails": True}
        if names:
            kwargs["trailNameList"] = names
        return ctx.client("cloudtrail").describe_trails(**kwargs)["trailList"]

    def _is_logging(self, ctx, trail_arn: str) -> bool:
        return bool(ctx.client("cloudtrail").get_trail_status(Name=trail_arn)["IsLogging"])

    def _recorded(self, ctx, name: str) -> tuple[dict | None, dict[str, str], str | None]:
        """The trail's last configuration as AWS Config recorded it before the deletion."""
        config = ctx.client("config")
        found = config.list_discovered_resources(
            resourceType=TRAIL_TYPE, resourceName=name, includeDeletedResources=True
        )["resourceIdentifiers"]
        for identifier in found:
            items = config.get_resource_config_history(
                resourceType=TRAIL_TYPE,
                resourceId=identifier["resourceId"],
                chronologicalOrder="Reverse",
                limit=10,
            )["configurationItems"]
            for item in items:  # newest first; the deletion itself has no configuration
                if item.get("configurationItemStatus") in ("OK", "ResourceDiscovered") and item.get(
                    "configuration"
                ):
                    return (
                        json.loads(item["configuration"]),
                        item.get("tags") or {},
                        str(item.get("configurationItemCaptureTime")),
                    )
        return None, {}, None

    def collect_diagnostics(self, ctx):
        if self._account_wide(ctx):
            trails = [
                {
                    "name": t["Name"],
                    "arn": t["TrailARN"],
                    "home_region": t.get("HomeRegion"),
                    "multi_region": bool(t.get("IsMultiRegionTrail")),
                    "is_logging": self._is_logging(ctx, t["TrailARN"]),
                }
                for t in self._trails(ctx)
            ]
            return {"account": ctx.target.account, "trails": trails, "tags": {}}
        name = ctx.target.resource_id
        trails = self._trails(ctx, [name])
        if trails:
            trail = trails[0]
            tags = ctx.client("cloudtrail").list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"]
            return {
                "trail_name": trail["Name"],
                "trail_arn": trail["TrailARN"],
                "exists": True,
                "is_logging": self._is_logging(ctx, trail["TrailARN"]),
                "configuration": trail,
                "tags": tags_from_list(tags[0].get("TagsList") if tags else []),
            }
        recorded, tags, recorded_at = self._recorded(ctx, name)
        return {
            "trail_name": name,
            "trail_arn": ctx.target.arn,
            "exists": False,
            "is_logging": False,
            "configuration": recorded,
            "recorded_at": recorded_at,
            "tags": tags,
        }

    def _choice(self, state) -> dict | None:
        """For an account-wide finding: the one trail to restart."""
        stopped = [t for t in state["trails"] if not t["is_logging"]]
        multi = [t for t in stopped if t["multi_region"]]
        candidates = multi or stopped
        return candidates[0] if len(candidates) == 1 else None

    def check_eligibility(self, ctx, state):
        if "trails" in state:
            logging = [t["name"] for t in state["trails"] if t["is_logging"]]
            if logging:
                return f"already fixed: trail(s) {', '.join(logging)} are logging"
            if not state["trails"]:
                return (
                    "no trail exists in this account and region, so there is no recorded trail to restore: "
                    "a human creates one"
                )
            if self._choice(state) is None:
                return (
                    f"{len(state['trails'])} trails are stopped "
                    f"({', '.join(t['name'] for t in state['trails'])}); "
                    "one resource per run, so a human chooses"
                )
            return None
        if state["exists"] and state["is_logging"]:
            return f"already fixed: trail {state['trail_name']} is logging"
        if not state["exists"] and not state["configuration"]:
            return (
                f"trail {state['trail_name']} was deleted and AWS Config holds no recorded configuration "
                "for it: a human recreates it"
            )
        return None

    def plan(self, ctx, state):
        if "trails" in state:
            return (
                f"start logging on trail {self._choice(state)['arn']} and open a {INCIDENT_SEVERITY} incident"
            )
        if not state["exists"]:
            bucket = _field(state["configuration"], "s3BucketName")
            return (
                f"recreate deleted trail {state['trail_name']} from its configuration recorded by AWS Config "
                f"at {state['recorded_at']} (S3 bucket {bucket}), start logging, and open a "
                f"{INCIDENT_SEVERITY} incident"
            )
        return f"start logging on trail {state['trail_arn']} and open a {INCIDENT_SEVERITY} incident"

    def execute(self, ctx, state):
        cloudtrail = ctx.client("cloudtrail")
        recreated = False
        if "trails" in state:
            trail = self._choice(state)["arn"]
        else:
            trail = state["trail_arn"]
            if not state["exists"] and not self._trails(ctx, [state["trail_name"]]):
                params = create_trail_params(state["trail_name"], state["configuration"], state["tags"])
                try:
                    trail = cloudtrail.create_trail(**params)["TrailARN"]
                    recreated = True
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "TrailAlreadyExistsException":  # a retried task
                        raise
        cloudtrail.start_logging(Name=trail)
        incident = ctx.notify(
            Kind.INCIDENT,
            f"{INCIDENT_SEVERITY}: CloudTrail logging was turned off in {ctx.target.account}",
            {
                "severity": INCIDENT_SEVERITY,
                "executionId": ctx.execution_id,
                "account": ctx.target.account,
                "region": ctx.target.region,
                "trail": trail,
                "recreated": recreated,
                "action": (
                    "logging re-enabled by AIOps; find who turned it off, and why (CloudTrail event history)"
                ),
            },
        )
        return {"trail_arn": trail, "recreated": recreated, "incident_message_id": incident}

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("the trail it started (or recreated)")
        trails = self._trails(ctx, [result["trail_arn"]])
        if not trails:
            return Validation(False, f"trail {result['trail_arn']} does not exist")
        if not self._is_logging(ctx, result["trail_arn"]):
            return Validation(False, f"trail {result['trail_arn']} is not logging")
        if result["recreated"]:
            wanted = _field(state["configuration"], "s3BucketName")
            if trails[0].get("S3BucketName") != wanted:
                return Validation(
                    False,
                    f"recreated trail delivers to {trails[0].get('S3BucketName')}, "
                    f"not the recorded bucket {wanted}",
                )
        return Validation(
            True,
            f"trail {result['trail_arn']} is logging"
            + (" (recreated from its recorded configuration)" if result["recreated"] else "")
            + f"; {INCIDENT_SEVERITY} incident opened",
        )
