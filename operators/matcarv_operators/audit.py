from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk import TriggerRule
from airflow.sdk.exceptions import AirflowFailException

from matcarv_aiops import pipeline
from matcarv_aiops.models import Outcome
from matcarv_operators.base import ERROR_KEY, SKIP_KEY, STARTED_KEY, RemediationStepOperator


class AuditOperator(RemediationStepOperator):
    """Always runs last: writes the run's one AutomationAuditLog record and the RemediationExecuted
    metric, whatever happened before (including a crashed task). Fails the run when the outcome is
    FAILURE, so the Airflow UI shows it."""

    def __init__(self, *, step_task_ids: Sequence[str], rollback_task_id: str = "rollback",
                 execute_task_id: str = "execute", **kwargs) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.step_task_ids = tuple(step_task_ids)
        self.rollback_task_id = rollback_task_id
        self.execute_task_id = execute_task_id

    def _record(self, ti, task_id: str) -> pipeline.StepRecord:
        return pipeline.StepRecord(done=ti.xcom_pull(task_ids=task_id), skip=ti.xcom_pull(task_ids=task_id, key=SKIP_KEY),
                                   error=ti.xcom_pull(task_ids=task_id, key=ERROR_KEY))

    def execute(self, context):  # not run_step: the audit must never be skipped by a step's exception
        ti, dag_run = context["ti"], context["dag_run"]
        records = {task_id: self._record(ti, task_id) for task_id in self.step_task_ids}
        started = bool(ti.xcom_pull(task_ids=self.execute_task_id, key=STARTED_KEY))
        record = pipeline.compose_audit(self.remediation_id, dag_id=dag_run.dag_id, run_id=dag_run.run_id,
                                        conf=dag_run.conf, records=records,
                                        rollback=self._record(ti, self.rollback_task_id), started=started)
        collected = records[pipeline.STEPS[0]].done
        execution = pipeline.Execution.model_validate(collected) if collected else None
        if record is None:
            self.log.info("duplicate run: the first run's audit record stands; nothing written")
            return None
        written = pipeline.finish(self.remediation_id, record, execution, started=started)
        self.log.info("audit %s (%s): %s %s", record.executionId, "written" if written else "already there",
                      record.outcome.value, record.action)
        if record.outcome is Outcome.FAILURE:
            raise AirflowFailException(f"remediation FAILED: {record.action}")
        return record.to_item()
