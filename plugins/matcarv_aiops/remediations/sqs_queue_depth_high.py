"""Let a backed-up queue's consumer Lambda run wider: raise the cap that binds it by a quarter."""

from __future__ import annotations

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, unrecorded
from matcarv_aiops.remediations.capacity import raised
from matcarv_aiops.remediations.lambda_concurrency import (
    reservable_headroom,
    reserved_concurrency,
    restore_reserved,
)
from matcarv_aiops.remediations.queues import queue_url

MAPPING, RESERVED = "mapping_maximum_concurrency", "reserved_concurrency"
_ACTIVE_MAPPING_STATES = ("Enabled", "Enabling", "Updating")


def _mapping_cap(mapping: dict) -> int | None:
    value = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
    return None if value is None else int(value)


@register
class SqsQueueDepthHigh(Remediation):
    remediation_id = "sqs_queue_depth_high"

    def collect_diagnostics(self, ctx):
        sqs = ctx.client("sqs")
        url = queue_url(ctx)
        if url is None:
            return None
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn", "ApproximateNumberOfMessages"]
        )
        attrs = attrs["Attributes"]
        state = {
            "queue_url": url,
            "queue_arn": attrs["QueueArn"],
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "dead_letter_sources": sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", []),
            "tags": sqs.list_queue_tags(QueueUrl=url).get("Tags", {}),
        }
        if state["dead_letter_sources"]:
            return state  # a dead-letter queue: sqs_dlq_depth_high's business, no need to look further
        client = ctx.client("lambda")
        mappings = [
            m
            for page in client.get_paginator("list_event_source_mappings").paginate(
                EventSourceArn=attrs["QueueArn"]
            )
            for m in page["EventSourceMappings"]
        ]
        consumers = [m for m in mappings if m.get("State") in _ACTIVE_MAPPING_STATES]
        state["consumer_mappings"] = [m["UUID"] for m in consumers]
        if len(consumers) == 1:
            mapping = consumers[0]
            function = mapping["FunctionArn"].split(":")[6]
            state |= {
                "mapping_uuid": mapping["UUID"],
                "function_name": function,
                "mapping_max_concurrency": _mapping_cap(mapping),
                "reserved_concurrency": reserved_concurrency(client, function),
                "reservable_headroom": reservable_headroom(client),
            }
        return state

    def _planned(self, ctx, state, headroom: int) -> dict:
        """Which cap binds, and its raised value (equal to the current one when it cannot rise)."""
        on_mapping, on_function = state["mapping_max_concurrency"], state["reserved_concurrency"]
        percent = ctx.threshold("increase_percent")
        if on_mapping is not None and (on_function is None or on_mapping < on_function):
            ceiling = min(int(ctx.threshold("max_mapping_concurrency")), on_function or 10**9)
            return {
                "cap": MAPPING,
                "current": on_mapping,
                "planned": min(raised(on_mapping, percent), ceiling),
            }
        # above the mapping's own cap, a bigger reservation would let no more messages through
        ceiling = min(on_function + headroom, on_mapping if on_mapping is not None else 10**9)
        return {
            "cap": RESERVED,
            "current": on_function,
            "planned": min(raised(on_function, percent), ceiling),
        }

    def check_eligibility(self, ctx, state):
        if state["dead_letter_sources"]:
            return (
                f"a dead-letter queue (of {len(state['dead_letter_sources'])} source queue(s)): "
                "sqs_dlq_depth_high redrives dead-letter queues (its alarms fire for queues named *-dlq*; "
                "for another name, trigger remediate_sqs_dlq_depth_high by hand with this queue as target)"
            )
        alarm = ctx.entry.metric_alarm
        depth = alarm.threshold
        if not alarm.breached(state["visible"]):
            return f"already fixed: {state['visible']} messages visible, not above {depth:g}"
        consumers = state["consumer_mappings"]
        if len(consumers) != 1:
            return f"{len(consumers)} enabled Lambda event source mappings consume this queue: " + (
                "nothing to scale" if not consumers else "which to scale needs a human"
            )
        on_mapping, on_function = state["mapping_max_concurrency"], state["reserved_concurrency"]
        if on_mapping is None and on_function is None:
            return (
                "the consumer is not capped (no maximum concurrency on its mapping, no reserved "
                "concurrency): "
                "Lambda already scales it as far as the account allows"
            )
        if on_function == 0:
            return (
                f"reserved concurrency of {state['function_name']} is 0: the consumer was switched off "
                "on purpose"
            )
        if on_mapping is not None and on_mapping == on_function:
            return (
                "the mapping's maximum concurrency and the function's reserved concurrency are both "
                f"{on_mapping}: "
                "raising one alone lets no more messages through, so this needs a human"
            )
        plan = self._planned(ctx, state, state["reservable_headroom"])
        if plan["planned"] <= plan["current"]:
            return (
                f"the binding cap ({plan['cap'].replace('_', ' ')} {plan['current']}) cannot rise: "
                "at Lambda's limit or the account's unreserved headroom"
            )
        return None

    def plan(self, ctx, state):
        plan = self._planned(ctx, state, state["reservable_headroom"])
        where = (
            f"event source mapping {state['mapping_uuid']}'s maximum concurrency"
            if plan["cap"] == MAPPING
            else f"reserved concurrency of Lambda function {state['function_name']}"
        )
        return (
            f"raise the {where} from {plan['current']} to {plan['planned']} "
            f"({state['visible']} messages waiting in {state['queue_arn']})"
        )

    def _mapping_now(self, ctx, state) -> int | None:
        return _mapping_cap(ctx.client("lambda").get_event_source_mapping(UUID=state["mapping_uuid"]))

    def execute(self, ctx, state):
        client = ctx.client("lambda")
        plan = self._planned(ctx, state, 0)
        if plan["cap"] == RESERVED:  # the account's headroom may have shrunk since the check
            plan = self._planned(ctx, state, reservable_headroom(client))
        if plan["planned"] <= plan["current"]:
            raise RuntimeError(f"cannot raise the {plan['cap']} of {state['function_name']} any more")
        if plan["cap"] == MAPPING:
            if (self._mapping_now(ctx, state) or 0) < plan["planned"]:
                client.update_event_source_mapping(
                    UUID=state["mapping_uuid"], ScalingConfig={"MaximumConcurrency": plan["planned"]}
                )
        elif (reserved_concurrency(client, state["function_name"]) or 0) < plan["planned"]:
            client.put_function_concurrency(
                FunctionName=state["function_name"], ReservedConcurrentExecutions=plan["planned"]
            )
        return plan

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("the concurrency it planned")
        if result["cap"] == MAPPING:
            now = self._mapping_now(ctx, state)
        else:
            now = reserved_concurrency(ctx.client("lambda"), state["function_name"])
        if now is None or now < result["planned"]:
            return Validation(False, f"{result['cap']} reads {now}, expected {result['planned']}")
        return Validation(True, f"{result['cap']} is {now} (was {result['current']})")

    def rollback(self, ctx, state, result):
        cap = (result or self._planned(ctx, state, 0))["cap"]  # which cap binds does not depend on headroom
        if cap == MAPPING:
            recorded = state["mapping_max_concurrency"]
            ctx.client("lambda").update_event_source_mapping(
                UUID=state["mapping_uuid"], ScalingConfig={"MaximumConcurrency": recorded}
            )
            return (
                f"restored the maximum concurrency of event source mapping {state['mapping_uuid']} to "
                f"{recorded}"
            )
        return restore_reserved(ctx.client("lambda"), state["function_name"], state["reserved_concurrency"])
