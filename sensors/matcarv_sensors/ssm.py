"""Wait for an SSM Automation execution, in reschedule mode (no worker slot is held while it runs).

States follow the SSM Automation API's AutomationExecutionStatus and are declared as class constants, as
the Amazon provider's SSM sensor does. A failure state fails the task with the failed step's message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from matcarv_aiops.ssm import states
from matcarv_operators.ssm import ssm_client


def _json_safe(execution: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(execution, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


class AutomationExecutionSensor(BaseSensorOperator):
    """Pokes GetAutomationExecution until ``automation_execution_id`` ends.

    Success returns the AutomationExecution (JSON-safe) as XCom; a failure state raises
    AirflowFailException (no retry: the execution has ended) with the failed step's message.
    """

    INTERMEDIATE_STATES: tuple[str, ...] = states.INTERMEDIATE_STATES
    FAILURE_STATES: tuple[str, ...] = states.FAILURE_STATES
    SUCCESS_STATES: tuple[str, ...] = states.SUCCESS_STATES

    template_fields: Sequence[str] = ("automation_execution_id",)
    ui_color = "#f3e8fa"

    def __init__(self, *, automation_execution_id: str, backend: str | None = None,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 30)
        kwargs.setdefault("timeout", 60 * 60)
        super().__init__(**kwargs)
        self.automation_execution_id = automation_execution_id
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def poke(self, context) -> PokeReturnValue | bool:
        from matcarv_aiops.ssm.service import failure_message

        client = ssm_client(self.backend, self.aws_conn_id, self.region_name)
        execution = client.get_automation_execution(
            AutomationExecutionId=self.automation_execution_id)["AutomationExecution"]
        status = execution["AutomationExecutionStatus"]
        if status in self.FAILURE_STATES:
            raise AirflowFailException(failure_message(execution))
        if status in self.SUCCESS_STATES:
            self.log.info("SSM automation %s: %s", self.automation_execution_id, status)
            return PokeReturnValue(is_done=True, xcom_value=_json_safe(execution))
        if status in self.INTERMEDIATE_STATES:
            self.log.info("SSM automation %s: %s (step %s)", self.automation_execution_id, status,
                          execution.get("CurrentStepName", "-"))
            return False
        raise AirflowException(f"SSM automation {self.automation_execution_id}: unknown status {status!r}")


class RemediationAutomationSensor(AutomationExecutionSensor):
    """The remediation DAG's wait for its runbook: records the failure message as XCom, so the audit
    record says which step of the document failed and why."""

    def poke(self, context) -> PokeReturnValue | bool:
        try:
            return super().poke(context)
        except AirflowFailException as failure:
            context["ti"].xcom_push(key="error", value=str(failure))
            raise
