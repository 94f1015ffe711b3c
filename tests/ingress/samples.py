"""EventBridge event samples: hand-written ones (events/*.json, in the formats of the AWS documentation)
and, for any catalogue entry, an event built from its own trigger pattern on top of a sample of the same
kind, so routing tests cover whatever the catalogue holds.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from matcarv_aiops.catalogue import CatalogueEntry
from matcarv_aiops.ingress.patterns import matches

EVENTS_DIR = Path(__file__).with_name("events")
SAMPLE_NAMESPACE = uuid.UUID("0b8f3b8e-5d0a-4a8e-9f7c-7c1e0f6a2d41")

# What each hand-written sample must start among CURRENT_ENTRIES, the entries the catalogue held when
# these were written. The catalogue grows: a new entry may legitimately match one of these samples too, so
# only these entries are held strictly (new entries are covered by the per-entry tests).
CURRENT_ENTRIES = {
    "alb_5xx_spike",
    "cloudtrail_disabled",
    "config_rule_noncompliant",
    "ec2_status_check_failed",
    "guardduty_high_finding",
    "iam_access_key_old",
    "route53_health_check_failed",
    "s3_public_access",
    "sg_open_ssh",
    "sqs_dlq_depth_high",
}
EXPECTED_STARTS = {
    "cloudwatch_alarm_ec2_status_check.json": {"ec2_status_check_failed"},
    "cloudwatch_alarm_sqs_dlq_depth.json": {"sqs_dlq_depth_high"},
    "cloudwatch_alarm_alb_5xx_metric_math.json": {"alb_5xx_spike"},  # one metric of three: arrays crushed
    "cloudtrail_s3_delete_public_access_block.json": {"s3_public_access"},
    "cloudtrail_stop_logging.json": {"cloudtrail_disabled"},
    "cloudtrail_ec2_authorize_ssh_world.json": {"sg_open_ssh"},
    "config_rule_noncompliant.json": {"config_rule_noncompliant", "sg_open_ssh"},  # one event, two entries
    "guardduty_finding_credential_exfiltration.json": {"guardduty_high_finding"},
    # guardduty_finding_ssh_brute_force.json: an Instance finding; guardduty_high_finding is for access keys
}


@cache
def _load(name: str) -> str:
    return (EVENTS_DIR / name).read_text()


def load(name: str) -> dict[str, Any]:
    return json.loads(_load(name))


def sample_names() -> list[str]:
    return sorted(path.name for path in EVENTS_DIR.glob("*.json"))


def event_for(entry: CatalogueEntry) -> dict[str, Any]:
    """An event that ``entry``'s pattern matches and that names a target, as realistic as the samples."""
    event = _base_for(entry)
    event["id"] = str(uuid.uuid5(SAMPLE_NAMESPACE, entry.id))
    _fill(entry.trigger, event)
    if entry.resolve_target(event) is None:
        _put(event, entry.targets[0].paths[0], f"aiops-sample-{entry.id.replace('_', '-')}")
    if not matches(entry.trigger, event):
        raise AssertionError(f"samples.event_for could not build an event for {entry.id}'s pattern")
    return event


def near_miss_for(entry: CatalogueEntry) -> dict[str, Any] | None:
    """``event_for(entry)`` with one literal-only field of the pattern changed
    so that it no longer matches."""
    event = event_for(entry)
    for path in _literal_leaves(entry.trigger, ()):
        if path[0] == "source":
            continue  # another source is ignored before any entry is tried: not a near miss
        variant = copy.deepcopy(event)
        _put(variant, ".".join(path), "aiops-nonmatching-value", overwrite=True)
        if not matches(entry.trigger, variant):
            variant["id"] = str(uuid.uuid5(SAMPLE_NAMESPACE, f"near-miss|{entry.id}"))
            return variant
    return None


def single_object_arrays_unwrapped(node: Any) -> Any:
    """The same event with every one-element array of objects replaced by its object.

    EventBridge matches ``[{...}]`` exactly as ``{...}`` (arrays of objects are crushed out), but moto's
    matcher does not descend into arrays, so the moto agreement test sends this form.
    """
    if isinstance(node, dict):
        return {key: single_object_arrays_unwrapped(value) for key, value in node.items()}
    if isinstance(node, list):
        if len(node) == 1 and isinstance(node[0], dict):
            return single_object_arrays_unwrapped(node[0])
        return [single_object_arrays_unwrapped(value) for value in node]
    return node


