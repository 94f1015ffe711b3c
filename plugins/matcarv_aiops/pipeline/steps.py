"""The steps of one remediation run, and the table that owns their order: ``STEPS`` at the end.

Each step is a plain function ``step(run, *inputs)``: ``run`` is the run as the step sees it (the
request, settings, the catalogue entry; ``protocol.RunState``), the inputs are the results of the earlier
steps its row ``reads``. The DAG factory makes one task per row, and the inline runner calls the same rows
in the same order, so the order is written down once. The task id, the function and the
``Remediation`` method of a step share one verb: ``execute`` calls ``Remediation.execute``.

A step that ends the run early raises ``StepSkipped``; a known failure raises ``StepFailed``; both carry
the reason that ends up in the audit record. ``audit`` turns what every step recorded into exactly one
audit record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from matcarv_aiops import approvals
from matcarv_aiops.audit import AuditWriter, expired_approval, report_once
from matcarv_aiops.aws import hub_account, hub_client, session_client, target_session
from matcarv_aiops.catalogue import CatalogueEntry
from matcarv_aiops.models import (
    AuditRecord,
    Outcome,
    RemediationRequest,
    Target,
    iso_utc,
    validation_problems,
)
from matcarv_aiops.notifications import Kind, count_failure, notify
from matcarv_aiops.pipeline.protocol import (
    ALL_DONE,
    AUTOMATED,
    NONE_FAILED_MIN_ONE_SUCCESS,
    NOT_NEEDED_KEY,
    ONE_FAILED,
    RunState,
    Step,
    StepFailed,
    StepSkipped,
    main_steps,
)
from matcarv_aiops.remediations import get_remediation
from matcarv_aiops.remediations.base import RemediationContext
from matcarv_aiops.remediations.security_findings import (
    WORKFLOW_NOTIFIED,
    WORKFLOW_RESOLVED,
    FindingRef,
    findings_of,
    update_workflow,
)
from matcarv_aiops.safety import SafetyStore, is_production

log = logging.getLogger(__name__)


class Execution(BaseModel):
    """What collect_diagnostics learned; every later step starts from it."""

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
    # Who started the run (RunState.requested_by): may not decide its approval; in the audit record.
    requested_by: str = AUTOMATED


def _checked_state(execution: Execution) -> dict[str, Any]:
    """The diagnostics state of a target that passed check_eligibility (which ends the run when there is
    none), for the steps after it."""
    if execution.state is None:
        raise StepFailed(f"no diagnostics state for {execution.target.arn}: eligibility was never checked")
    return execution.state


def _context(run: RunState, execution: Execution, operator: str = AUTOMATED) -> RemediationContext:
    """The remediation's context, its session (opened at its first AWS call) named after the execution
    and carrying ``operator`` (the approver who allowed the change, or ``automated``: the platform,
    before any decision or where none is needed) for CloudTrail."""
    return RemediationContext(
        entry=run.entry,
        target=execution.target,
        settings=run.settings,
        execution_id=execution.execution_id,
        open_session=lambda: target_session(
            execution.target,
            run.entry,
            run.settings,
            execution_id=execution.execution_id,
            source_identity=operator,
        ),
    )


def fallback_execution_id(remediation_id: str, conf: Any, run_id: str) -> str:
    """The execution id even when the conf is unusable, so a bad request is still audited once."""
    try:
        return RemediationRequest.model_validate(conf).execution_id(remediation_id, run_id)
    except ValidationError:
        return RemediationRequest(target="arn:aws:iam::000000000000:root").execution_id(
            remediation_id, run_id
        )


def _trigger_json(request: RemediationRequest, dag_id: str, run_id: str) -> str:
    if request.event is not None:
        return json.dumps(request.event.as_event(), sort_keys=True)
    return json.dumps(
        {
            "manual": True,
            "dag_id": dag_id,
            "run_id": run_id,
            "target": request.target,
            "reason": request.reason,
            "dry_run": request.dry_run,
        },
        sort_keys=True,
    )


def collect_diagnostics(run: RunState) -> Execution:
    """Validate the request, claim the execution (once per event), write the target's state to S3."""
    entry, settings = run.entry, run.settings
    try:
        request = RemediationRequest.model_validate(run.conf or {})
    except ValidationError as exc:
        raise StepFailed(f"bad request, nothing done: {validation_problems(exc, 'conf')}") from None
    if request.event is not None:
        target = entry.resolve_target(request.event)
        if target is None:
            raise StepFailed(
                f"bad request, nothing done: the event names no target for {entry.id} "
                f"(looked at {[p for spec in entry.targets for p in spec.paths]})"
            )
    else:
        assert request.target is not None  # RemediationRequest's validator: no event means a target
        try:
            target = Target.from_arn(request.target, default_region=settings.platform.region)
        except ValueError as exc:
            raise StepFailed(f"bad request, nothing done: target: {exc}") from None
        if not target.account:
            # An S3 bucket's ARN names no account. An event says its account; a target given by hand is
            # in the hub's own account (else the remediation role's ARN would name none, and STS refuses).
            target = Target.from_arn(
                request.target,
                default_region=settings.platform.region,
                default_account=hub_account(settings),
            )
    execution_id = request.execution_id(entry.id, run.run_id)
    first_run = SafetyStore(settings).claim_execution(
        execution_id,
        run.run_id,
        run.dag_id,
        details={
            "remediation": entry.id,
            "targetArn": target.arn,
            "trigger": _trigger_json(request, run.dag_id, run.run_id),
            "requestedBy": run.requested_by,
        },
    )
    if first_run is not None:
        raise StepSkipped(
            f"duplicate: execution {execution_id} already belongs to run {first_run}", duplicate_of=first_run
        )

    key = f"diagnostics/{entry.id}/{execution_id}/state.json"
    execution = Execution(
        execution_id=execution_id,
        remediation=entry.id,
        dag_id=run.dag_id,
        run_id=run.run_id,
        target=target,
        dry_run=request.dry_run,
        trigger=_trigger_json(request, run.dag_id, run.run_id),
        diagnostics_uri=f"s3://{settings.platform.diagnostics_bucket}/{key}",
        production=False,
        state=None,
        requested_by=run.requested_by,
    )
    handler = get_remediation(entry.id)
    ctx = _context(run, execution)
    state = handler.collect_diagnostics(ctx)
    execution.state = state
    if state is not None:
        execution.production = is_production(target, state.get("tags", {}), settings)
        if handler.check_eligibility(ctx, state) is None:  # a plan only where there is something to do
            execution.plan = handler.plan(ctx, state)
    hub_client("s3", settings).put_object(
        Bucket=settings.platform.diagnostics_bucket,
        Key=key,
        ContentType="application/json",
        Body=json.dumps(
            {
                "executionId": execution_id,
                "remediation": entry.id,
                "target": target.arn,
                "collectedAt": iso_utc(),
                "exists": state is not None,
                "state": state,
                "trigger": json.loads(execution.trigger),
            },
            default=str,
            indent=2,
        ).encode(),
    )
    return execution


