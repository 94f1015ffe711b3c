"""Stop and start one EC2 instance whose status check failed, so that it moves to healthy hardware.

Runs as a multi-step runbook: the stop/start runs as the SSM Automation document
``ssm/AIOps-EC2StatusCheckRestart.yaml``; the DAG waits for it (wait_for_automation) before validating.
Rollback starts the instance directly.

A stop erases instance-store volumes, and an Auto Scaling group replaces a member it finds stopped (its
EC2 health check fails), so neither is done without a human:

- an instance with instance-store volumes (its type has them) waits for approval, then is stopped and
  started as usual;
- a member of an Auto Scaling group is not stopped at all: the group replaces it. After approval, execute
  marks it Unhealthy (SetInstanceHealth, grace period not respected) and the group terminates it and
  launches a replacement from its launch template. Stopping it instead would race the group's own
  health check, which would terminate it anyway, and leave the group short while it is stopped. The
  replacement's data is the launch template's: that is why a human approves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list

_WAIT = {"Delay": 5, "MaxAttempts": 60}


@register
class Ec2StatusCheckFailed(Remediation):
    remediation_id = "ec2_status_check_failed"

    def _instance(self, ctx):
        try:
            reservations = ctx.client("ec2").describe_instances(InstanceIds=[ctx.target.resource_id])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "InvalidInstanceID.NotFound":
                return None
            raise
        instances = [i for r in reservations["Reservations"] for i in r["Instances"]]
        return instances[0] if instances else None

    def _status(self, ctx) -> dict[str, str]:
        statuses = ctx.client("ec2").describe_instance_status(
            InstanceIds=[ctx.target.resource_id], IncludeAllInstances=True
        )["InstanceStatuses"]
        if not statuses:
            return {"instance": "unknown", "system": "unknown"}
        return {
            "instance": statuses[0]["InstanceStatus"]["Status"],
            "system": statuses[0]["SystemStatus"]["Status"],
        }

    def _latest_check_failed(self, ctx) -> float | None:
        now = datetime.now(UTC)
        points = ctx.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/EC2",
            MetricName="StatusCheckFailed",
            Dimensions=[{"Name": "InstanceId", "Value": ctx.target.resource_id}],
            # EndTime a minute ahead: CloudWatch truncates it to the second, and the newest datapoint
            # can carry this very second's timestamp.
            StartTime=now - timedelta(minutes=ctx.threshold("lookback_minutes")),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        if not points:
            return None
        return max(points, key=lambda p: p["Timestamp"])["Maximum"]

    def _instance_store_gib(self, ctx, instance_type: str | None) -> int:
        """GiB of instance-store volumes the instance type comes with (0 when none)."""
        if not instance_type:
            return 0
        types = ctx.client("ec2").describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
        if not types or not types[0].get("InstanceStorageSupported"):
            return 0
        return int(types[0].get("InstanceStorageInfo", {}).get("TotalSizeInGB", 0))

    def _group(self, ctx) -> dict[str, str] | None:
        """The Auto Scaling group the instance belongs to, with its health and lifecycle state there."""
        found = ctx.client("autoscaling").describe_auto_scaling_instances(
            InstanceIds=[ctx.target.resource_id]
        )
        for member in found["AutoScalingInstances"]:
            return {
                "name": member["AutoScalingGroupName"],
                "health": member.get("HealthStatus", ""),
                "lifecycle": member.get("LifecycleState", ""),
            }
        return None

    def collect_diagnostics(self, ctx):
        instance = self._instance(ctx)
        if instance is None or instance["State"]["Name"] == "terminated":
            return None
        return {
            "instance_store_gib": self._instance_store_gib(ctx, instance.get("InstanceType")),
            "auto_scaling_group": self._group(ctx),
            "instance_id": instance["InstanceId"],
            "state": instance["State"]["Name"],
            "root_device_type": instance.get("RootDeviceType", "ebs"),
            "instance_type": instance.get("InstanceType"),
            "availability_zone": instance.get("Placement", {}).get("AvailabilityZone"),
            "status": self._status(ctx),
            "latest_status_check_failed": self._latest_check_failed(ctx),
            "tags": tags_from_list(instance.get("Tags")),
        }

    def check_eligibility(self, ctx, state):
        if state["state"] != "running":
            return f"not running (state {state['state']}): nothing to restart"
        if state["root_device_type"] != "ebs":
            return "instance-store root device: such an instance cannot be stopped, only replaced by a human"
        impaired = "impaired" in state["status"].values()
        latest = state["latest_status_check_failed"]
        if not impaired and not (latest is not None and latest >= 1):
            return (
                f"already fixed: status checks {state['status']} and no failed StatusCheckFailed "
                f"datapoint is the latest in the last {ctx.threshold('lookback_minutes'):g} minutes"
            )
        return None

    def approval_reason(self, state):
        group = state.get("auto_scaling_group")
        if group:
            return (
                f"the instance belongs to Auto Scaling group {group['name']}: the group replaces it "
                "(terminates it and launches another), which cannot be undone"
            )
        if state.get("instance_store_gib"):
            return (
                f"the instance has {state['instance_store_gib']} GiB of instance-store volumes, which a "
                "stop erases"
            )
        return None

    def plan(self, ctx, state):
        group = state.get("auto_scaling_group")
        if group:
            return (
                f"mark instance {state['instance_id']} Unhealthy in Auto Scaling group {group['name']} "
                "(SetInstanceHealth, grace period not respected): the group terminates it and launches "
                "a replacement"
            )
        return (
            f"run SSM Automation {ctx.entry.ssm_document} on instance {state['instance_id']}: stop it, "
            f"wait until stopped, start it, wait until running"
        )

    def execute(self, ctx, state):
        """Start the runbook in the target's account; the execution id is its idempotency token, so a
        retried task cannot start it twice."""
        from matcarv_aiops.ssm.service import automation_client, to_ssm_parameters

        group = state.get("auto_scaling_group")
        if group:
            # Idempotent: marking an instance Unhealthy twice is the same request.
            ctx.client("autoscaling").set_instance_health(
                InstanceId=state["instance_id"], HealthStatus="Unhealthy", ShouldRespectGracePeriod=False
            )
            return {
                "replaced_by_group": group["name"],
                "without_runbook": f"the Auto Scaling group {group['name']} replaces the instance",
            }
        parameters = {
            "InstanceId": state["instance_id"],
            "DiagnosticsBucket": ctx.settings.platform.diagnostics_bucket,
            "ExecutionId": ctx.execution_id,
        }
        if ctx.settings.ssm.ssm_automation_role_arn:
            parameters["AutomationAssumeRole"] = ctx.settings.ssm.ssm_automation_role_arn.format(
                account=ctx.target.account
            )
        client = automation_client(
            aws_client_factory=lambda: ctx.client("ssm"), settings=ctx.settings, region=ctx.target.region
        )
        started = client.start_automation_execution(
            DocumentName=ctx.entry.ssm_document,
            Parameters=to_ssm_parameters(parameters),
            ClientToken=ctx.execution_id,
        )
        return {
            "automation_execution_id": started["AutomationExecutionId"],
            "document": ctx.entry.ssm_document,
        }

    def validate(self, ctx, state, result):
        group = state.get("auto_scaling_group")
        if group:
            member = self._group(ctx)
            if (
                member is None
                or member["health"].upper() == "UNHEALTHY"
                or member["lifecycle"].startswith("Terminat")
            ):
                return Validation(True, f"Auto Scaling group {group['name']} is replacing the instance")
            return Validation(False, f"the group still counts the instance healthy: {member}")
        instance = self._instance(ctx)
        current = instance["State"]["Name"] if instance else "gone"
        status = self._status(ctx)
        if current != "running":
            return Validation(False, f"instance is {current}, not running")
        if "impaired" in status.values():
            return Validation(False, f"status checks still impaired: {status}")
        return Validation(True, f"instance running, status checks {status}")

    def rollback(self, ctx, state, result):
        group = state.get("auto_scaling_group")
        if group:
            member = self._group(ctx)
            if member is None or member["lifecycle"].startswith("Terminat"):
                return f"group {group['name']} already terminated the instance: the replacement stands"
            ctx.client("autoscaling").set_instance_health(
                InstanceId=state["instance_id"], HealthStatus="Healthy", ShouldRespectGracePeriod=False
            )
            return f"marked instance {state['instance_id']} Healthy again in group {group['name']}"
        instance = self._instance(ctx)
        if instance is None:
            return "instance no longer exists: nothing to restore"
        current = instance["State"]["Name"]
        if current == "running":
            return "instance is running: nothing to restore"
        ec2 = ctx.client("ec2")
        if current == "stopping":
            ec2.get_waiter("instance_stopped").wait(InstanceIds=[state["instance_id"]], WaiterConfig=_WAIT)
        ec2.start_instances(InstanceIds=[state["instance_id"]])
        ec2.get_waiter("instance_running").wait(InstanceIds=[state["instance_id"]], WaiterConfig=_WAIT)
        return f"started instance {state['instance_id']} again (it was {current})"