def _base_for(entry: CatalogueEntry) -> dict[str, Any]:
    """The most fitting hand-written sample: one the pattern matches, else one of the same kind."""
    detail_types = [d for d in entry.trigger.get("detail-type", []) if isinstance(d, str)]
    sources = [s for s in entry.trigger["source"] if isinstance(s, str)]

    def fitness(sample: dict[str, Any]) -> tuple[bool, bool, bool, bool]:
        return (
            matches(entry.trigger, sample),
            entry.resolve_target(sample) is not None,
            sample["detail-type"] in detail_types,
            sample["source"] in sources,
        )

    candidates = sorted((load(name) for name in sample_names()), key=fitness, reverse=True)
    if candidates and fitness(candidates[0])[2]:
        return candidates[0]
    return {
        "version": "0",
        "id": "",
        "detail-type": (detail_types or ["AIOps Sample"])[0],
        "source": (sources or ["aws.sample"])[0],
        "account": "123456789012",
        "time": "2026-10-02T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    }


def _fill(pattern: dict[str, Any], node: dict[str, Any]) -> None:
    for key, sub in pattern.items():
        if key == "$or":
            _fill(sub[0], node)
            continue
        if isinstance(sub, dict):
            child = node.get(key)
            if isinstance(child, list) and child and isinstance(child[0], dict):
                child = child[0]  # array-consistent: every field in one element
            elif not isinstance(child, dict):
                child = node[key] = {}
            _fill(sub, child)
        elif not matches({key: sub}, node):
            value = _satisfying(sub[0])
            if value is _ABSENT:
                node.pop(key, None)
            else:
                node[key] = value


_ABSENT = object()


def _satisfying(rule: Any) -> Any:
    if not isinstance(rule, dict):
        return rule
    ((operator, operand),) = rule.items()
    if operator in ("prefix", "suffix"):
        text = operand["equals-ignore-case"] if isinstance(operand, dict) else operand
        return text + "-sample" if operator == "prefix" else "sample-" + text
    if operator == "equals-ignore-case":
        return operand[0] if isinstance(operand, list) else operand
    if operator == "wildcard":
        text = operand[0] if isinstance(operand, list) else operand
        return re.sub(r"\\(.)|\*", lambda m: m.group(1) or "x", text)
    if operator == "exists":
        return "present" if operand else _ABSENT
    if operator == "cidr":
        return str(next(ipaddress.ip_network(operand, strict=False).hosts()))
    if operator == "anything-but":
        excluded = operand if isinstance(operand, list) else [operand]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in excluded):
            return max(excluded) + 1
        return "aiops-sample-value"
    if operator == "numeric":
        low, high, value = float("-inf"), float("inf"), None
        for op, bound in zip(operand[::2], operand[1::2], strict=True):
            if op == "=":
                value = bound
            elif op in (">", ">="):
                low = bound + (1 if op == ">" else 0)
            else:
                high = bound - (1 if op == "<" else 0)
        if value is not None:
            return value
        if low != float("-inf") and high != float("inf"):
            return (low + high) / 2
        return low if low != float("-inf") else high
    raise AssertionError(f"no sample value for operator {operator}")


def _put(event: dict[str, Any], path: str, value: Any, *, overwrite: bool = False) -> None:
    node: Any = event
    parts = path.split(".")
    for part in parts[:-1]:
        key = part.removesuffix("[]")
        child = node.get(key)
        if part.endswith("[]") or isinstance(child, list):
            if not isinstance(child, list) or not child:
                child = node[key] = [{}]
            child = child[0]
        elif not isinstance(child, dict):
            child = node[key] = {}
        node = child
    last = parts[-1].removesuffix("[]")
    if overwrite or node.get(last) in (None, "", [], {}):
        node[last] = value


def _literal_leaves(pattern: dict[str, Any], prefix: tuple[str, ...]):
    for key, sub in pattern.items():
        if key == "$or":
            continue
        if isinstance(sub, dict):
            yield from _literal_leaves(sub, prefix + (key,))
        elif all(not isinstance(rule, dict) for rule in sub):
            yield prefix + (key,)