def check_eligibility(run: RunState, execution: Execution) -> dict[str, Any]:
    """Eligibility from live data (gone, exempt, already fixed, cooldown or flapping, locked), then
    whether a human must approve: where none must, the approval steps are not needed (skipped)."""
    entry, settings = run.entry, run.settings
    if execution.state is None:
        raise StepSkipped(f"resource is gone: {execution.target.arn} no longer exists")
    safety = SafetyStore(settings)
    exempt = safety.exemption(execution.target, execution.state.get("tags", {}))
    if exempt:
        raise StepSkipped(exempt)
    reason = get_remediation(entry.id).check_eligibility(_context(run, execution), execution.state)
    if reason:
        raise StepSkipped(_naming_the_last_change(safety, entry.id, execution, reason))
    if not execution.dry_run:
        blocked = safety.cooldown_or_flapping(entry.id, execution.target.arn)
        if blocked:
            reason, escalate = blocked
            if escalate:
                notify(
                    settings,
                    Kind.ESCALATION,
                    f"AIOps escalation: {entry.id} on {execution.target.resource_id}",
                    {
                        "executionId": execution.execution_id,
                        "remediation": entry.id,
                        "targetResource": execution.target.arn,
                        "reason": reason,
                        "diagnostics": execution.diagnostics_uri,
                    },
                )
            raise StepSkipped(reason)
        holder = safety.acquire_lock(execution.target.arn, execution.execution_id)
        if holder:
            raise StepSkipped(f"locked: execution {holder} is remediating this resource now")
    why = approval_needed(entry, execution)
    if why and not execution.dry_run:
        return {"needs_approval": True, "why": why, NOT_NEEDED_KEY: []}
    # No human decides: the approval steps are skipped rather than run (each task costs a burst as much
    # CPU as most steps' work). execute still reads who may act from the approval store itself.
    return {
        "needs_approval": bool(why),
        "why": "dry run: nothing will change, so no approval is needed"
        if why
        else "non-production and reversible: approved automatically",
        NOT_NEEDED_KEY: list(APPROVAL_STEPS),
    }


