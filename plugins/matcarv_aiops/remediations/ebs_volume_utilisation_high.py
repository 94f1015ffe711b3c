"""Snapshot a nearly full EBS volume, then ask a human to resize it (a resize also needs the file system
grown inside the instance, which no API call can do safely)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from matcarv_aiops.notifications import Kind
from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list, unrecorded
from matcarv_aiops.remediations.metric_reads import latest

AGENT_NAMESPACE = "CWAgent"  # the CloudWatch agent's default namespace
AGENT_METRIC = "disk_used_percent"
EXECUTION_TAG = "aiops:execution-id"


def _code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


@register
class EbsVolumeUtilisationHigh(Remediation):
    remediation_id = "ebs_volume_utilisation_high"

    def _volume_of_instance(self, ctx, instance_id: str) -> tuple[str | None, list[str]] | None:
        """(the volume, every EBS volume) of the instance; None when the instance is gone."""
        try:
            reservations = ctx.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
        except ClientError as exc:
            if _code(exc) == "InvalidInstanceID.NotFound":
                return None
            raise
        instances = [i for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated"]
        if not instances:
            return None
        volumes = [m["Ebs"]["VolumeId"] for m in instances[0].get("BlockDeviceMappings", []) if "Ebs" in m]
        return (volumes[0] if len(volumes) == 1 else None), volumes

    def _used_percent(self, ctx, dimension: str, value: str) -> float | None:
        """The highest latest disk_used_percent over the file systems the agent reports for it."""
        cloudwatch = ctx.client("cloudwatch")
        found = []
        for page in cloudwatch.get_paginator("list_metrics").paginate(
            Namespace=AGENT_NAMESPACE,
            MetricName=AGENT_METRIC,
            Dimensions=[{"Name": dimension, "Value": value}],
        ):
            for metric in page["Metrics"]:
                found.append(
                    latest(
                        cloudwatch,
                        AGENT_NAMESPACE,
                        AGENT_METRIC,
                        {d["Name"]: d["Value"] for d in metric["Dimensions"]},
                        minutes=ctx.threshold("lookback_minutes"),
                        statistic="Maximum",
                    )
                )
        values = [value for value in found if value is not None]
        return max(values) if values else None

    def _snapshots(self, ctx, filters: list[dict]) -> list[dict]:
        return ctx.client("ec2").describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]

    def collect_diagnostics(self, ctx):
        instance_id, candidates = None, None
        if ":volume/" in ctx.target.arn:
            volume_id, metric_by = ctx.target.resource_id, ("VolumeId", ctx.target.resource_id)
        else:
            instance_id = ctx.target.resource_id
            found = self._volume_of_instance(ctx, instance_id)
            if found is None:
                return None
            volume_id, candidates = found
            metric_by = ("InstanceId", instance_id)
            if volume_id is None:
                return {
                    "volume_id": None,
                    "instance_id": instance_id,
                    "instance_volumes": candidates,
                    "tags": {},
                }
        try:
            volume = ctx.client("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        except ClientError as exc:
            if _code(exc) == "InvalidVolume.NotFound":
                return None
            raise
        attachment = next(iter(volume.get("Attachments", [])), {})
        return {
            "volume_id": volume_id,
            "instance_id": instance_id or attachment.get("InstanceId"),
            "device": attachment.get("Device"),
            "size_gib": volume["Size"],
            "volume_type": volume.get("VolumeType"),
            "volume_state": volume["State"],
            "used_percent": self._used_percent(ctx, *metric_by),
            "snapshots_in_progress": [
                s["SnapshotId"]
                for s in self._snapshots(
                    ctx,
                    [{"Name": "volume-id", "Values": [volume_id]}, {"Name": "status", "Values": ["pending"]}],
                )
            ],
            "tags": tags_from_list(volume.get("Tags")),
        }

    def check_eligibility(self, ctx, state):
        if state["volume_id"] is None:
            return (
                f"instance {state['instance_id']} has {len(state['instance_volumes'])} EBS volumes and the "
                "alarm does not say which is full: add the VolumeId dimension to the agent's disk metrics"
            )
        alarm = ctx.entry.metric_alarm
        used, limit = state["used_percent"], alarm.threshold
        if used is None:
            return (
                f"no {AGENT_METRIC} data for {state['volume_id']} in the last "
                f"{ctx.threshold('lookback_minutes'):g} minutes: cannot confirm the disk is full"
            )
        if not alarm.breached(used):
            return f"already fixed: the disk is {used:.1f} % used, not above {limit:g} %"
        if state["snapshots_in_progress"]:
            return (
                f"a snapshot of {state['volume_id']} is already in progress: {state['snapshots_in_progress']}"
            )
        return None

    def plan(self, ctx, state):
        return (
            f"snapshot EBS volume {state['volume_id']} ({state['size_gib']} GiB, "
            f"{state['used_percent']:.1f} % "
            "used), then alert on-call to resize it"
        )

    def execute(self, ctx, state):
        mine = self._snapshots(ctx, [{"Name": f"tag:{EXECUTION_TAG}", "Values": [ctx.execution_id]}])
        if mine:  # a retry: this execution already took its snapshot
            snapshot_id = mine[0]["SnapshotId"]
        else:
            snapshot_id = ctx.client("ec2").create_snapshot(
                VolumeId=state["volume_id"],
                Description=(
                    f"AIOps before resize: {state['volume_id']} at {state['used_percent']:.1f} % used"
                ),
                TagSpecifications=[
                    {
                        "ResourceType": "snapshot",
                        "Tags": [
                            {"Key": EXECUTION_TAG, "Value": ctx.execution_id},
                            {"Key": "aiops:remediation", "Value": self.remediation_id},
                            {"Key": "Name", "Value": f"aiops-{state['volume_id']}"},
                        ],
                    }
                ],
            )["SnapshotId"]
        message_id = ctx.notify(
            Kind.FAILURE,
            f"AIOps: resize EBS volume {state['volume_id']} ({state['used_percent']:.0f} % full)",
            {
                "executionId": ctx.execution_id,
                "remediation": self.remediation_id,
                "targetResource": ctx.target.arn,
                "volume": state["volume_id"],
                "instance": state["instance_id"],
                "device": state["device"],
                "sizeGiB": state["size_gib"],
                "usedPercent": round(state["used_percent"], 1),
                "snapshot": snapshot_id,
                "todo": (
                    "ModifyVolume to a larger size, then grow the partition and file system on the instance"
                ),
            },
        )
        return {"snapshot_id": snapshot_id, "alert_message_id": message_id}

    def _snapshot(self, ctx, snapshot_id: str) -> dict | None:
        found = self._snapshots(ctx, [{"Name": "snapshot-id", "Values": [snapshot_id]}])
        return found[0] if found else None

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("the snapshot it took")
        snapshot = self._snapshot(ctx, result["snapshot_id"])
        if snapshot is None:
            return Validation(False, f"snapshot {result['snapshot_id']} does not exist")
        if snapshot["VolumeId"] != state["volume_id"] or snapshot["State"] not in ("pending", "completed"):
            return Validation(
                False, f"snapshot {result['snapshot_id']} of {snapshot['VolumeId']} is {snapshot['State']}"
            )
        return Validation(True, f"snapshot {result['snapshot_id']} is {snapshot['State']}; resize alert sent")
