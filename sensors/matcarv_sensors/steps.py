"""The waiting steps of a ``remediate_<id>`` DAG: the generic ``StepSensor`` pokes a row of the step table
whose function answers None for "not yet"; the approval wait and the SSM Automation wait add their
intervals and timeouts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from matcarv_aiops.pipeline import StepFailed, StepSkipped, run_in_task, step_by_id
from matcarv_aiops.settings import get_settings


class StepSensor(BaseSensorOperator):
    """Pokes the step named by its ``task_id`` in reschedule mode (no worker slot is held while it
    waits) until the step gives a result, which becomes the task's XCom."""

    # Nothing to render: the remediation id is fixed when the DAG is built. A templated field would cost
    # every task of every run an execution API call and a database write to store what it rendered.
    template_fields: Sequence[str] = ()
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


class ApprovalSensor(StepSensor):
    """Waits for the human decision on this execution's approval request. Ends on approve, on reject,
    or when the request expires; returns at once when no approval was needed."""

    def __init__(self, **kwargs) -> None:
        settings = get_settings()
        kwargs.setdefault("poke_interval", settings.safety.approval_poke_seconds)
        # The request expires first (and the run is audited SKIPPED); this only guards a stuck sensor.
        kwargs.setdefault("timeout", timedelta(minutes=settings.safety.approval_timeout_minutes + 15))
        super().__init__(**kwargs)


class AutomationExecutionSensor(StepSensor):
    """Waits for the SSM Automation execution that ``execute`` started, through the target account's
    session. A failure state fails the task with the failed step's message, which the audit record
    quotes; success hands the execution to ``validate``."""

    ui_color = "#f3e8fa"

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("poke_interval", get_settings().ssm.ssm_poll_seconds)
        kwargs.setdefault("timeout", 60 * 60)
        super().__init__(**kwargs)
