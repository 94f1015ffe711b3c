"""Scale out the Auto Scaling group of a CPU-bound instance (or group) by one step, within its max size."""

from __future__ import annotations

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list, unrecorded
from matcarv_aiops.remediations.metric_reads import datapoints

_GROUP_ARN_MARKER = ":autoScalingGroup:"


@register
class Ec2CpuHigh(Remediation):
    remediation_id = "ec2_cpu_high"

    def _group(self, ctx, name: str) -> dict | None:
        groups = ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ]
        return groups[0] if groups else None

    def collect_diagnostics(self, ctx):
        if _GROUP_ARN_MARKER in ctx.target.arn:
            instance_id, group_name = None, ctx.target.resource_id
            metric_dimensions = {"AutoScalingGroupName": group_name}
        else:
            instance_id = ctx.target.resource_id
            metric_dimensions = {"InstanceId": instance_id}
            members = ctx.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])[
                "AutoScalingInstances"
            ]
            if not members:
                return {"instance_id": instance_id, "group_name": None, "tags": {}}
            group_name = members[0]["AutoScalingGroupName"]
        group = self._group(ctx, group_name)
        if group is None:
            return None
        alarm = ctx.entry.metric_alarm
        cpu = [
            value
            for _, value in datapoints(
                ctx.client("cloudwatch"),
                alarm.namespace,
                alarm.metric_names[0],
                metric_dimensions,
                minutes=alarm.sustained_seconds / 60,
                statistic=alarm.statistic,
            )
        ]
        return {
            "instance_id": instance_id,
            "group_name": group_name,
            "group_arn": group["AutoScalingGroupARN"],
            "desired_capacity": group["DesiredCapacity"],
            "min_size": group["MinSize"],
            "max_size": group["MaxSize"],
            "in_service": sum(1 for i in group.get("Instances", []) if i["LifecycleState"] == "InService"),
            "cpu_datapoints": cpu,
            "metric_dimensions": metric_dimensions,
            "tags": tags_from_list(group.get("Tags")),
        }

    def check_eligibility(self, ctx, state):
        if state["group_name"] is None:
            return (
                f"instance {state['instance_id']} is not in an Auto Scaling group: there is no group to "
                "scale out"
            )
        if state["desired_capacity"] >= state["max_size"]:
            return (
                f"group {state['group_name']} is already at its maximum size ({state['max_size']}): "
                "raising the maximum needs a human"
            )
        if state["in_service"] < state["desired_capacity"]:
            return (
                f"a scale-out is already under way: {state['in_service']} of {state['desired_capacity']} "
                "desired instances are in service"
            )
        # The alarm's own condition (SPEC: above 90 % for 10 minutes), re-checked on the live metric: at
        # least one datapoint per evaluation period, every one of them past the threshold.
        alarm = ctx.entry.metric_alarm
        cpu, limit, minutes = state["cpu_datapoints"], alarm.threshold, alarm.sustained_seconds / 60
        if len(cpu) < alarm.evaluation_periods:
            return (
                f"only {len(cpu)} CPUUtilization datapoints in the last {minutes:g} minutes: "
                "cannot confirm sustained high CPU"
            )
        if not all(alarm.breached(value) for value in cpu):
            return (
                f"already fixed: CPUUtilization was not above {limit:g} % throughout the last "
                f"{minutes:g} minutes (lowest {min(cpu):.1f} %)"
            )
        return None

    def _planned(self, ctx, state) -> int:
        return min(state["desired_capacity"] + int(ctx.threshold("scale_out_step")), state["max_size"])

    def plan(self, ctx, state):
        return (
            f"set the desired capacity of Auto Scaling group {state['group_name']} from "
            f"{state['desired_capacity']} to {self._planned(ctx, state)} (max {state['max_size']})"
        )

    def execute(self, ctx, state):
        planned = self._planned(ctx, state)
        current = self._group(ctx, state["group_name"])["DesiredCapacity"]
        if current >= planned:  # a retry, or someone scaled it meanwhile: never lower it
            return {"planned_capacity": planned, "changed": False}
        ctx.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=state["group_name"], DesiredCapacity=planned, HonorCooldown=False
        )
        return {"planned_capacity": planned, "changed": True}

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("the desired capacity it planned")
        group = self._group(ctx, state["group_name"])
        if group is None:
            return Validation(False, f"group {state['group_name']} disappeared")
        desired, planned = group["DesiredCapacity"], result["planned_capacity"]
        if desired < planned:
            return Validation(False, f"desired capacity reads {desired}, expected at least {planned}")
        return Validation(True, f"desired capacity is {desired} (was {state['desired_capacity']})")

    def rollback(self, ctx, state, result):
        group = self._group(ctx, state["group_name"])
        if group is None:
            return f"group {state['group_name']} no longer exists: nothing to restore"
        recorded = state["desired_capacity"]
        if group["DesiredCapacity"] == recorded:
            return f"desired capacity is already the recorded {recorded}"
        ctx.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=state["group_name"], DesiredCapacity=recorded, HonorCooldown=False
        )
        return (
            f"set desired capacity of {state['group_name']} back from {group['DesiredCapacity']} to "
            f"{recorded}"
        )
