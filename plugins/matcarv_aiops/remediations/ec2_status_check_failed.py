"""Stop and start one EC2 instance whose status check failed, so that it moves to healthy hardware.

Runs as a multi-step runbook: the stop/start runs as the SSM Automation document
``ssm/AIOps-EC2StatusCheckRestart.yaml``; the DAG waits for it (wait_for_automation) before validating.
Rollback starts the instance directly.
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

    def collect_diagnostics(self, ctx):
        instance = self._instance(ctx)
        if instance is None or instance["State"]["Name"] == "terminated":
            return None
        return {
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
            return "instance-store root device: a stop would lose its data, so this needs a human"
        impaired = "impaired" in state["status"].values()
        latest = state["latest_status_check_failed"]
        if not impaired and not (latest is not None and latest >= 1):
            return (
                f"already fixed: status checks {state['status']} and no failed StatusCheckFailed "
                f"datapoint is the latest in the last {ctx.threshold('lookback_minutes'):g} minutes"
            )
        return None

    def plan(self, ctx, state):
        return (
            f"run SSM Automation {ctx.entry.ssm_document} on instance {state['instance_id']}: stop it, "
            f"wait until stopped, start it, wait until running"
        )

    def execute(self, ctx, state):
        """Start the runbook in the target's account; the execution id is its idempotency token, so a
        retried task cannot start it twice."""
        from matcarv_aiops.ssm.service import automation_client, to_ssm_parameters

        parameters = {
            "InstanceId": state["instance_id"],
            "DiagnosticsBucket": ctx.settings.platform.diagnostics_bucket,
            "ExecutionId": ctx.execution_id,
        }
        if ctx.settings.ssm.ssm_automation_role_arn:
            parameters["AutomationAssumeRole"] = ctx.settings.ssm.ssm_automation_role_arn.format(
                account=ctx.target.account
            )
        client = automation_client(aws_client_factory=lambda: ctx.client("ssm"), settings=ctx.settings)
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
        instance = self._instance(ctx)
        current = instance["State"]["Name"] if instance else "gone"
        status = self._status(ctx)
        if current != "running":
            return Validation(False, f"instance is {current}, not running")
        if "impaired" in status.values():
            return Validation(False, f"status checks still impaired: {status}")
        return Validation(True, f"instance running, status checks {status}")

    def rollback(self, ctx, state, result):
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
