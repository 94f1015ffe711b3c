"""Route one EventBridge event to the remediation DAG runs it should start.

Routing reads the event and the catalogue's route table only (``route_table``: compiled JSON in the
Lambda): no AWS call, no Airflow import, no pydantic (the envelope is validated with pydantic-core alone:
``matcarv_aiops.envelope``). Resolving a target further
(an instance to its Auto Scaling group, say) is the DAG's diagnostics' job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic_core import ValidationError

from matcarv_aiops.envelope import Envelope, is_arn, validate_envelope, validation_problems
from matcarv_aiops.ingress.patterns import matches, mismatch
from matcarv_aiops.ingress.route_table import RouteEntry, as_route_entries, route_table

# EventBridge refuses events over 256 KiB (PutEvents entry size), so anything bigger did not come from it.
MAX_EVENT_BYTES = 256 * 1024
DAG_RUN_ID_PREFIX = "ev_"

SECURITYHUB_SOURCE = "aws.securityhub"
FINDINGS_IMPORTED = "Security Hub Findings - Imported"
# A Security Hub finding is acted on only while it is live, failed and nobody has dealt with it yet (the
# catalogue's Security Hub patterns are generated from these): RecordState, Compliance.Status (control
# findings only), Workflow.Status.
ACTIONABLE_RECORD_STATES = ("ACTIVE",)
ACTIONABLE_COMPLIANCE = ("FAILED",)
ACTIONABLE_WORKFLOW = ("NEW", "NOTIFIED")


class InvalidEvent(ValueError):
    """The input is not an event we accept; the one-line message names the field."""


@dataclass(frozen=True)
class AccountScope:
    """The accounts whose events the hub handles: its own and its member accounts.

    With no member list configured (``aiops route`` by default, or a hub without member accounts) every
    account is accepted: such a hub's bus receives only what its own bus policy lets in.
    """

    hub: str = ""
    members: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any = None) -> AccountScope:
        if settings is None:
            from matcarv_aiops.settings import get_settings

            settings = get_settings()
        return cls(hub=settings.ingress.hub_account, members=tuple(settings.ingress.member_accounts))

    def accepts(self, account: str) -> bool:
        return not self.members or account == self.hub or account in self.members

    def refusal(self, account: str) -> str:
        """Why ``account`` is not accepted, as the end of a sentence."""
        hub = f"the hub ({self.hub})" if self.hub else "the hub"
        members = ", ".join(self.members)
        return f"{account} is neither {hub} nor a member account ({members})"


@dataclass(frozen=True)
class Match:
    remediation: str
    dag_id: str
    dag_run_id: str
    target: str  # the target's ARN

    def as_dict(self) -> dict[str, Any]:
        return {
            "remediation": self.remediation,
            "dag_id": self.dag_id,
            "dag_run_id": self.dag_run_id,
            "target": self.target,
        }


@dataclass(frozen=True)
class Route:
    event: Envelope
    matches: tuple[Match, ...]
    ignored: str | None
    # Entries this event did not start, and why (logged, so a near miss is visible).
    passed_over: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event.id,
            "matches": [m.as_dict() for m in self.matches],
            "ignored": self.ignored,
        }

    def conf(self) -> dict[str, Any]:
        """The remediation DAG run's conf: the validated event, which is what ``RemediationRequest`` (the
        DAG's schema, checked again by the run) needs; tests/ingress holds the two together."""
        return {"event": self.event.as_event()}


