"""The Airflow side of a run, without importing Airflow: a task's view of its run, read from XCom."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matcarv_aiops.pipeline.protocol import (
    ERROR_KEY,
    SKIP_KEY,
    STARTED_KEY,
    RunState,
    StepFailed,
    StepRecord,
    StepSkipped,
    call,
    requester,
)
from matcarv_aiops.pipeline.steps import step_by_id, steps_for


@dataclass
class XComRun(RunState):
    """The run as an Airflow task sees it: earlier results from XCom. Duck-typed over the task context
    (``ti``, ``dag_run``), so the core needs no Airflow import."""

    remediation_id: str
    context: Any = field(repr=False)
    # Each step's record, read once per task: every pull is an execution API call, and no record changes
    # while this task runs (the steps run one after another; this step's own is written as it ends).
    _records: dict[str, StepRecord] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        dag_run = self.context["dag_run"]
        self.dag_id, self.run_id, self.conf = dag_run.dag_id, dag_run.run_id, dag_run.conf
        self.requested_by = requester(getattr(dag_run, "triggering_user_name", None), self.settings)
        self._ti = self.context["ti"]
        self.steps = steps_for(self.entry)

    def record(self, task_id: str) -> StepRecord:
        if self.step(task_id) is None:
            return StepRecord()
        if task_id in self._records:
            return self._records[task_id]
        # One try of a step leaves a result, a skip or an error, never two (Airflow wipes a task's XComs
        # when it runs again), so a step that left a result, as most have, costs one read, not three.
        pull = self._ti.xcom_pull
        record = StepRecord(done=pull(task_ids=task_id))
        if record.done is None:
            record.skip = pull(task_ids=task_id, key=SKIP_KEY)
            if record.skip is None:
                record.error = pull(task_ids=task_id, key=ERROR_KEY)
        self._records[task_id] = record
        return record

    def mark_started(self) -> None:
        # Rollback and audit look for the flag only on the steps that change (``Step.changes``).
        step = self.step(self._ti.task_id)
        if step is None or not step.changes:
            raise RuntimeError(
                f"task {self._ti.task_id!r} marked the change started, but its row of the step table does "
                "not say it changes (Step.changes): rollback and audit would never see the flag"
            )
        self._ti.xcom_push(key=STARTED_KEY, value=True)

    @property
    def started_here(self) -> bool:
        return any(self._ti.xcom_pull(task_ids=s.task_id, key=STARTED_KEY) for s in self.steps if s.changes)


def run_in_task(task_id: str, remediation_id: str, context: Any) -> Any:
    """Run step ``task_id`` inside its Airflow task. A skip or a known failure is recorded as XCom for
    the audit step, then re-raised for the operator to turn into Airflow's skipped or failed state."""
    run = XComRun(remediation_id, context)
    try:
        return call(step_by_id(task_id), run)
    except StepSkipped as skip:
        context["ti"].xcom_push(key=SKIP_KEY, value=skip.record())
        raise
    except StepFailed as failure:
        context["ti"].xcom_push(key=ERROR_KEY, value=failure.reason)
        raise
