"""The steps of one remediation, as plain functions: testable without Airflow, run by the operators.

collect -> check -> request approval -> approval status -> act -> verify -> (undo) -> finish.
A step that ends the run early raises ``StepSkipped``; a known failure raises ``StepFailed``; both carry
the reason that ends up in the audit record. ``finish`` turns what every step recorded into exactly one
audit record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from matcarv_aiops.approvals import ApprovalStore, approval_instructions, publish
from matcarv_aiops.audit import AuditWriter
from matcarv_aiops.aws import hub_client, target_session
from matcarv_aiops.catalogue import CatalogueEntry, get_entry
from matcarv_aiops.models import (
    ApprovalRecord, ApprovalStatus, AuditRecord, Outcome, RemediationRequest, Target, iso_utc, utc_now,
    validation_problems,
)
from matcarv_aiops.remediations import get_remediation
from matcarv_aiops.remediations.base import RemediationContext
from matcarv_aiops.safety import SafetyStore, is_production
from matcarv_aiops.settings import Settings, get_settings

AUTOMATED = "automated"
# The remediation DAG's steps, in order; compose_audit() reads their records in this order. Entries run
# through an SSM Automation document wait for it between execute and validate.
STEPS = ("collect_diagnostics", "check_eligibility", "request_approval", "wait_for_approval", "execute", "validate")
AUTOMATION_STEP = "wait_for_automation"


def steps_for(entry: CatalogueEntry) -> tuple[str, ...]:
    if not entry.ssm_document:
        return STEPS
    return STEPS[:5] + (AUTOMATION_STEP,) + STEPS[5:]


class StepSkipped(Exception):
    """The run ends here, with no change: audited SKIPPED with this reason."""

    def __init__(self, reason: str, *, operator: str = AUTOMATED, duplicate_of: str | None = None):
        super().__init__(reason)
        self.reason, self.operator, self.duplicate_of = reason, operator, duplicate_of

    def record(self) -> dict[str, Any]:
        return {"reason": self.reason, "operator": self.operator, "duplicate_of": self.duplicate_of}


class StepFailed(Exception):
    """A known failure (bad input, validation failed): audited FAILURE with this reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Execution(BaseModel):
    """What collect_diagnostics learned; every later step starts from it (it travels as XCom)."""

    model_config = ConfigDict(extra="forbid")

    execution_id: str
    remediation: str
    dag_id: str
    run_id: str
    target: Target
    dry_run: bool
    trigger: str
    diagnostics_uri: str
    production: bool
    state: dict[str, Any] | None
    plan: str | None = None


def _context(entry: CatalogueEntry, execution: Execution, settings: Settings) -> RemediationContext:
    return RemediationContext(entry=entry, target=execution.target, settings=settings,
                              execution_id=execution.execution_id,
                              session=target_session(execution.target, entry.id, settings))


def fallback_execution_id(remediation_id: str, conf: Any, run_id: str) -> str:
    """The execution id even when the conf is unusable, so a bad request is still audited once."""
    try:
        return RemediationRequest.model_validate(conf).execution_id(remediation_id, run_id)
    except ValidationError:
        return RemediationRequest(target="arn:aws:iam::000000000000:root").execution_id(remediation_id, run_id)


def _trigger_json(request: RemediationRequest, dag_id: str, run_id: str) -> str:
    if request.event is not None:
        return json.dumps(request.event.as_event(), sort_keys=True)
    return json.dumps({"manual": True, "dag_id": dag_id, "run_id": run_id, "target": request.target,
                       "reason": request.reason, "dry_run": request.dry_run}, sort_keys=True)


