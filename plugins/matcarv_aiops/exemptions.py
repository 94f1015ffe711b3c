"""Exemptions as a managed object: each has an owner, a reason and an expiry no later than
``exemption_max_days`` ahead, and adding or removing one writes an audit record (runbook ``aiops
exempt``, outcome SUCCESS) naming who did it. Expired exemptions stop applying by themselves
(``safety._table_exemption`` ignores them; DynamoDB's TTL deletes them later).

The change is made first, then audited; when the audit record cannot be written the change is undone,
so no exemption changes without its record.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from matcarv_aiops.audit import AuditWriter
from matcarv_aiops.aws import hub_client
from matcarv_aiops.models import AuditRecord, Outcome, iso_utc
from matcarv_aiops.safety import Exemption, SafetyStore
from matcarv_aiops.settings import Settings

EXEMPT_RUNBOOK = "aiops exempt"  # the runbook of the audit records of exemption changes
_DURATION = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[hdw])$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


class BadExemption(ValueError):
    """An exemption change refused before anything was written; the message says why."""


def parse_expiry(text: str, settings: Settings, *, now: datetime | None = None) -> datetime:
    """``--expires``: a duration from now (``12h``, ``7d``, ``2w``) or an ISO 8601 date or time (UTC
    unless it names an offset; a bare date is midnight UTC at its start). Refuses the past and anything
    beyond ``exemption_max_days``."""
    now = now or datetime.now(UTC)
    text = text.strip()
    duration = _DURATION.match(text)
    if duration:
        expires = now + timedelta(hours=float(duration["amount"]) * _UNIT_HOURS[duration["unit"]])
    else:
        try:
            expires = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise BadExemption(
                f"--expires {text!r} is neither a duration (12h, 7d, 2w) nor an ISO 8601 date or time"
            ) from None
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    if expires <= now:
        raise BadExemption(f"--expires {text!r} is in the past ({iso_utc(expires)})")
    limit = timedelta(days=settings.safety.exemption_max_days)
    if expires - now > limit:
        raise BadExemption(
            f"--expires {text!r} is more than {settings.safety.exemption_max_days:g} days ahead "
            f"(AIOPS_EXEMPTION_MAX_DAYS); the latest allowed is {iso_utc(now + limit)}"
        )
    return expires


def caller_identity(settings: Settings) -> str:
    """The AWS identity whose credentials write the tables (sts:GetCallerIdentity's ARN)."""
    return str(hub_client("sts", settings).get_caller_identity()["Arn"])


@dataclass
class ExemptionChange:
    exemption: Exemption
    audit: AuditRecord

    def to_json(self) -> dict[str, object]:
        return {"exemption": self.exemption.to_json(), "audit": self.audit.to_item()}


def _required(name: str, value: str) -> str:
    if not value or not value.strip():
        raise BadExemption(f"{name} is required and must not be blank")
    if "\n" in value:
        raise BadExemption(f"{name} must be one line")
    return value.strip()


def _target(arn: str) -> str:
    arn = arn.strip()
    if not arn.startswith("arn:") or len(arn.split(":", 5)) < 6:
        raise BadExemption(
            f"TARGET_ARN {arn!r} is not an ARN (arn:partition:service:region:account:resource)"
        )
    return arn


def _record(target: str, action: str, trigger: dict[str, str], operator: str, by: str) -> AuditRecord:
    return AuditRecord(
        execution_id=str(uuid.uuid4()),
        timestamp=iso_utc(),
        trigger=json.dumps({"source": EXEMPT_RUNBOOK, **trigger}, sort_keys=True),
        runbook=EXEMPT_RUNBOOK,
        target_resource=target,
        action=action,
        outcome=Outcome.SUCCESS,
        operator=operator,
        rollback_plan=(
            f"aiops exempt remove {target} --reason ..."
            if trigger["command"] == "add"
            else f"aiops exempt add {target} --owner ... --reason ... --expires ..."
        ),
        requested_by=by,
    )


def _put_back(safety: SafetyStore, previous: Exemption | None, target: str) -> None:
    if previous is None:
        safety.remove_exemption(target)
    else:
        safety.add_exemption(
            target, owner=previous.owner, reason=previous.reason, expires_at=previous.expires_at
        )


def add(
    settings: Settings,
    target_arn: str,
    *,
    owner: str,
    reason: str,
    expires: str,
    operator: str,
    requested_by: str,
) -> ExemptionChange:
    """Exempt the resource until ``expires`` (replacing an exemption it has) and audit it."""
    target, owner, reason = _target(target_arn), _required("--owner", owner), _required("--reason", reason)
    operator = _required("the operator", operator)
    expires_at = parse_expiry(expires, settings)
    safety = SafetyStore(settings)
    previous = safety.exemption_of(target)
    safety.add_exemption(target, owner=owner, reason=reason, expires_at=expires_at)
    replaced = f"; replaces the exemption until {iso_utc(previous.expires_at)}" if previous else ""
    record = _record(
        target,
        f"exempted from automated remediation until {iso_utc(expires_at)} "
        f"(owner {owner}: {reason}){replaced}",
        {"command": "add", "owner": owner, "reason": reason, "expiresAt": iso_utc(expires_at)},
        operator,
        requested_by,
    )
    _audit_or_undo(settings, record, lambda: _put_back(safety, previous, target))
    return ExemptionChange(Exemption(target, owner, reason, expires_at), record)


def remove(
    settings: Settings, target_arn: str, *, reason: str, operator: str, requested_by: str
) -> ExemptionChange:
    """Remove the resource's exemption and audit it; refused when it has none."""
    target, reason = _target(target_arn), _required("--reason", reason)
    operator = _required("the operator", operator)
    safety = SafetyStore(settings)
    removed = safety.remove_exemption(target)
    if removed is None:
        raise BadExemption(f"{target} has no exemption to remove")
    record = _record(
        target,
        f"exemption removed (owner {removed.owner}, until {iso_utc(removed.expires_at)}: "
        f"{removed.reason}): {reason}",
        {"command": "remove", "reason": reason},
        operator,
        requested_by,
    )
    _audit_or_undo(settings, record, lambda: _put_back(safety, removed, target))
    return ExemptionChange(removed, record)


def _audit_or_undo(settings: Settings, record: AuditRecord, undo: Callable[[], object]) -> None:
    try:
        AuditWriter(settings).write(record)
    except Exception:
        undo()  # no exemption changes without its audit record
        raise