def parse_event(raw: str | bytes | Mapping[str, Any]) -> Envelope:
    """Validate the envelope. Raises InvalidEvent with one line naming the field at fault."""
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) > MAX_EVENT_BYTES:
            raise InvalidEvent(f"event: {len(raw)} bytes is over EventBridge's {MAX_EVENT_BYTES}-byte limit")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"event: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if isinstance(raw, str):
        if len(raw) > MAX_EVENT_BYTES:  # characters <= bytes; the exact size is checked below
            raise InvalidEvent(
                f"event: {len(raw.encode())} bytes is over EventBridge's {MAX_EVENT_BYTES}-byte limit"
            )
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidEvent(
                f"event: malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except (ValueError, RecursionError) as exc:  # e.g. nesting deeper than the parser's stack
            raise InvalidEvent(f"event: cannot be parsed: {_why(exc)}") from None
        size = len(raw.encode())
    else:
        data = raw
        size = None
    if not isinstance(data, Mapping):
        raise InvalidEvent(f"event: must be a JSON object, got {type(data).__name__}")
    if size is None:
        try:
            size = len(json.dumps(data, separators=(",", ":"), default=str).encode())
        except (ValueError, RecursionError) as exc:  # circular or too deeply nested
            raise InvalidEvent(f"event: cannot be serialised: {_why(exc)}") from None
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event: {size} bytes is over EventBridge's {MAX_EVENT_BYTES}-byte limit")
    try:
        event = validate_envelope(data)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid event: {validation_problems(exc, 'event')}") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(f"invalid event: {_why(exc)}") from None
    serialised(event)  # what cannot be serialised cannot become a run's conf: refuse it here
    return event


def serialised(event: Envelope) -> dict[str, Any]:
    """The event as delivered (``as_event``); raises InvalidEvent if it cannot be serialised (pydantic's
    serialiser stops at a nesting depth that EventBridge's 256 KiB still allows)."""
    try:
        return event.as_event()
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(f"event: cannot be serialised: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"[:200]


def dag_run_id(entry: Any, event: Any) -> str:
    """Same event + same entry (a catalogue or route entry) => same run id, so a redelivered event cannot
    start a second run. ``event``: an ``Envelope`` or an ``EventBridgeEvent`` (its id, source, account).

    EventBridge keeps an event's id across retries and redeliveries. The id stays short because MWAA
    limits the REST path (``/dags/<dag_id>/dagRuns/<run_id>``) to 64 characters.
    """
    key = f"{entry.id}|{event.source}|{event.account}|{event.id}"
    return DAG_RUN_ID_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:16]


def route(
    raw: str | bytes | Mapping[str, Any] | Envelope,
    entries: Mapping[str, Any] | None = None,
    *,
    accounts: AccountScope | None = None,
) -> Route:
    """Every catalogue entry the event starts, with its run id and target.

    Raises InvalidEvent only for input that is not a well-formed event; a well-formed event that no entry
    matches (any source, any detail-type) is ignored, with the reason.

    ``entries``: catalogue or route entries by id (default: the route table, i.e. the whole catalogue).
    ``accounts``: whose events are handled (default: every account's); others are ignored, with the reason.
    """
    table: dict[str, RouteEntry] = route_table() if entries is None else as_route_entries(entries)
    event = raw if isinstance(raw, Envelope) else parse_event(raw)
    data = serialised(event)
    scope = accounts or AccountScope()
    if not scope.accepts(event.account):
        # Not invalid: retrying cannot change the account, and a stranger's event is no platform fault.
        return Route(
            event=event,
            matches=(),
            ignored=f"account: {scope.refusal(event.account)}",
        )
    watching = [
        entry
        for entry in table.values()
        if matches({"source": entry.trigger["source"]}, {"source": event.source})
    ]
    if not watching:
        # Not invalid either: an organisation's bus carries many well-formed events no entry cares about,
        # and an error would only make the Lambda retry them and fill its dead-letter queue.
        sources = sorted({s for e in table.values() for s in e.trigger["source"] if isinstance(s, str)})
        return Route(
            event=event,
            matches=(),
            ignored=(
                f"source: {event.source!r} is not a source any catalogue entry listens to "
                f"(known: {', '.join(sources)})"
            ),
        )
    found: list[Match] = []
    reasons: list[str] = []
    for entry in watching:
        failure = mismatch(entry.trigger, data)
        if failure is not None:
            held = "" if "$or" in failure else f" ({_found_at(data, failure)})"
            reasons.append(f"{entry.id}: {failure} does not match{held}")
            continue
        target = entry.target_arn(data)
        if target is None:
            paths = ", ".join(path for spec in entry.targets for path in spec.paths)
            reasons.append(f"{entry.id}: matched but the event names no target at {paths}")
            continue
        arn, account = target
        if not is_arn(arn):
            reasons.append(f"{entry.id}: matched but its target {arn!r} is not an ARN")
            continue
        refused = _foreign_target(arn, account, event.account, scope)
        if refused:
            reasons.append(f"{entry.id}: matched but refused: {refused}")
            continue
        found.append(Match(entry.id, entry.dag_id, dag_run_id(entry, event), arn))
    ignored = None if found else "nothing to start: " + "; ".join(reasons)
    if not found and event.source == SECURITYHUB_SOURCE and event.detail_type == FINDINGS_IMPORTED:
        states = [
            finding_state_problem(f) for f in data["detail"].get("findings") or [] if isinstance(f, dict)
        ]
        if any(states):
            ignored = "; ".join(s for s in states if s) + f"; {ignored}"
    return Route(event=event, matches=tuple(found), ignored=ignored, passed_over=tuple(reasons))


def finding_state_problem(finding: Mapping[str, Any]) -> str | None:
    """Why a Security Hub finding is not acted on whatever its control (archived, passed, suppressed or
    resolved), or None when its state is actionable."""
    record = finding.get("RecordState")
    workflow = (finding.get("Workflow") or {}).get("Status")
    compliance = (finding.get("Compliance") or {}).get("Status")
    problems = []
    if record not in ACTIONABLE_RECORD_STATES:
        problems.append(f"RecordState {record}")
    if compliance is not None and compliance not in ACTIONABLE_COMPLIANCE:
        problems.append(f"Compliance.Status {compliance}")
    if workflow not in ACTIONABLE_WORKFLOW:
        problems.append(f"Workflow.Status {workflow}")
    if not problems:
        return None
    actionable = (
        f"{'/'.join(ACTIONABLE_RECORD_STATES)}, {'/'.join(ACTIONABLE_COMPLIANCE)} and "
        f"{'/'.join(ACTIONABLE_WORKFLOW)}"
    )
    return (
        f"finding {finding.get('Id', '?')}: {', '.join(problems)} (only {actionable} findings are acted on)"
    )


def _foreign_target(arn: str, target_account: str, event_account: str, scope: AccountScope) -> str | None:
    """Why a target may not be acted on from this event, or None. An event speaks for its own account (or,
    for findings that name their account, for that account, which must be one the hub handles): a
    target ARN in any other account is refused, so no event can aim a remediation elsewhere."""
    arn_account = arn.split(":")[4]
    if arn_account and arn_account != target_account:
        named = "the event's" if target_account == event_account else "the finding's"
        return f"target {arn} is in account {arn_account}, not {named} account {target_account}"
    if target_account != event_account and not scope.accepts(target_account):
        return f"target account {scope.refusal(target_account)}"
    return None


def _found_at(data: Any, path: str, limit: int = 80) -> str:
    """What the event holds at a dotted path (arrays of objects walked), for the ignore reason."""
    nodes = [data]
    for part in path.split("."):
        found = []
        for node in nodes:
            for item in node if isinstance(node, list) else [node]:
                if isinstance(item, dict) and part in item:
                    found.append(item[part])
        nodes = found
    if not nodes:
        return "absent"
    text = json.dumps(nodes[0] if len(nodes) == 1 else nodes, default=str)
    return "event has " + (text if len(text) <= limit else text[:limit] + "...")