def collect(remediation_id: str, conf: Any, *, dag_id: str, run_id: str,
            settings: Settings | None = None) -> Execution:
    """Validate the request, claim the execution (once per event), record the target's state to S3."""
    settings = settings or get_settings()
    entry = get_entry(remediation_id)
    try:
        request = RemediationRequest.model_validate(conf or {})
    except ValidationError as exc:
        raise StepFailed(f"bad request, nothing done: {validation_problems(exc, 'conf')}") from None
    if request.event is not None:
        target = entry.resolve_target(request.event)
        if target is None:
            raise StepFailed(f"bad request, nothing done: the event names no target for {remediation_id} "
                             f"(looked at {[p for spec in entry.targets for p in spec.paths]})")
    else:
        try:
            target = Target.from_arn(request.target, default_region=settings.region)
        except ValueError as exc:
            raise StepFailed(f"bad request, nothing done: target: {exc}") from None
    execution_id = request.execution_id(remediation_id, run_id)
    first_run = SafetyStore(settings).claim_execution(execution_id, run_id, dag_id)
    if first_run is not None:
        raise StepSkipped(f"duplicate: execution {execution_id} already belongs to run {first_run}",
                          duplicate_of=first_run)

    key = f"diagnostics/{remediation_id}/{execution_id}/state.json"
    execution = Execution(
        execution_id=execution_id, remediation=remediation_id, dag_id=dag_id, run_id=run_id, target=target,
        dry_run=request.dry_run, trigger=_trigger_json(request, dag_id, run_id),
        diagnostics_uri=f"s3://{settings.diagnostics_bucket}/{key}", production=False, state=None,
    )
    handler = get_remediation(remediation_id)
    ctx = _context(entry, execution, settings)
    state = handler.collect_diagnostics(ctx)
    execution.state = state
    if state is not None:
        execution.production = is_production(target, state.get("tags", {}), settings)
        if handler.check_eligibility(ctx, state) is None:  # a plan only where there is something to do
            execution.plan = handler.plan(ctx, state)
    hub_client("s3", settings).put_object(
        Bucket=settings.diagnostics_bucket, Key=key, ContentType="application/json",
        Body=json.dumps({"executionId": execution_id, "remediation": remediation_id, "target": target.arn,
                         "collectedAt": iso_utc(), "exists": state is not None, "state": state,
                         "trigger": json.loads(execution.trigger)}, default=str, indent=2).encode(),
    )
    return execution


def check(execution: Execution, settings: Settings | None = None) -> dict[str, Any]:
    """Eligibility from live data: gone, exempt, already fixed, cooldown/flapping, lock. Then whether
    a human must approve."""
    settings = settings or get_settings()
    entry = get_entry(execution.remediation)
    if execution.state is None:
        raise StepSkipped(f"resource is gone: {execution.target.arn} no longer exists")
    safety = SafetyStore(settings)
    exempt = safety.exemption(execution.target, execution.state.get("tags", {}))
    if exempt:
        raise StepSkipped(exempt)
    reason = get_remediation(entry.id).check_eligibility(_context(entry, execution, settings), execution.state)
    if reason:
        raise StepSkipped(reason)
    if not execution.dry_run:
        blocked = safety.cooldown_or_flapping(entry.id, execution.target.arn)
        if blocked:
            reason, escalate = blocked
            if escalate:
                publish(f"AIOps escalation: {entry.id} on {execution.target.resource_id}",
                        {"executionId": execution.execution_id, "remediation": entry.id,
                         "targetResource": execution.target.arn, "reason": reason,
                         "diagnostics": execution.diagnostics_uri}, settings, kind="escalation")
            raise StepSkipped(reason)
        holder = safety.acquire_lock(execution.target.arn, execution.execution_id)
        if holder:
            raise StepSkipped(f"locked: execution {holder} is remediating this resource now")
    if execution.production:
        return {"needs_approval": True, "why": "the target is production"}
    if entry.approval == "always":
        return {"needs_approval": True, "why": "this remediation cannot be undone, so it always needs a human"}
    return {"needs_approval": False, "why": "non-production and reversible: approved automatically"}


