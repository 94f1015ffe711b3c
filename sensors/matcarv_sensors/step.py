"""The generic sensor: a waiting row of the step table (its function answers None for "not yet")."""

from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from matcarv_aiops.pipeline import StepFailed, StepSkipped, run_in_task, step_by_id


class StepSensor(BaseSensorOperator):
    """Pokes the step named by its ``task_id`` in reschedule mode (no worker slot is held while it
    waits) until the step gives a result, which becomes the task's XCom."""

    template_fields: Sequence[str] = ("remediation_id",)
    ui_color = "#fff4d6"

    def __init__(self, *, remediation_id: str, **kwargs) -> None:
        kwargs.setdefault("trigger_rule", step_by_id(kwargs["task_id"]).trigger_rule)
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.remediation_id = remediation_id

    def poke(self, context) -> PokeReturnValue | bool:
        try:
            result = run_in_task(self.task_id, self.remediation_id, context)
        except StepSkipped as skip:
            raise AirflowSkipException(skip.reason) from None
        except StepFailed as failure:
            raise AirflowFailException(failure.reason) from None
        if result is None:
            self.log.info("%s: not yet", self.task_id)
            return False
        return PokeReturnValue(is_done=True, xcom_value=result)
