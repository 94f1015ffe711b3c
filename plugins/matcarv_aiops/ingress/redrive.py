"""Replay the events the front door kept, with the same run ids, once the Airflow API answers again.

Two SQS queues keep events that did not start their runs:

- the trigger Lambda's on-failure destination: an invocation record (``requestPayload`` is the event)
  for every event whose invocations all failed (MWAA down or throttling for longer than the Lambda's own
  two retries), or that waited in Lambda's queue past its maximum age;
- the rule targets' dead-letter queue: the event itself, when EventBridge could not invoke the Lambda.

``redrive`` reads them, routes each event again and starts its runs. Run ids are derived from the event
(``routing.dag_run_id``), so a replay cannot start a second run: a run already started answers 409, which
counts as started. A message is deleted only once all its runs started or were found started. A message
that cannot be replayed (not an event, refused by the API) is kept in its queue and reported with the
reason, never deleted; the queue's depth alarm tells a human. The first time the API is still unavailable
the pass stops, leaving the rest for the next pass: hammering a backend that is down helps no one.

It runs by hand (``aiops redrive``) and every few minutes in the trigger Lambda (``REDRIVE_REQUEST``, from
a scheduled rule), so kept events go out on their own once MWAA is back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from matcarv_aiops.ingress.routing import AccountScope, InvalidEvent, route
from matcarv_aiops.ingress.trigger_client import (
    TriggerClient,
    TriggerRejected,
    TriggerUnavailable,
    start_runs,
)

log = logging.getLogger("matcarv_aiops.ingress")

# The scheduled rule's constant input: "replay the kept events" (no EventBridge event has this key).
REDRIVE_REQUEST = {"aiops": "redrive"}
# A message stays invisible this long once read: longer than a pass, so a pass reads each message once.
VISIBILITY_TIMEOUT_SECONDS = 300
# Do not start a message with less time than this left before the deadline (one trigger's worth).
TIME_PER_MESSAGE = 20.0


@dataclass
class RedriveReport:
    """What a pass did. ``kept`` and ``dropped`` name each message and why."""

    read: int = 0
    replayed: int = 0  # messages deleted: every run started now or found started
    runs_created: int = 0
    runs_already_started: int = 0
    kept: list[dict[str, str]] = field(default_factory=list)  # left in the queue, with the reason
    dropped: list[dict[str, str]] = field(default_factory=list)  # deleted without a replay, with the reason
    unavailable: str | None = None  # why the pass stopped early, leaving messages for the next pass

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "replayed": self.replayed,
            "runs_created": self.runs_created,
            "runs_already_started": self.runs_already_started,
            "kept": self.kept,
            "dropped": self.dropped,
            "unavailable": self.unavailable,
        }


def event_of(body: str) -> dict[str, Any] | None:
    """The event a kept message holds; None for the record of a failed redrive pass (nothing to replay).
    Raises InvalidEvent when the body is neither an invocation record nor an event."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(f"message: not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise InvalidEvent(f"message: must be a JSON object, got {type(data).__name__}")
    if "requestContext" in data and "requestPayload" in data:  # a Lambda invocation record
        payload = data["requestPayload"]
        if payload == REDRIVE_REQUEST:
            return None
        if not isinstance(payload, dict):
            raise InvalidEvent(f"message: requestPayload must be an event, got {type(payload).__name__}")
        return payload
    return data  # the rule target's dead-letter queue holds the event itself


def redrive(
    queue_urls: Iterable[str],
    client: TriggerClient,
    *,
    sqs: Any = None,
    accounts: AccountScope | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    max_messages: int | None = None,
) -> RedriveReport:
    """One pass over the queues. ``deadline``: a ``clock`` value to stop before (the Lambda's)."""
    if sqs is None:
        import boto3  # lazily: only a redrive needs SQS

        from matcarv_aiops.settings import get_settings

        sqs = boto3.client("sqs", region_name=get_settings().platform.region)
    report = RedriveReport()
    for queue_url in queue_urls:
        if not _drain(queue_url, client, sqs, accounts, deadline, clock, max_messages, report):
            break
    log.info(json.dumps({"redrive": report.as_dict()}))
    return report


def _drain(
    queue_url: str,
    client: TriggerClient,
    sqs: Any,
    accounts: AccountScope | None,
    deadline: float | None,
    clock: Callable[[], float],
    max_messages: int | None,
    report: RedriveReport,
) -> bool:
    """Replay one queue's messages; False if the pass must stop (out of time, API unavailable, limit)."""
    while True:
        if max_messages is not None and report.read >= max_messages:
            return False
        if deadline is not None and clock() + TIME_PER_MESSAGE > deadline:
            report.unavailable = report.unavailable or "out of time: the rest waits for the next pass"
            return False
        batch = min(10, max_messages - report.read) if max_messages is not None else 10
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch,
            VisibilityTimeout=VISIBILITY_TIMEOUT_SECONDS,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return True
        for index, message in enumerate(messages):
            report.read += 1
            if not _replay(queue_url, message, client, sqs, accounts, deadline, report):
                # Give back what this pass read but will not try now, so the next pass sees it at once.
                for untried in messages[index:]:
                    sqs.change_message_visibility(
                        QueueUrl=queue_url, ReceiptHandle=untried["ReceiptHandle"], VisibilityTimeout=0
                    )
                return False


def _replay(
    queue_url: str,
    message: dict[str, Any],
    client: TriggerClient,
    sqs: Any,
    accounts: AccountScope | None,
    deadline: float | None,
    report: RedriveReport,
) -> bool:
    """Replay one message; False if the API is still unavailable (the message stays)."""
    message_id = message["MessageId"]

    def keep(reason: str) -> bool:
        report.kept.append({"queue": queue_url, "message_id": message_id, "reason": reason})
        log.error(json.dumps({"redrive": "kept", "message_id": message_id, "reason": reason}))
        return True

    def delete() -> None:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    try:
        event = event_of(message.get("Body", ""))
        if event is None:
            reason = "the record of a failed redrive pass: it holds no event to replay"
            report.dropped.append({"queue": queue_url, "message_id": message_id, "reason": reason})
            log.warning(json.dumps({"redrive": "dropped", "message_id": message_id, "reason": reason}))
            delete()
            return True
        routed = route(event, accounts=accounts)
    except InvalidEvent as exc:
        return keep(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must not block the queue behind this message
        return keep(f"cannot route: {type(exc).__name__}: {exc}")
    if not routed.matches:
        return keep(f"event {routed.event.id} starts nothing now: {routed.ignored}")
    try:
        results = start_runs(routed, client, deadline=deadline)
    except TriggerUnavailable as exc:
        report.unavailable = str(exc)
        return False
    except TriggerRejected as exc:
        return keep(f"event {routed.event.id}: {exc}")
    except Exception as exc:  # noqa: BLE001 - as above: kept, with the reason, for a human
        return keep(f"event {routed.event.id}: cannot trigger: {type(exc).__name__}: {exc}")
    delete()
    report.replayed += 1
    for result in results:
        if result.status == "created":
            report.runs_created += 1
        else:
            report.runs_already_started += 1
    return True
