"""The trigger Lambda: EventBridge event -> the remediation DAG runs it starts.

Imports no Airflow, so it cold-starts fast. Bad input is logged as one line and returned, never raised:
retrying cannot fix it; so is an event from an account the hub does not handle (ignored, with the reason).
A trigger that still fails after the client's retries raises: Lambda retries the invocation twice, then
sends its record to the on-failure destination queue, where the scheduled redrive (``REDRIVE_REQUEST``,
``matcarv_aiops.ingress.redrive``) replays it once the API answers; runs already started answer 409.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from matcarv_aiops.ingress.redrive import REDRIVE_REQUEST, redrive
from matcarv_aiops.ingress.routing import AccountScope, InvalidEvent, route
from matcarv_aiops.ingress.trigger_client import TriggerClient, client_from_settings, start_runs

log = logging.getLogger("matcarv_aiops.ingress")
log.setLevel(logging.INFO)

_client: TriggerClient | None = None  # one per warm container: keeps the JWT and the confirmed runs


def handler(event: Any, context: Any) -> dict[str, Any]:
    global _client
    deadline = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    if event == REDRIVE_REQUEST:
        return _redrive(deadline)
    try:
        routed = route(event, accounts=AccountScope.from_settings())
    except InvalidEvent as exc:
        log.error(json.dumps({"rejected": str(exc)}))
        return {"rejected": str(exc)}
    outcome = routed.as_dict()
    for reason in routed.passed_over if routed.matches else ():
        log.info(json.dumps({"event_id": routed.event.id, "passed_over": reason}))
    if routed.ignored:
        log.info(json.dumps({"event_id": routed.event.id, "ignored": routed.ignored}))
        return outcome
    _client = _client or client_from_settings()
    results = start_runs(routed, _client, deadline=deadline)
    for match, result in zip(outcome["matches"], results, strict=True):
        match["status"] = result.status
    log.info(json.dumps({"event_id": routed.event.id, "triggered": outcome["matches"]}))
    return outcome


def _redrive(deadline: float | None) -> dict[str, Any]:
    """The scheduled pass over the kept events. It never raises: a failed pass would only land its own
    record in the on-failure queue, and whatever it did not replay stays queued for the next pass."""
    global _client
    from matcarv_aiops.settings import get_settings

    settings = get_settings()
    try:
        _client = _client or client_from_settings(settings)
        report = redrive(
            settings.ingress.redrive_queue_urls,
            _client,
            accounts=AccountScope.from_settings(settings),
            deadline=deadline,
            clock=time.monotonic,
        )
    except Exception as exc:  # noqa: BLE001 - logged; the messages stay in their queues
        log.error(json.dumps({"redrive": "failed", "error": f"{type(exc).__name__}: {exc}"}))
        return {"redrive": "failed", "error": f"{type(exc).__name__}: {exc}"}
    return {"redrive": report.as_dict()}
