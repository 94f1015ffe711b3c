"""The small base every remediation step shares: how a step's result, skip or known failure becomes
XCom that the audit step reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from matcarv_aiops.pipeline import Execution, StepFailed, StepSkipped

SKIP_KEY, ERROR_KEY, STARTED_KEY = "skip", "error", "started"
COLLECT_TASK = "collect_diagnostics"


def run_step(context, step: Callable[[], Any]) -> Any:
    """Run a pipeline step; record a skip or a known failure as XCom before ending the task."""
    ti = context["ti"]
    try:
        return step()
    except StepSkipped as skip:
        ti.xcom_push(key=SKIP_KEY, value=skip.record())
        raise AirflowSkipException(skip.reason) from None
    except StepFailed as failure:
        ti.xcom_push(key=ERROR_KEY, value=failure.reason)
        raise AirflowFailException(failure.reason) from None


def execution_from(context) -> Execution:
    data = context["ti"].xcom_pull(task_ids=COLLECT_TASK)
    if data is None:
        raise AirflowFailException(f"no execution recorded by {COLLECT_TASK}")
    return Execution.model_validate(data)


class RemediationStepOperator(BaseOperator):
    """Base for the steps of a ``remediate_<id>`` DAG. Subclasses implement ``step(context)``."""

    template_fields: Sequence[str] = ("remediation_id",)
    ui_color = "#e8f4fa"

    def __init__(self, *, remediation_id: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.remediation_id = remediation_id

    def step(self, context) -> Any:
        raise NotImplementedError

    def execute(self, context) -> Any:
        return run_step(context, lambda: self.step(context))
