"""Raise a throttled Lambda function's reserved concurrency by a quarter, within the account's headroom."""

from __future__ import annotations

from botocore.exceptions import ClientError

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, unrecorded
from matcarv_aiops.remediations.capacity import raised
from matcarv_aiops.remediations.lambda_concurrency import (
    reservable_headroom,
    reserved_concurrency,
    restore_reserved,
)
from matcarv_aiops.remediations.metric_reads import datapoints


@register
class LambdaThrottles(Remediation):
    remediation_id = "lambda_throttles"

    def collect_diagnostics(self, ctx):
        client = ctx.client("lambda")
        try:
            function = client.get_function(FunctionName=ctx.target.arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise
        name = function["Configuration"]["FunctionName"]
        minutes = ctx.threshold("lookback_minutes")
        reserved = reserved_concurrency(client, name)
        cloudwatch, dimensions = ctx.client("cloudwatch"), {"FunctionName": name}

        def values(metric: str, statistic: str) -> list[float]:
            return [
                v
                for _, v in datapoints(
                    cloudwatch, "AWS/Lambda", metric, dimensions, minutes=minutes, statistic=statistic
                )
            ]

        concurrency = values("ConcurrentExecutions", "Maximum")
        return {
            "function_name": name,
            "function_arn": function["Configuration"]["FunctionArn"],
            "reserved_concurrency": reserved,
            "throttles_per_minute": values("Throttles", "Sum"),
            "peak_concurrency": int(max(concurrency)) if concurrency else None,
            "reservable_headroom": reservable_headroom(client),
            "tags": function.get("Tags", {}),
        }

    def _planned(self, ctx, state, headroom: int) -> int | None:
        """The new reservation; None when there is nothing to size it from."""
        reserved, percent = state["reserved_concurrency"], ctx.threshold("increase_percent")
        if reserved is not None:
            return min(raised(reserved, percent), reserved + headroom)
        if not state["peak_concurrency"]:
            return None
        return min(raised(state["peak_concurrency"], percent), headroom)

    def check_eligibility(self, ctx, state):
        reserved = state["reserved_concurrency"]
        if reserved == 0:
            return "reserved concurrency is 0: the function was switched off on purpose"
        alarm = ctx.entry.metric_alarm  # Sum of Throttles per one-minute period
        limit, minutes = alarm.threshold, ctx.threshold("lookback_minutes")
        worst = max(state["throttles_per_minute"], default=0)
        if not alarm.breached(worst):
            return (
                f"already fixed: at most {worst:g} throttles a minute in the last {minutes:g} minutes "
                f"(limit {limit:g})"
            )
        planned = self._planned(ctx, state, state["reservable_headroom"])
        if planned is None:
            return (
                f"no reserved concurrency and no ConcurrentExecutions data in the last {minutes:g} minutes "
                "to size one from"
            )
        if planned <= self._floor(state):
            return (
                f"not enough unreserved concurrency in the account (headroom {state['reservable_headroom']} "
                f"above Lambda's floor) to raise the function past {self._floor(state)}: raising the account "
                "quota needs a human"
            )
        return None

    @staticmethod
    def _floor(state) -> int:
        """What a new reservation must exceed: the current one, or, with none, the function's peak (a smaller
        reservation would cap the function below what it runs now)."""
        reserved = state["reserved_concurrency"]
        return reserved if reserved is not None else state["peak_concurrency"]

    def plan(self, ctx, state):
        before = state["reserved_concurrency"]
        planned = self._planned(ctx, state, state["reservable_headroom"])
        return (
            f"set the reserved concurrency of Lambda function {state['function_name']} from "
            f"{'none' if before is None else before} to {planned}"
        )

    def execute(self, ctx, state):
        client, function = ctx.client("lambda"), state["function_name"]
        planned = self._planned(ctx, state, reservable_headroom(client))  # headroom may have shrunk
        if planned is None or planned <= self._floor(state):
            raise RuntimeError(
                f"the account's unreserved headroom shrank since the check: cannot raise {function}"
            )
        current = reserved_concurrency(client, function)
        if current is not None and current >= planned:  # a retry: already done
            return {"planned_concurrency": planned, "changed": False}
        client.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=planned)
        return {"planned_concurrency": planned, "changed": True}

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("the reserved concurrency it planned")
        current = reserved_concurrency(ctx.client("lambda"), state["function_name"])
        planned = result["planned_concurrency"]
        if current is None or current < planned:
            return Validation(False, f"reserved concurrency reads {current}, expected {planned}")
        return Validation(True, f"reserved concurrency is {current} (was {state['reserved_concurrency']})")

    def rollback(self, ctx, state, result):
        return restore_reserved(ctx.client("lambda"), state["function_name"], state["reserved_concurrency"])
