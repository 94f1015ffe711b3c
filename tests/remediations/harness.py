"""Runs a remediation's pipeline steps in the DAG's order, without Airflow, for fast per-entry tests.

The DAG's operators are thin shells over the same functions (see operators/matcarv_operators); the DAG
wiring itself is tested with dag.test() in tests/dags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from matcarv_aiops import pipeline
from matcarv_aiops.models import AuditRecord
from matcarv_aiops.catalogue import get_entry
from matcarv_aiops.pipeline import AUTOMATION_STEP, StepFailed, StepRecord, StepSkipped, steps_for


@dataclass
class PipelineRun:
    records: dict[str, StepRecord]
    rollback: StepRecord
    started: bool
    audit: AuditRecord | None
    crashed: dict[str, str] = field(default_factory=dict)

    @property
    def outcome(self) -> str | None:
        return self.audit.outcome.value if self.audit else None


def run_pipeline(remediation_id: str, conf: dict[str, Any], *, run_id: str = "manual__test",
                 decide: Callable[[str], None] | None = None) -> PipelineRun:
    """``decide(execution_id)`` is called once if the run waits for approval (e.g. to approve it)."""
    dag_id = f"remediate_{remediation_id}"
    entry = get_entry(remediation_id)
    records = {name: StepRecord() for name in steps_for(entry)}
    rollback = StepRecord()
    crashed: dict[str, str] = {}
    started = False

    def step(name: str, fn: Callable[[], Any]) -> bool:
        try:
            records[name].done = fn()
            return True
        except StepSkipped as skip:
            records[name].skip = skip.record()
        except StepFailed as failure:
            records[name].error = failure.reason
        except Exception as exc:  # a crash: the DAG's audit step reports it as FAILURE
            crashed[name] = repr(exc)
        return False

    def mark_started():
        nonlocal started
        started = True

    execution = None
    if step("collect_diagnostics", lambda: pipeline.collect(remediation_id, conf, dag_id=dag_id,
                                                              run_id=run_id).model_dump(mode="json")):
        execution = pipeline.Execution.model_validate(records["collect_diagnostics"].done)
    ok = execution is not None and step("check_eligibility", lambda: pipeline.check(execution))
    ok = ok and step("request_approval",
                     lambda: pipeline.request_approval(execution, records["check_eligibility"].done))

    def wait():
        status = pipeline.approval_status(execution, records["request_approval"].done)
        if status is None and decide is not None:
            decide(execution.execution_id)
            status = pipeline.approval_status(execution, records["request_approval"].done)
        if status is None:
            raise RuntimeError("still waiting for approval")
        return status

    ok = ok and step("wait_for_approval", wait)
    ok = ok and step("execute", lambda: pipeline.act(execution, records["wait_for_approval"].done,
                                                       on_start=mark_started))
    automation = None
    if entry.ssm_document:
        def wait_for_automation():
            from matcarv_aiops.ssm.service import automation_client, failure_message
            from matcarv_aiops.ssm.states import SUCCESS_STATES

            automation_id = records["execute"].done["result"]["automation_execution_id"]
            found = automation_client().get_automation_execution(AutomationExecutionId=automation_id)
            found = found["AutomationExecution"]
            if found["AutomationExecutionStatus"] not in SUCCESS_STATES:
                raise StepFailed(failure_message(found))
            return found

        ok = ok and step(AUTOMATION_STEP, wait_for_automation)
        automation = records[AUTOMATION_STEP].done
    ok = ok and step("validate", lambda: pipeline.verify(execution, records["execute"].done, automation=automation))
    failed = any(r.error for r in records.values()) or bool(crashed)
    if failed:
        try:
            rollback.done = pipeline.undo(execution, records["execute"].done, started)
        except StepFailed as failure:
            rollback.error = failure.reason
        except Exception as exc:
            rollback.error = repr(exc)
    audit = pipeline.compose_audit(remediation_id, dag_id=dag_id, run_id=run_id, conf=conf, records=records,
                                   rollback=rollback, started=started)
    pipeline.finish(remediation_id, audit, execution, started=started)
    return PipelineRun(records=records, rollback=rollback, started=started, audit=audit, crashed=crashed)