def _naming_the_last_change(safety: SafetyStore, remediation: str, execution: Execution, reason: str) -> str:
    """A problem that is gone soon after another execution changed the resource is, most often, the same
    problem reported again (by Config, Security Hub, or an alarm firing again): the reason names the
    execution that acted, so the duplicate can be traced to the one change."""
    last = safety.last_action(remediation, execution.target.arn)
    if last is None or last[0] == execution.execution_id:
        return reason
    when = datetime.fromtimestamp(last[1], UTC)
    return f"{reason} (execution {last[0]} acted on this resource at {iso_utc(when)})"


def _securityhub_client(run: RunState, execution: Execution, region: str):
    """Security Hub in the finding's region, with the entry's role in the target's account (the account
    the finding belongs to): the platform's own session of this execution, since a workflow note is not
    the change a human allowed."""
    return session_client(_context(run, execution).session, "securityhub", region)


def finding_workflow(run: RunState, execution: Execution, status: str, note: str) -> str | None:
    """Set the workflow status of the Security Hub findings that started this run (none: None), with a
    note naming the execution. Best effort: Security Hub re-evaluates a fixed control by itself, so a
    failed update is logged and counted (NotificationFailed, channel securityhub), not a failed run.
    Returns what happened, in words."""
    try:
        findings = findings_of(json.loads(execution.trigger))
    except ValueError:
        return None
    if not findings:
        return None
    by_region: dict[str, list[FindingRef]] = {}
    for finding in findings:
        by_region.setdefault(finding.region or execution.target.region, []).append(finding)
    try:
        for region, refs in by_region.items():
            update_workflow(_securityhub_client(run, execution, region), refs, status, note)
    except Exception as exc:  # any failure: logged and counted, the run's outcome stands
        log.warning(
            "could not set Security Hub finding(s) %s of execution %s to %s: %s",
            ", ".join(f.id for f in findings),
            execution.execution_id,
            status,
            exc,
        )
        count_failure(run.settings, "securityhub", status)
        return f"Security Hub finding(s) not set to {status}: {exc}"
    return f"Security Hub finding(s) {', '.join(f.id for f in findings)} set to {status}"


def approval_needed(entry: CatalogueEntry, execution: Execution) -> str | None:
    """Why a human must approve this change (production, or an action that cannot be undone), or None
    when it is approved automatically. Recomputed where it matters, never taken from task state."""
    if execution.production:
        return "the target is production"
    if entry.approval == "always":
        return "this remediation cannot be undone, so it always needs a human"
    if execution.state is not None:
        return get_remediation(entry.id).approval_reason(execution.state)
    return None


def request_approval(run: RunState, execution: Execution, eligibility: dict[str, Any]) -> dict[str, Any]:
    """Where a human must decide: store the pending request and send it over SNS (once, even when
    this step retries). It names the run's requester, who may not decide it, and for a production
    target needs production_approvals distinct approvers."""
    if not eligibility["needs_approval"]:
        return {"requested": False, "why": eligibility["why"]}
    if execution.dry_run:
        return {"requested": False, "why": "dry run: nothing will change, so no approval is needed"}
    requested = approvals.request(
        run.settings,
        execution_id=execution.execution_id,
        remediation=run.entry.id,
        dag_id=execution.dag_id,
        run_id=execution.run_id,
        target=execution.target.arn,
        action=execution.plan or run.entry.action,
        diagnostics_uri=execution.diagnostics_uri,
        rollback_plan=run.entry.rollback_plan,
        why=eligibility["why"],
        requested_by=execution.requested_by,
        approvals_required=run.settings.safety.production_approvals if execution.production else 1,
        account=execution.target.account,
        region=execution.target.region,
    )
    finding_workflow(
        run,
        execution,
        WORKFLOW_NOTIFIED,
        f"AIOps execution {execution.execution_id} waits for a human to approve: "
        f"{execution.plan or run.entry.action} ({eligibility['why']})",
    )
    return requested


