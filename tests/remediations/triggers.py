"""Shared check for the trigger-table tests: an entry's pattern, as moto's EventBridge matches it, and
the target resolved from the event alone."""

from __future__ import annotations

import json

from moto.events.models import EventPattern

from matcarv_aiops.catalogue import get_entry


def matches(entry_id: str, event: dict) -> bool:
    return EventPattern.load(json.dumps(get_entry(entry_id).trigger)).matches_event(event)


def check_pattern_and_target(
    entry_id: str, event: dict, expected_match: bool | None, target: str | None
) -> None:
    if expected_match is not None:
        assert matches(entry_id, event) is expected_match
    if target:
        assert get_entry(entry_id).resolve_target(event).arn == target
