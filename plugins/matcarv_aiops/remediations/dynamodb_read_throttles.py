"""Give a read-throttled provisioned DynamoDB table more read capacity: auto scaling if it has none,
else a direct raise of its read capacity units."""

from __future__ import annotations

from botocore.exceptions import ClientError

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list, unrecorded
from matcarv_aiops.remediations.capacity import raised
from matcarv_aiops.remediations.metric_reads import total

NAMESPACE = "dynamodb"
READ_DIMENSION = "dynamodb:table:ReadCapacityUnits"
POLICY_NAME = "aiops-read-capacity-target-tracking"
REGISTER, RAISE = "register_autoscaling", "raise_read_capacity"
_ACTIVE_WAIT = {"Delay": 5, "MaxAttempts": 60}


@register
class DynamodbReadThrottles(Remediation):
    remediation_id = "dynamodb_read_throttles"

    def _table(self, ctx, name: str) -> dict | None:
        try:
            return ctx.client("dynamodb").describe_table(TableName=name)["Table"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise

    def _scaling_target(self, ctx, name: str) -> dict | None:
        targets = ctx.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace=NAMESPACE,
            ResourceIds=[f"table/{name}"],
            ScalableDimension=READ_DIMENSION,
        )["ScalableTargets"]
        return {"min": targets[0]["MinCapacity"], "max": targets[0]["MaxCapacity"]} if targets else None

    def _scaling_policies(self, ctx, name: str) -> list[str]:
        policies = ctx.client("application-autoscaling").describe_scaling_policies(
            ServiceNamespace=NAMESPACE,
            ResourceId=f"table/{name}",
            ScalableDimension=READ_DIMENSION,
        )["ScalingPolicies"]
        return [policy["PolicyName"] for policy in policies]

    def collect_diagnostics(self, ctx):
        name = ctx.target.resource_id
        table = self._table(ctx, name)
        if table is None:
            return None
        throughput = table.get("ProvisionedThroughput", {})
        tags = ctx.client("dynamodb").list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])
        return {
            "table": name,
            "table_arn": table["TableArn"],
            "status": table["TableStatus"],
            "billing_mode": table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
            "read_capacity": throughput.get("ReadCapacityUnits", 0),
            "write_capacity": throughput.get("WriteCapacityUnits", 0),
            "read_scaling": self._scaling_target(ctx, name),
            "read_throttle_events": total(
                ctx.client("cloudwatch"),
                "AWS/DynamoDB",
                "ReadThrottleEvents",
                {"TableName": name},
                minutes=ctx.threshold("lookback_minutes"),
            ),
            "tags": tags_from_list(tags),
        }

    def _planned(self, ctx, state) -> dict:
        rcu, quota = state["read_capacity"], int(ctx.threshold("max_read_capacity"))
        if state["read_scaling"] is None:
            return {
                "mode": REGISTER,
                "min": rcu,
                "max": min(rcu * int(ctx.threshold("autoscaling_max_factor")), quota),
            }
        ceiling = min(int(state["read_scaling"]["max"]), quota)
        return {"mode": RAISE, "read_capacity": min(raised(rcu, ctx.threshold("increase_percent")), ceiling)}

    def check_eligibility(self, ctx, state):
        if state["billing_mode"] == "PAY_PER_REQUEST":
            return (
                "on-demand table: there is no read capacity to raise (DynamoDB adapts on-demand "
                "capacity itself)"
            )
        if state["status"] != "ACTIVE":
            return f"table is {state['status']}: it cannot be changed until it is ACTIVE again"
        events = state["read_throttle_events"]
        if not ctx.entry.metric_alarm.breached(events):
            return (
                f"already fixed: {events:g} read throttle events in the last "
                f"{ctx.threshold('lookback_minutes'):g} minutes"
            )
        plan = self._planned(ctx, state)
        if plan["mode"] == REGISTER and plan["max"] <= state["read_capacity"]:
            return (
                f"read capacity {state['read_capacity']} is already at the table quota: raising it "
                "needs a human"
            )
        if plan["mode"] == RAISE and plan["read_capacity"] <= state["read_capacity"]:
            return (
                f"read capacity {state['read_capacity']} is at its auto scaling maximum "
                f"({state['read_scaling']['max']}): raising the maximum needs a human"
            )
        return None

    def plan(self, ctx, state):
        plan = self._planned(ctx, state)
        if plan["mode"] == REGISTER:
            return (
                f"register read auto scaling on table {state['table']} (min {plan['min']}, max "
                f"{plan['max']}, "
                f"target {ctx.threshold('target_utilization_percent'):g} % utilisation)"
            )
        return (
            f"raise the read capacity of table {state['table']} from {state['read_capacity']} "
            f"to {plan['read_capacity']}"
        )

    def execute(self, ctx, state):
        plan, name = self._planned(ctx, state), state["table"]
        if plan["mode"] == REGISTER:
            scaling = ctx.client("application-autoscaling")
            scaling.register_scalable_target(
                ServiceNamespace=NAMESPACE,
                ResourceId=f"table/{name}",
                ScalableDimension=READ_DIMENSION,
                MinCapacity=plan["min"],
                MaxCapacity=plan["max"],
            )
            scaling.put_scaling_policy(
                PolicyName=POLICY_NAME,
                ServiceNamespace=NAMESPACE,
                ResourceId=f"table/{name}",
                ScalableDimension=READ_DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": ctx.threshold("target_utilization_percent"),
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "DynamoDBReadCapacityUtilization"
                    },
                },
            )
            return plan | {"changed": True}
        table = self._table(ctx, name)
        current = table["ProvisionedThroughput"]["ReadCapacityUnits"]
        if current >= plan["read_capacity"]:  # a retry: already raised
            return plan | {"changed": False}
        ctx.client("dynamodb").update_table(
            TableName=name,
            ProvisionedThroughput={
                "ReadCapacityUnits": plan["read_capacity"],
                "WriteCapacityUnits": table["ProvisionedThroughput"]["WriteCapacityUnits"],
            },
        )
        return plan | {"changed": True}

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("the read capacity or auto scaling it set")
        name = state["table"]
        if result["mode"] == REGISTER:
            target = self._scaling_target(ctx, name)
            if target != {"min": result["min"], "max": result["max"]}:
                return Validation(
                    False,
                    f"read scaling target reads {target}, expected min {result['min']} max {result['max']}",
                )
            if POLICY_NAME not in self._scaling_policies(ctx, name):
                return Validation(False, f"scaling policy {POLICY_NAME} is missing")
            return Validation(
                True,
                f"read auto scaling registered (min {result['min']}, max {result['max']}) "
                "with a target tracking policy",
            )
        ctx.client("dynamodb").get_waiter("table_exists").wait(TableName=name, WaiterConfig=_ACTIVE_WAIT)
        current = self._table(ctx, name)["ProvisionedThroughput"]["ReadCapacityUnits"]
        if current < result["read_capacity"]:
            return Validation(False, f"read capacity reads {current}, expected {result['read_capacity']}")
        return Validation(True, f"read capacity is {current} (was {state['read_capacity']})")

    def rollback(self, ctx, state, result):
        name = state["table"]
        if state["read_scaling"] is None:  # this run registered it: take it away again
            scaling = ctx.client("application-autoscaling")
            try:
                scaling.delete_scaling_policy(
                    PolicyName=POLICY_NAME,
                    ServiceNamespace=NAMESPACE,
                    ResourceId=f"table/{name}",
                    ScalableDimension=READ_DIMENSION,
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ObjectNotFoundException":
                    raise
            if self._scaling_target(ctx, name) is not None:
                scaling.deregister_scalable_target(
                    ServiceNamespace=NAMESPACE, ResourceId=f"table/{name}", ScalableDimension=READ_DIMENSION
                )
            return f"deleted the scaling policy and deregistered read auto scaling on table {name}"
        ddb = ctx.client("dynamodb")
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=_ACTIVE_WAIT)
        table = self._table(ctx, name)
        current = table["ProvisionedThroughput"]["ReadCapacityUnits"]
        if current == state["read_capacity"]:
            return f"read capacity of {name} is already the recorded {current}"
        ddb.update_table(
            TableName=name,
            ProvisionedThroughput={
                "ReadCapacityUnits": state["read_capacity"],
                "WriteCapacityUnits": table["ProvisionedThroughput"]["WriteCapacityUnits"],
            },
        )
        return f"set the read capacity of {name} back from {current} to {state['read_capacity']}"
