"""The generic operator: one task of a ``remediate_<id>`` DAG runs one row of the step table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from matcarv_aiops.pipeline import StepFailed, StepSkipped, run_in_task, step_by_id


class StepOperator(BaseOperator):
    """Runs the step named by its ``task_id``: a skip ends the task skipped, a known failure ends it
    failed without retries; both reasons reach the audit record. Anything else is a crash that Airflow
    retries, and the audit reports it if it never succeeds."""

    template_fields: Sequence[str] = ("remediation_id",)
    ui_color = "#e8f4fa"

    def __init__(self, *, remediation_id: str, **kwargs) -> None:
        kwargs.setdefault("trigger_rule", step_by_id(kwargs["task_id"]).trigger_rule)
        super().__init__(**kwargs)
        self.remediation_id = remediation_id

    def execute(self, context) -> Any:
        try:
            return run_in_task(self.task_id, self.remediation_id, context)
        except StepSkipped as skip:
            raise AirflowSkipException(skip.reason) from None
        except StepFailed as failure:
            raise AirflowFailException(failure.reason) from None
