"""The inline runner: a remediation run without Airflow, the step table's rows in order, in this process.

For tests, benchmarks and scripts. It applies the rows' trigger rules as Airflow does on the DAG's
chain: after a skip the normal steps are skipped, after a failure they are not run and the recovery
steps (``one_failed``) are; ``all_done`` steps always run; a step an earlier one named as not needed is
passed over, as Airflow skips it. A step that raises anything else is a crash, as a task that dies would
be: it leaves no record, and the audit reports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from matcarv_aiops.models import AuditRecord
from matcarv_aiops.pipeline.protocol import (
    ALL_DONE,
    AUTOMATED,
    MAIN_RULES,
    ONE_FAILED,
    RunState,
    Step,
    StepFailed,
    StepRecord,
    StepSkipped,
    call,
)
from matcarv_aiops.pipeline.steps import steps_for


class StillWaiting(RuntimeError):
    """A waiting step did not finish within the inline runner's wait timeout."""


@dataclass
class InlineRun(RunState):
    remediation_id: str
    conf: Any
    run_id: str = "manual__inline"
    dag_id: str = ""
    # Who started the run (an Airflow run's triggering user): "automated", or a user's name.
    requested_by: str = AUTOMATED
    records: dict[str, StepRecord] = field(default_factory=dict)
    crashed: dict[str, str] = field(default_factory=dict)
    _started: bool = False

    def __post_init__(self) -> None:
        self.dag_id = self.dag_id or self.entry.dag_id
        self.steps = steps_for(self.entry)

    def record(self, task_id: str) -> StepRecord:
        return self.records.get(task_id) or StepRecord()

    def mark_started(self) -> None:
        self._started = True

    @property
    def started_here(self) -> bool:
        return self._started

    @property
    def audit(self) -> AuditRecord | None:
        """The run's audit record, as the audit step wrote it (None for a duplicate run)."""
        item = self.record(self.steps[-1].task_id).done
        return AuditRecord.model_validate({k: v for k, v in item.items() if k != "written"}) if item else None

    @property
    def outcome(self) -> str | None:
        return self.audit.outcome.value if self.audit else None


def _should_run(step: Step, chain: str) -> bool:
    if step.trigger_rule in MAIN_RULES:
        return chain == "ok"
    if step.trigger_rule == ONE_FAILED:
        return chain == "failed"
    if step.trigger_rule == ALL_DONE:
        return True
    raise ValueError(
        f"step {step.task_id}: trigger rule {step.trigger_rule!r} is not one the inline runner knows"
    )


def run_inline(
    remediation_id: str,
    conf: Any,
    *,
    run_id: str = "manual__inline",
    dag_id: str = "",
    requested_by: str = AUTOMATED,
    on_wait: Callable[[Step, InlineRun], None] | None = None,
    poll_seconds: float = 0.2,
    wait_timeout: float = 120.0,
) -> InlineRun:
    """Run every step of ``remediation_id``'s run on ``conf`` (the DAG run conf), as started by
    ``requested_by`` ("automated": the ingress; a user's name: triggered by hand).

    ``on_wait(step, run)`` is called once when a waiting step first answers "not yet" (a test approves
    there, as a human would); the step is then asked again every ``poll_seconds`` until
    ``wait_timeout`` passes, when it counts as crashed (as a sensor that times out fails).
    """
    run = InlineRun(remediation_id, conf, run_id=run_id, dag_id=dag_id, requested_by=requested_by)
    return _run_steps(run, run.steps, "ok", on_wait, poll_seconds, wait_timeout)


def rerun_inline(
    earlier: InlineRun,
    from_task: str,
    *,
    on_wait: Callable[[Step, InlineRun], None] | None = None,
    poll_seconds: float = 0.2,
    wait_timeout: float = 120.0,
) -> InlineRun:
    """Run ``from_task`` and every step after it again, as Airflow does when that task retries or is
    cleared with its downstream tasks: a fresh run state for the same run (same run id and conf) that
    keeps what the steps before ``from_task`` recorded and nothing of the re-run ones (Airflow wipes
    their XComs). The steps before it decide, as on the DAG's chain, whether the normal steps run."""
    run = InlineRun(
        earlier.remediation_id,
        earlier.conf,
        run_id=earlier.run_id,
        dag_id=earlier.dag_id,
        requested_by=earlier.requested_by,
    )
    task_ids = [step.task_id for step in run.steps]
    if from_task not in task_ids:
        raise ValueError(f"no step {from_task!r} in the run of {run.remediation_id} ({', '.join(task_ids)})")
    start = task_ids.index(from_task)
    chain = "ok"
    for step in run.steps[:start]:
        kept = earlier.record(step.task_id)
        run.records[step.task_id] = StepRecord(done=kept.done, skip=kept.skip, error=kept.error)
        needed = step.task_id not in run.not_needed
        if step.trigger_rule in MAIN_RULES and chain == "ok" and needed and not kept.finished:
            chain = "skipped" if kept.skip else "failed"  # the first normal step that did not finish
    return _run_steps(run, run.steps[start:], chain, on_wait, poll_seconds, wait_timeout)


def _run_steps(
    run: InlineRun,
    steps: tuple[Step, ...],
    chain: str,
    on_wait: Callable[[Step, InlineRun], None] | None,
    poll_seconds: float,
    wait_timeout: float,
) -> InlineRun:
    for step in steps:
        if step.task_id in run.not_needed or not _should_run(step, chain):
            continue
        record = run.records.setdefault(step.task_id, StepRecord())
        try:
            record.done = _call_until_done(step, run, on_wait, poll_seconds, wait_timeout)
            continue
        except StepSkipped as skip:
            record.skip = skip.record()
            chain = "skipped" if chain == "ok" else chain
        except StepFailed as failure:
            record.error = failure.reason
            chain = "failed"
        except Exception as exc:  # a crash: the audit step reports it as FAILURE
            run.crashed[step.task_id] = repr(exc)
            chain = "failed"
    return run


def _call_until_done(
    step: Step,
    run: InlineRun,
    on_wait: Callable[[Step, InlineRun], None] | None,
    poll_seconds: float,
    wait_timeout: float,
) -> Any:
    result = call(step, run)
    if not step.waits or result is not None:
        return result
    if on_wait is not None:
        on_wait(step, run)
    deadline = time.monotonic() + wait_timeout
    while result is None:
        if time.monotonic() > deadline:
            raise StillWaiting(f"{step.task_id} still waiting after {wait_timeout:g} s")
        time.sleep(poll_seconds)
        result = call(step, run)
    return result