def request_approval(execution: Execution, eligibility: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Store the pending request and tell the approvers over SNS (once, even if this step retries)."""
    settings = settings or get_settings()
    if not eligibility["needs_approval"]:
        return {"requested": False, "why": eligibility["why"]}
    if execution.dry_run:
        return {"requested": False, "why": "dry run: nothing will change, so no approval is needed"}
    entry = get_entry(execution.remediation)
    now = utc_now()
    record = ApprovalRecord(
        executionId=execution.execution_id, remediation=entry.id, dagId=execution.dag_id,
        runId=execution.run_id, targetResource=execution.target.arn, action=execution.plan or entry.action,
        diagnosticsUri=execution.diagnostics_uri, rollbackPlan=entry.rollback_plan,
        reasonForApproval=eligibility["why"], requestedAt=iso_utc(now),
        expiresAt=iso_utc(now + timedelta(minutes=settings.approval_timeout_minutes)),
    )
    store = ApprovalStore(settings)
    if store.create(record):
        publish(f"AIOps approval needed: {entry.id} on {execution.target.resource_id}",
                {"executionId": record.executionId, "remediation": entry.id, "targetResource": record.targetResource,
                 "action": record.action, "whyApproval": record.reasonForApproval,
                 "diagnostics": record.diagnosticsUri, "rollbackPlan": record.rollbackPlan,
                 "expiresAt": record.expiresAt, "howToApprove": approval_instructions(record, settings)},
                settings, kind="approval_request")
    else:
        record = store.get(execution.execution_id) or record
    return {"requested": True, "expires_at": record.expiresAt}


def approval_status(execution: Execution, requested: dict[str, Any], settings: Settings | None = None) -> dict[str, Any] | None:
    """The decision, or None while a human has yet to decide."""
    settings = settings or get_settings()
    if not requested["requested"]:
        return {"decision": "auto", "operator": AUTOMATED, "why": requested["why"]}
    store = ApprovalStore(settings)
    record = store.get(execution.execution_id)
    if record is None:
        raise StepFailed(f"approval request for execution {execution.execution_id} has disappeared")
    if record.status == ApprovalStatus.PENDING and record.expired():
        record = store.expire(execution.execution_id) or record
    if record.status == ApprovalStatus.PENDING:
        return None
    return {"decision": record.status.value.lower(), "operator": record.approver or AUTOMATED,
            "why": record.decisionReason or "", "decided_at": record.decidedAt, "expires_at": record.expiresAt}


def act(execution: Execution, decision: dict[str, Any], settings: Settings | None = None, *,
        on_start=lambda: None) -> dict[str, Any]:
    """Make the change, unless the human said no, the request expired, or this is a dry run."""
    settings = settings or get_settings()
    entry = get_entry(execution.remediation)
    who = decision["operator"]
    if decision["decision"] == "rejected":
        raise StepSkipped(f"rejected by {who}: {decision['why']}", operator=who)
    if decision["decision"] == "expired":
        raise StepSkipped(f"approval request expired at {decision['expires_at']} with no decision: nothing done")
    if execution.dry_run:
        raise StepSkipped(f"dry run, nothing changed; the plan: {execution.plan}")
    handler = get_remediation(entry.id)
    ctx = _context(entry, execution, settings)
    state = execution.state
    if decision["decision"] == "approved":  # time has passed: look again before acting
        state = handler.collect_diagnostics(ctx)
        reason = "resource is gone" if state is None else handler.check_eligibility(ctx, state)
        if reason:
            raise StepSkipped(f"approved by {who}, but no longer needed: {reason}", operator=who)
    on_start()
    return {"result": handler.execute(ctx, state)}


def verify(execution: Execution, acted: dict[str, Any], settings: Settings | None = None,
           automation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read the result back. ``automation``: the finished SSM AutomationExecution, for SSM entries."""
    settings = settings or get_settings()
    entry = get_entry(execution.remediation)
    if automation is not None:
        from matcarv_aiops.ssm.service import ended_ineligible

        if ended_ineligible(automation):
            raise StepSkipped(f"runbook {entry.ssm_document} ended at its EligibilityCheck and changed nothing "
                              f"(automation {automation.get('AutomationExecutionId')}; reason in its diagnostics)")
    outcome = get_remediation(entry.id).validate(_context(entry, execution, settings), execution.state, acted["result"])
    if not outcome.ok:
        raise StepFailed(f"validation failed: {outcome.detail}")
    return {"detail": outcome.detail}


def undo(execution: Execution | None, acted: dict[str, Any] | None, started: bool,
         settings: Settings | None = None) -> dict[str, Any]:
    """Roll back after a failed validation or a failed action, where the entry is reversible."""
    settings = settings or get_settings()
    if execution is None or not started:
        return {"rolled_back": False, "detail": "nothing to roll back: no change was attempted"}
    entry = get_entry(execution.remediation)
    if not entry.rollback:
        return {"rolled_back": False, "detail": f"no rollback: {entry.no_rollback_reason}"}
    detail = get_remediation(entry.id).rollback(_context(entry, execution, settings), execution.state,
                                                acted["result"] if acted else None)
    return {"rolled_back": True, "detail": detail}


@dataclass
class StepRecord:
    """What one task left behind: its return value, or a skip, or a known error; all None = it crashed
    (or never ran because an earlier step ended the run)."""

    done: dict[str, Any] | None = None
    skip: dict[str, Any] | None = None
    error: str | None = None


def compose_audit(remediation_id: str, *, dag_id: str, run_id: str, conf: Any, records: dict[str, StepRecord],
                  rollback: StepRecord, started: bool) -> AuditRecord | None:
    """The one audit record for this run; None for a duplicate run (the first run's record stands).
    ``records``: every step's record, in the DAG's order (``steps_for(entry)``)."""
    entry = get_entry(remediation_id)
    collected = records[STEPS[0]].done
    execution = Execution.model_validate(collected) if collected else None
    operator = AUTOMATED
    outcome, text = Outcome.SUCCESS, None
    for step, record in records.items():
        if record.skip:
            if record.skip.get("duplicate_of"):
                return None
            outcome, text, operator = Outcome.SKIPPED, f"SKIPPED: {record.skip['reason']}", record.skip["operator"]
            break
        if record.error or record.done is None:
            reason = record.error or f"task {step} failed; see its log"
            outcome, text = Outcome.FAILURE, f"FAILED at {step}: {reason}"
            break
        if step == "wait_for_approval":
            operator = record.done["operator"]
    plan = (execution.plan if execution else None) or entry.action
    if outcome is Outcome.SUCCESS:
        text = f"{plan}. Validated: {records['validate'].done['detail']}"
    elif outcome is Outcome.FAILURE:
        if rollback.done:
            text += f". Rollback: {rollback.done['detail']}"
        elif rollback.error:
            text += f". ROLLBACK FAILED, needs a human: {rollback.error}"
        elif started:
            text += ". ROLLBACK DID NOT RUN, needs a human"
        text = f"{plan}: {text}" if started else text
    if execution is not None:
        trigger, target, execution_id = execution.trigger, execution.target.arn, execution.execution_id
    else:
        trigger = json.dumps({"conf": conf, "dag_id": dag_id, "run_id": run_id}, default=str, sort_keys=True)
        target = _best_effort_target(entry, conf)
        execution_id = fallback_execution_id(remediation_id, conf, run_id)
    return AuditRecord(executionId=execution_id, timestamp=iso_utc(), trigger=trigger, runbook=dag_id,
                       targetResource=target, action=text, outcome=outcome, operator=operator,
                       rollbackPlan=entry.rollback_plan)


def _best_effort_target(entry: CatalogueEntry, conf: Any) -> str:
    if isinstance(conf, dict):
        if isinstance(conf.get("target"), str) and conf["target"].startswith("arn:"):
            return conf["target"]
        if isinstance(conf.get("event"), dict):
            target = entry.resolve_target(conf["event"])
            if target:
                return target.arn
    return "unresolved (bad request)"


def finish(remediation_id: str, record: AuditRecord | None, execution: Execution | None, *, started: bool,
           settings: Settings | None = None) -> bool:
    """Write the audit record and metric, remember the action for cooldown, release the lock, and
    alert on failure. Returns whether a new record was written."""
    settings = settings or get_settings()
    if record is None:
        return False
    writer = AuditWriter(settings)
    written = writer.write(record)
    if written:
        writer.metric(remediation_id, record.outcome.value)
    if execution is not None:
        safety = SafetyStore(settings)
        if started:
            safety.record_action(execution.remediation, execution.target.arn, execution.execution_id)
        safety.release_lock(execution.target.arn, execution.execution_id)
    if written and record.outcome is Outcome.FAILURE:
        publish(f"AIOps remediation FAILED: {record.runbook}",
                {"executionId": record.executionId, "targetResource": record.targetResource,
                 "action": record.action, "rollbackPlan": record.rollbackPlan,
                 "diagnostics": execution.diagnostics_uri if execution else "none"}, settings, kind="alert")
    return written
