"""audit_reconciler: every claimed execution ends in exactly one true audit record.

A run's own ``audit`` step writes its record. When that never happens (the run was marked failed while it
waited for approval, its worker was lost, the audit table was unavailable for every retry), the claim
``execution#<id>`` stays in the state table with no record. Every 10 minutes this finds such claims and
finishes them: it writes a FAILURE record that says what the intent marker says about a possible change,
closes a pending approval as CANCELLED, releases the lock, counts the action for cooldown when a change
may have been made, and sends the metric and the alert once (``audit.report_once``, the audit step's own
code). A claim whose record exists but whose after-effects did not all happen is finished the same way.
A finished claim is marked ``settledAt`` and not looked at again.

When a claim is stuck, never while its run may still write the record itself:
- a claim younger than ``reconcile_grace_minutes`` is left alone;
- when the DAG run's state can be read (the DAG asks Airflow): a queued or running run is in progress
  (its audit step runs last, whatever failed before); an ended or deleted run is finished here;
- when it cannot be read: a run whose approval request is pending and unexpired is waiting, not stuck;
  otherwise it is stuck once its last sign of progress (the claim, the decision, or the expiry) is older
  than the lock's lifetime (``lock_ttl_minutes``, the longest a run may hold its resource) and the grace.
The record is written with a conditional put: if the run's audit step wins the race, its record stands.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.audit import AuditWriter, expired_approval, report_once
from matcarv_aiops.aws import hub_client
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, AuditRecord, Outcome, iso_utc, utc_now
from matcarv_aiops.run_notes import run_note, set_run_note
from matcarv_aiops.safety import SafetyStore
from matcarv_aiops.settings import Settings

log = logging.getLogger(__name__)

SCHEDULE = "*/10 * * * *"
RECONCILER = "audit_reconciler"
ACTIVE_RUN_STATES = frozenset({"queued", "running"})
RUN_MISSING = "missing"  # the DAG run does not exist (deleted): it will never write anything

# (dag_id, run_id) -> the DAG run's state ("queued", "running", "success", "failed"), RUN_MISSING, or
# None when it cannot be read.
RunStateReader = Callable[[str, str], str | None]


def _unknown_run_state(dag_id: str, run_id: str) -> str | None:
    return None


class ReconcileIncomplete(RuntimeError):
    """Some claims could not be finished; they are tried again on the next run."""


@dataclass(frozen=True)
class Claim:
    """An ``execution#<id>`` item of the state table: who claimed the execution, and what it was about."""

    execution_id: str
    run_id: str
    dag_id: str
    claimed_at: datetime
    remediation: str | None = None
    target_arn: str | None = None
    trigger: str | None = None
    requested_by: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Claim:
        plain = {k: v["S"] for k, v in item.items() if "S" in v}
        return cls(
            execution_id=plain["pk"].removeprefix("execution#"),
            run_id=plain.get("runId", "unknown"),
            dag_id=plain.get("dagId", "unknown"),
            claimed_at=_parse(plain.get("claimedAt", "1970-01-01T00:00:00Z")),
            remediation=plain.get("remediation"),
            target_arn=plain.get("targetArn"),
            trigger=plain.get("trigger"),
            requested_by=plain.get("requestedBy"),
        )


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def unsettled_claims(settings: Settings) -> list[Claim]:
    """Every claim not yet marked settled (a filtered Scan of the state table, page by page)."""
    ddb = hub_client("dynamodb", settings)
    kwargs: dict[str, Any] = {
        "TableName": settings.platform.state_table,
        "ConsistentRead": True,
        "FilterExpression": "begins_with(pk, :claim) AND attribute_not_exists(settledAt)",
        "ExpressionAttributeValues": {":claim": {"S": "execution#"}},
    }
    claims = []
    while True:
        page = ddb.scan(**kwargs)
        claims += [Claim.from_item(item) for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return claims
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass(frozen=True)
class Verdict:
    execution_id: str
    done: str  # "left" (not stuck, or not yet), "written" (record written here), "settled" (record existed)
    detail: str


def reconcile(
    settings: Settings, *, run_state: RunStateReader = _unknown_run_state, now: datetime | None = None
) -> dict[str, Any]:
    """Finish every stuck claim (see the module's docstring); returns what was done, by verdict. Claims
    that fail are counted and the others still finished; then ``ReconcileIncomplete`` names them."""
    now = now or utc_now()
    grace = timedelta(minutes=settings.safety.reconcile_grace_minutes)
    verdicts: list[Verdict] = []
    failures: list[str] = []
    for claim in unsettled_claims(settings):
        if now - claim.claimed_at < grace:
            continue
        try:
            verdicts.append(reconcile_claim(settings, claim, run_state=run_state, now=now))
        except Exception as exc:  # one claim's trouble must not keep the others unfinished
            log.exception("cannot reconcile execution %s", claim.execution_id)
            failures.append(f"{claim.execution_id}: {exc!r}")
    for verdict in verdicts:
        log.info("%s %s: %s", verdict.done, verdict.execution_id, verdict.detail)
    summary = {
        kind: sorted(v.execution_id for v in verdicts if v.done == kind)
        for kind in ("written", "settled", "left")
    }
    if failures:
        raise ReconcileIncomplete(
            f"{len(failures)} claims not reconciled (tried again next run): " + "; ".join(failures)
        )
    return summary


def reconcile_claim(settings: Settings, claim: Claim, *, run_state: RunStateReader, now: datetime) -> Verdict:
    """Finish one claim if it is stuck; leave it (verdict "left") while its run may still audit itself."""
    writer, safety = AuditWriter(settings), SafetyStore(settings)
    record = writer.read(claim.execution_id)
    state = run_state(claim.dag_id, claim.run_id)
    if state in ACTIVE_RUN_STATES:
        return Verdict(claim.execution_id, "left", f"run {claim.run_id} is {state}: it audits itself")
    approval = ApprovalStore(settings).get(claim.execution_id)
    if state is None:
        waiting = _still_going(settings, record, approval, claim, now)
        if waiting:
            return Verdict(claim.execution_id, "left", waiting)
    intent = safety.intent(claim.execution_id)
    details = _details(settings, claim)
    done = "settled"
    if record is None:
        why = (
            f"no sign of progress since {iso_utc(_last_progress(claim, approval))}"
            if state is None
            else ("the DAG run no longer exists" if state == RUN_MISSING else f"the DAG run is {state}")
        )
        failure = _failure_record(claim, details, why, intent, approval)
        if writer.write(failure):
            record, done = failure, "written"
            if state != RUN_MISSING:  # the run shows the outcome its audit step never wrote
                set_run_note(settings, claim.dag_id, claim.run_id, run_note(failure))
        else:  # the run's audit step got there first: its record stands
            record = writer.read(claim.execution_id) or failure
    _settle(settings, claim, record, details, intent, approval, now)
    return Verdict(claim.execution_id, done, f"{record.outcome.value}: {record.action}")


def _still_going(
    settings: Settings,
    record: AuditRecord | None,
    approval: ApprovalRecord | None,
    claim: Claim,
    now: datetime,
) -> str | None:
    """Why a run whose state cannot be read may still be going (so it is left alone), or None."""
    grace = timedelta(minutes=settings.safety.reconcile_grace_minutes)
    if record is not None:  # its audit step ran: only its retries can still be going
        written = _parse(record.timestamp)
        return f"audited at {record.timestamp}; its retries may still run" if now - written < grace else None
    if approval is not None and approval.status == ApprovalStatus.PENDING and not approval.expired(now):
        return f"waiting for approval until {approval.expires_at}"
    last = _last_progress(claim, approval)
    quiet = max(grace, timedelta(minutes=settings.safety.lock_ttl_minutes))
    if now - last < quiet:
        return f"last progress at {iso_utc(last)}; stuck only after {quiet} without any"
    return None


def _last_progress(claim: Claim, approval: ApprovalRecord | None) -> datetime:
    moments = [claim.claimed_at]
    if approval is not None:
        if approval.decided_at:
            moments.append(_parse(approval.decided_at))
        elif approval.status == ApprovalStatus.PENDING:
            moments.append(_parse(approval.expires_at))  # the waiting step ends at the latest then
    return max(moments)


@dataclass(frozen=True)
class _Details:
    remediation: str
    target_arn: str
    trigger: str
    rollback_plan: str
    diagnostics_uri: str


def _details(settings: Settings, claim: Claim) -> _Details:
    """What the record needs, from the claim; for a claim written before claims kept them, from the
    catalogue (by DAG id) and the diagnostics object in S3, else said to be unknown."""
    from matcarv_aiops.catalogue import catalogue

    entry = next(
        (e for e in catalogue().values() if e.id == claim.remediation or e.dag_id == claim.dag_id), None
    )
    remediation = claim.remediation or (entry.id if entry else claim.dag_id)
    key = f"diagnostics/{remediation}/{claim.execution_id}/state.json"
    target, trigger = claim.target_arn, claim.trigger
    if target is None or trigger is None:
        stored = _diagnostics(settings, key)
        target = target or stored.get("target")
        trigger = trigger or (json.dumps(stored["trigger"], sort_keys=True) if "trigger" in stored else None)
    return _Details(
        remediation=remediation,
        target_arn=target or "unknown (the claim and the diagnostics do not name it)",
        trigger=trigger
        or json.dumps({"dag_id": claim.dag_id, "run_id": claim.run_id, "unknown": "trigger not recorded"}),
        rollback_plan=entry.rollback_plan if entry else "unknown: no catalogue entry for this run",
        diagnostics_uri=f"s3://{settings.platform.diagnostics_bucket}/{key}",
    )


def _diagnostics(settings: Settings, key: str) -> dict[str, Any]:
    s3 = hub_client("s3", settings)
    try:
        body = s3.get_object(Bucket=settings.platform.diagnostics_bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return {}
    return json.loads(body)


def _failure_record(
    claim: Claim,
    details: _Details,
    why: str,
    intent: dict[str, str] | None,
    approval: ApprovalRecord | None,
) -> AuditRecord:
    if intent:
        change = (
            f"A change may have been made: {intent.get('action', 'the action')} started at "
            f"{intent.get('startedAt', 'an unknown time')}; needs a human"
        )
    else:
        change = "Nothing was changed"
    pending = approval is not None and approval.status == ApprovalStatus.PENDING
    return AuditRecord(
        execution_id=claim.execution_id,
        timestamp=iso_utc(),
        trigger=details.trigger,
        runbook=claim.dag_id,
        target_resource=details.target_arn,
        action=(
            f"FAILED: run {claim.run_id} ended without its audit record ({why}); recorded by "
            f"{RECONCILER}. {change}" + (". Its pending approval request was cancelled" if pending else "")
        ),
        outcome=Outcome.FAILURE,
        operator=approval.approver
        if approval is not None and approval.status == ApprovalStatus.APPROVED and approval.approver
        else "automated",
        rollback_plan=details.rollback_plan,
        requested_by=claim.requested_by
        or (approval.requested_by if approval is not None else None)
        or "automated",
    )


def _settle(
    settings: Settings,
    claim: Claim,
    record: AuditRecord,
    details: _Details,
    intent: dict[str, str] | None,
    approval: ApprovalRecord | None,
    now: datetime,
) -> None:
    """The after-effects of an ended run's record, each idempotent, then the claim marked settled."""
    safety = SafetyStore(settings)
    if approval is not None and approval.status == ApprovalStatus.PENDING:
        ApprovalStore(settings).cancel(
            claim.execution_id, f"run {claim.run_id} ended without a decision; closed by {RECONCILER}"
        )
    if not details.target_arn.startswith("unknown"):
        # A SUCCESS record is a validated change, even when its intent marker could not be written.
        if intent is not None or record.outcome is Outcome.SUCCESS:
            safety.record_action(details.remediation, details.target_arn, claim.execution_id)
        safety.release_lock(details.target_arn, claim.execution_id)
    report_once(
        settings,
        record,
        remediation=details.remediation,
        diagnostics_uri=details.diagnostics_uri,
        expired=expired_approval(settings, record),
    )
    hub_client("dynamodb", settings).update_item(
        TableName=settings.platform.state_table,
        Key={"pk": {"S": f"execution#{claim.execution_id}"}},
        UpdateExpression="SET settledAt = :now",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":now": {"S": iso_utc(now)}},
    )