def wait_for_approval(
    run: RunState, execution: Execution, requested: dict[str, Any]
) -> dict[str, Any] | None:
    """The human decision on this execution, or None while it is pending; at once when no approval
    was needed."""
    if not requested["requested"]:
        return {"decision": "auto", "operator": AUTOMATED, "reason": requested["why"]}
    try:
        return approvals.decision(run.settings, execution.execution_id)
    except approvals.ApprovalError as exc:
        raise StepFailed(str(exc)) from None


def execute(run: RunState, execution: Execution) -> dict[str, Any]:
    """Make the change on the one target, unless this is a dry run, the human said no, or the request
    expired. Who may act is read from the approval store at this moment, never from the approval step's
    result, which a UI user could edit; an execution that already has its audit record is never acted on
    again (a cleared or re-run task); and an attempt that finds the intent marker of an earlier one
    resumes it instead of acting again."""
    if execution.dry_run:
        raise StepSkipped(f"dry run, nothing changed; the plan: {execution.plan}")
    audited = AuditWriter(run.settings).outcome_of(execution.execution_id)
    if audited:
        raise StepFailed(
            f"execution {execution.execution_id} already has its audit record ({audited}): "
            "a cleared or re-run execute does not act again"
        )
    safety = SafetyStore(run.settings)
    earlier = safety.intent(execution.execution_id)
    if earlier is not None:
        return _resume(run, execution, earlier, may_complete=True)
    who = _authorised_by(run, execution)
    handler = get_remediation(run.entry.id)
    ctx = _context(run, execution, who)
    if who != AUTOMATED:  # time has passed while a human decided: look again before acting
        fresh = handler.collect_diagnostics(ctx)
        reason = "resource is gone" if fresh is None else handler.check_eligibility(ctx, fresh)
        if reason or fresh is None:
            raise StepSkipped(f"approved by {who}, but no longer needed: {reason}", operator=who)
        state = fresh
    else:
        state = _checked_state(execution)
    # Before the first change, durably: a retry (whose XComs Airflow wipes), rollback and audit must know
    # a change may have been made. A concurrent attempt that wrote it first owns the change.
    raced = safety.mark_intent(
        execution.execution_id, execution.run_id, execution.plan or run.entry.action, operator=who
    )
    if raced is not None:
        return _resume(run, execution, raced, may_complete=False)
    run.mark_started()
    result = handler.execute(ctx, state)
    safety.record_intent_result(execution.execution_id, result)
    return {"result": result, "operator": who}


def _resume(
    run: RunState, execution: Execution, marker: dict[str, str], *, may_complete: bool
) -> dict[str, Any]:
    """An earlier attempt of this execution started the change (its intent marker says so) and was
    interrupted: the change is never made again. Its recorded result carries on to validate and
    rollback; where none was recorded the change may or may not have been made, and only an entry whose
    execute makes just what is still missing (``Remediation.resumable``) finishes it; otherwise
    validation decides, from live state, with result None."""
    if marker.get("runId") != execution.run_id:
        raise StepFailed(
            f"execution {execution.execution_id} was started by run {marker.get('runId')}, "
            f"not by this run {execution.run_id}: nothing done"
        )
    who = marker.get("operator", AUTOMATED)
    since = f"resumed after an interrupted attempt that started the change at {marker.get('startedAt')}"
    if "result" in marker:
        return {
            "result": json.loads(marker["result"]),
            "operator": who,
            "resumed": True,
            "note": f"{since}: the change was made at {marker.get('changedAt')} and not made again",
        }
    handler = get_remediation(run.entry.id)
    if may_complete and handler.resumable:
        result = handler.execute(_context(run, execution, who), _checked_state(execution))
        SafetyStore(run.settings).record_intent_result(execution.execution_id, result)
        return {
            "result": result,
            "operator": who,
            "resumed": True,
            "note": f"{since}: its result was not recorded, so only what was still missing was done",
        }
    return {
        "result": None,
        "operator": who,
        "resumed": True,
        "note": f"{since}: its result was not recorded and the change was not made again",
    }


