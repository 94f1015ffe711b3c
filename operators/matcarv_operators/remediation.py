"""Execute, validate, roll back."""

from __future__ import annotations

from airflow.sdk import TriggerRule

from matcarv_aiops import pipeline
from matcarv_operators.base import STARTED_KEY, RemediationStepOperator, execution_from


class ExecuteRemediationOperator(RemediationStepOperator):
    """Make the change on the one target, unless rejected, expired or a dry run."""

    def __init__(self, *, approval_task_id: str = "wait_for_approval", **kwargs) -> None:
        super().__init__(**kwargs)
        self.approval_task_id = approval_task_id

    def step(self, context):
        ti = context["ti"]
        decision = ti.xcom_pull(task_ids=self.approval_task_id)
        # Marked before the first change, so that rollback knows a change may have been made.
        return pipeline.act(execution_from(context), decision,
                            on_start=lambda: ti.xcom_push(key=STARTED_KEY, value=True))


class ValidateRemediationOperator(RemediationStepOperator):
    """Read the state or metric back; fail (and so trigger the rollback) when it did not improve."""

    def __init__(self, *, execute_task_id: str = "execute", automation_task_id: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.execute_task_id = execute_task_id
        self.automation_task_id = automation_task_id

    def step(self, context):
        ti = context["ti"]
        automation = ti.xcom_pull(task_ids=self.automation_task_id) if self.automation_task_id else None
        return pipeline.verify(execution_from(context), ti.xcom_pull(task_ids=self.execute_task_id),
                               automation=automation)


class RollbackOperator(RemediationStepOperator):
    """Runs only when a step failed; undoes the change where the entry is reversible."""

    def __init__(self, *, execute_task_id: str = "execute", **kwargs) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ONE_FAILED)
        super().__init__(**kwargs)
        self.execute_task_id = execute_task_id

    def step(self, context):
        ti = context["ti"]
        collected = ti.xcom_pull(task_ids="collect_diagnostics")
        execution = execution_from(context) if collected else None
        started = bool(ti.xcom_pull(task_ids=self.execute_task_id, key=STARTED_KEY))
        result = pipeline.undo(execution, ti.xcom_pull(task_ids=self.execute_task_id), started)
        self.log.info("rollback: %s", result["detail"])
        return result
