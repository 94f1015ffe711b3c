"""The trigger Lambda: EventBridge event -> the remediation DAG runs it starts.

Imports no Airflow, so it cold-starts fast. Bad input is logged as one line and returned, never raised:
retrying cannot fix it. A trigger that still fails after the retries raises, so EventBridge retries the
event and then sends it to the dead-letter queue; runs already started answer 409 on the retry.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from matcarv_aiops.ingress.routing import InvalidEvent, route
from matcarv_aiops.ingress.trigger_client import TriggerClient, client_from_settings, start_runs

log = logging.getLogger("matcarv_aiops.ingress")
log.setLevel(logging.INFO)

_client: TriggerClient | None = None  # one per warm container: keeps the JWT and the confirmed runs


def handler(event: Any, context: Any) -> dict[str, Any]:
    global _client
    try:
        routed = route(event)
    except InvalidEvent as exc:
        log.error(json.dumps({"rejected": str(exc)}))
        return {"rejected": str(exc)}
    outcome = routed.as_dict()
    for reason in routed.passed_over if routed.matches else ():
        log.info(json.dumps({"event_id": routed.event.id, "passed_over": reason}))
    if routed.ignored:
        log.info(json.dumps({"event_id": routed.event.id, "ignored": routed.ignored}))
        return outcome
    deadline = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    _client = _client or client_from_settings()
    results = start_runs(routed, _client, deadline=deadline)
    for match, result in zip(outcome["matches"], results, strict=True):
        match["status"] = result.status
    log.info(json.dumps({"event_id": routed.event.id, "triggered": outcome["matches"]}))
    return outcome