def _authorised_by(run: RunState, execution: Execution) -> str:
    """Who allows this change now: ``automated`` where no human is needed, else the approver of this
    execution's request, which must be APPROVED, for this run, and unexpired at this moment."""
    why = approval_needed(run.entry, execution)
    if why is None:
        return AUTOMATED
    record = approvals.current(run.settings, execution.execution_id)
    nothing = f"{why}, so nothing is done"
    if record is None:
        raise StepFailed(f"execution {execution.execution_id} has no approval request: {nothing}")
    if record.run_id != execution.run_id:
        raise StepFailed(
            f"the approval request of execution {execution.execution_id} belongs to run {record.run_id}, "
            f"not to this run {execution.run_id}: {nothing}"
        )
    who = record.approver or AUTOMATED
    if record.status == approvals.ApprovalStatus.REJECTED:
        raise StepSkipped(f"rejected by {who}: {record.decision_reason or ''}", operator=who)
    if record.status == approvals.ApprovalStatus.EXPIRED:
        raise StepSkipped(f"approval request expired at {record.expires_at} with no decision: nothing done")
    if record.status != approvals.ApprovalStatus.APPROVED:
        raise StepFailed(f"no decision yet on execution {execution.execution_id}: {nothing}")
    if record.expired():
        raise StepSkipped(
            f"approved by {who}, but the approval expired at {record.expires_at} before the change: "
            "nothing done",
            operator=who,
        )
    refusal = approvals.approval_refusal(run.settings, record)
    if refusal:
        raise StepFailed(f"the approval of execution {execution.execution_id} does not count: {refusal}")
    return who


def wait_for_automation(run: RunState, execution: Execution, acted: dict[str, Any]) -> dict[str, Any] | None:
    """For entries run by an SSM Automation document: the finished execution, or None while it runs.
    Read through the target account's session, where the document was started."""
    from matcarv_aiops.ssm.service import automation_client, failure_message
    from matcarv_aiops.ssm.states import FAILURE_STATES, INTERMEDIATE_STATES

    if acted["result"] is None:  # an interrupted attempt started the runbook and its id was lost
        raise StepFailed(
            f"resumed after an interrupted attempt: the id of the {run.entry.ssm_document} execution it "
            "may have started was not recorded, so it cannot be followed; a human must check"
        )
    if "automation_execution_id" not in acted["result"]:
        # execute acted without the runbook (ec2_status_check_failed lets an Auto Scaling group replace
        # its member): nothing to wait for.
        return {"AutomationExecutionStatus": "NotRun", "why": acted["result"].get("without_runbook", "")}
    ctx = _context(run, execution, acted.get("operator", AUTOMATED))
    client = automation_client(
        aws_client_factory=lambda: ctx.client("ssm"), settings=run.settings, region=execution.target.region
    )
    automation_id = acted["result"]["automation_execution_id"]
    found = client.get_automation_execution(AutomationExecutionId=automation_id)["AutomationExecution"]
    status = found["AutomationExecutionStatus"]
    if status in INTERMEDIATE_STATES:
        return None
    if status in FAILURE_STATES:
        raise StepFailed(failure_message(found))
    return json.loads(json.dumps(found, default=str))


def validate(
    run: RunState, execution: Execution, acted: dict[str, Any], automation: dict[str, Any] | None
) -> dict[str, Any]:
    """Read the state or metric back; fail (and so roll back) when it did not improve."""
    entry = run.entry
    if automation is not None:
        from matcarv_aiops.ssm.service import ended_ineligible

        if ended_ineligible(automation):
            raise StepSkipped(
                f"runbook {entry.ssm_document} ended at its EligibilityCheck and changed nothing "
                f"(automation {automation.get('AutomationExecutionId')}; reason in its diagnostics)"
            )
    outcome = get_remediation(entry.id).validate(
        _context(run, execution, acted.get("operator", AUTOMATED)), _checked_state(execution), acted["result"]
    )
    if not outcome.ok:
        resumed = f" ({acted['note']})" if acted.get("resumed") else ""
        raise StepFailed(f"validation failed{resumed}: {outcome.detail}")
    return {"detail": outcome.detail, "note": f"Validated: {outcome.detail}"}


def rollback(run: RunState, execution: Execution | None, acted: dict[str, Any] | None) -> dict[str, Any]:
    """Only when a step failed: undo the change where the entry is reversible. A change started by an
    execute whose result is gone with its XComs (it crashed after the change) is undone with the
    result recorded on the intent marker, or with None where none was recorded."""
    if execution is None or not run.started:
        return {"rolled_back": False, "detail": "nothing to roll back: no change was attempted"}
    entry = run.entry
    if not entry.rollback:
        return {"rolled_back": False, "detail": f"no rollback: {entry.no_rollback_reason}"}
    if acted is not None:
        result, operator = acted["result"], acted.get("operator", AUTOMATED)
    else:
        marker = SafetyStore(run.settings).intent(execution.execution_id) or {}
        result = json.loads(marker["result"]) if "result" in marker else None
        operator = marker.get("operator", AUTOMATED)
    ctx = _context(run, execution, operator)
    detail = get_remediation(entry.id).rollback(ctx, _checked_state(execution), result)
    return {"rolled_back": True, "detail": detail}


def compose_audit(run: RunState, execution: Execution | None) -> AuditRecord | None:
    """The one audit record for this run, from what every step recorded (``execution``: what
    collect_diagnostics recorded, if anything); None for a duplicate run (the first run's record stands).
    The first step that skipped or failed decides the outcome."""
    entry, steps = run.entry, run.steps
    operator, notes = AUTOMATED, []
    outcome, text = Outcome.SUCCESS, ""
    passed_over = run.not_needed
    for step in main_steps(steps):
        if step.task_id in passed_over:
            continue
        record = run.record(step.task_id)
        if record.skip:
            if record.skip.get("duplicate_of"):
                return None
            outcome, text, operator = (
                Outcome.SKIPPED,
                f"SKIPPED: {record.skip['reason']}",
                record.skip["operator"],
            )
            break
        if not record.finished:
            reason = record.error or f"task {step.task_id} failed; see its log"
            outcome, text = Outcome.FAILURE, f"FAILED at {step.task_id}: {reason}"
            break
        if isinstance(record.done, dict):
            operator = record.done.get("operator", operator)
            notes += [record.done["note"]] if "note" in record.done else []
    plan = (execution.plan if execution else None) or entry.action
    if outcome is Outcome.SUCCESS:
        text = ". ".join([plan, *notes])
    elif outcome is Outcome.FAILURE:
        for recovery in (s for s in steps if s.trigger_rule == ONE_FAILED):
            undone = run.record(recovery.task_id)
            if undone.done:
                text += f". Rollback: {undone.done['detail']}"
            elif undone.error:
                text += f". ROLLBACK FAILED, needs a human: {undone.error}"
            elif run.started:
                text += ". ROLLBACK DID NOT RUN, needs a human"
        text = f"{plan}: {text}" if run.started else text
    if execution is not None:
        trigger, target, execution_id = execution.trigger, execution.target.arn, execution.execution_id
    else:
        trigger = json.dumps(
            {"conf": run.conf, "dag_id": run.dag_id, "run_id": run.run_id}, default=str, sort_keys=True
        )
        target = _best_effort_target(entry, run.conf)
        execution_id = fallback_execution_id(entry.id, run.conf, run.run_id)
    return AuditRecord(
        execution_id=execution_id,
        timestamp=iso_utc(),
        trigger=trigger,
        runbook=run.dag_id,
        target_resource=target,
        action=text,
        outcome=outcome,
        operator=operator,
        rollback_plan=entry.rollback_plan,
        requested_by=execution.requested_by if execution is not None else run.requested_by,
    )


def _best_effort_target(entry: CatalogueEntry, conf: Any) -> str:
    if isinstance(conf, dict):
        if isinstance(conf.get("target"), str) and conf["target"].startswith("arn:"):
            return conf["target"]
        if isinstance(conf.get("event"), dict):
            target = entry.resolve_target(conf["event"])
            if target:
                return target.arn
    return "unresolved (bad request)"


class AfterEffectsFailed(RuntimeError):
    """The audit record stands, but some of its after-effects failed: the step fails, so Airflow retries it
    (each after-effect is idempotent per execution), and audit_reconciler finishes what retries could not."""


def audit(run: RunState) -> dict[str, Any] | None:
    """Always, last: write the run's one audit record; then, each once per execution however often this
    step is retried, remember the action for cooldown, release the lock, send the RemediationExecuted
    metric and alert on failure or on an approval that expired. Reads every earlier step's record."""
    settings = run.settings
    execution: Execution | None = run.result(run.steps[0].task_id)
    record = compose_audit(run, execution)
    if record is None:
        return None
    safety, writer = SafetyStore(settings), AuditWriter(settings)
    failed: list[str] = []

    def attempt(what: str, effect: Callable[[], object]) -> None:
        try:
            effect()
        except Exception as exc:  # every after-effect is tried; the step fails after, and is retried
            failed.append(f"{what}: {exc!r}")

    # execute's intent marker, written before any change, tells the reconciler a change may have been
    # made should this record never be written.
    started = run.started
    written = writer.write(record)
    if not written:  # a retry, or the reconciler got there first: the first record stands
        record = writer.read(record.execution_id) or record
    if execution is not None:
        if started:
            attempt(
                "cooldown history",
                lambda: safety.record_action(
                    execution.remediation, execution.target.arn, execution.execution_id
                ),
            )
        attempt("lock release", lambda: safety.release_lock(execution.target.arn, execution.execution_id))

    def report() -> None:
        expired = expired_approval(settings, record) if execution is not None else None
        report_once(
            settings,
            record,
            remediation=run.entry.id,
            diagnostics_uri=execution.diagnostics_uri if execution else "none",
            expired=expired,
        )

    attempt("metric and alert", report)
    if execution is not None and record.outcome is not Outcome.SKIPPED:
        # A validated fix resolves the findings that reported the problem; a failure leaves them to a human.
        status = WORKFLOW_RESOLVED if record.outcome is Outcome.SUCCESS else WORKFLOW_NOTIFIED
        finding_workflow(
            run,
            execution,
            status,
            f"AIOps execution {record.execution_id} ({record.outcome.value}): {record.action}",
        )
    if failed:
        raise AfterEffectsFailed(
            f"the audit record of {record.execution_id} stands ({record.outcome.value}), but: "
            + "; ".join(failed)
        )
    return {**record.to_item(), "written": written}


def _runs_runbook(entry: CatalogueEntry) -> bool:
    return bool(entry.ssm_document)


# The steps a run needs only when a human must decide; check_eligibility skips them otherwise.
APPROVAL_STEPS = ("request_approval", "wait_for_approval")

# The step table: the run's protocol, in order. The DAG factory makes one task per row (a sensor where
# the step waits), the inline runner calls the rows in this order, and the audit reads them in it.
STEPS: tuple[Step, ...] = (
    Step("collect_diagnostics", collect_diagnostics, returns=Execution),
    Step("check_eligibility", check_eligibility, reads=("collect_diagnostics",), may_skip=APPROVAL_STEPS),
    Step("request_approval", request_approval, reads=("collect_diagnostics", "check_eligibility")),
    Step(
        "wait_for_approval", wait_for_approval, reads=("collect_diagnostics", "request_approval"), waits=True
    ),
    # execute reads the decision from the approval store itself, not from wait_for_approval's result or
    # from whether the approval steps ran. It runs when no step before it failed and check_eligibility or
    # wait_for_approval succeeded: a skip at or before check_eligibility (duplicate, gone, exempt) skips
    # both, so execute is skipped too.
    Step(
        "execute",
        execute,
        reads=("collect_diagnostics",),
        changes=True,
        after=("check_eligibility",),
        trigger_rule=NONE_FAILED_MIN_ONE_SUCCESS,
    ),
    Step(
        "wait_for_automation",
        wait_for_automation,
        reads=("collect_diagnostics", "execute"),
        waits=True,
        only_if=_runs_runbook,
    ),
    Step("validate", validate, reads=("collect_diagnostics", "execute", "wait_for_automation")),
    Step("rollback", rollback, reads=("collect_diagnostics", "execute"), trigger_rule=ONE_FAILED),
    Step("audit", audit, trigger_rule=ALL_DONE),
)


@cache
def step_by_id(task_id: str) -> Step:
    for step in STEPS:
        if step.task_id == task_id:
            return step
    raise KeyError(f"no step {task_id!r} in the step table ({', '.join(s.task_id for s in STEPS)})")


def steps_for(entry: CatalogueEntry) -> tuple[Step, ...]:
    """The steps of this entry's run, in order."""
    return tuple(step for step in STEPS if step.applies_to(entry))
