"""The operators of a ``remediate_<id>`` DAG: one generic ``StepOperator`` runs any row of the step table
(``matcarv_aiops.pipeline.steps.STEPS``); the design card's named pieces add only what differs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from matcarv_aiops.models import AuditRecord, Outcome
from matcarv_aiops.pipeline import StepFailed, StepSkipped, run_in_task, step_by_id
from matcarv_aiops.run_notes import run_note, set_run_note
from matcarv_aiops.settings import get_settings


class StepOperator(BaseOperator):
    """Runs the step named by its ``task_id``: a skip ends the task skipped, a known failure ends it
    failed without retries; both reasons reach the audit record. Anything else is a crash that Airflow
    retries, and the audit reports it if it never succeeds."""

    # Nothing to render: the remediation id is fixed when the DAG is built. A templated field would cost
    # every task of every run an execution API call and a database write to store what it rendered.
    template_fields: Sequence[str] = ()
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


class CollectDiagnosticsOperator(StepOperator):
    """Validates the run's conf, claims the execution (once per event) and writes the target's current
    state as JSON to S3 under the execution id: observe before acting."""

    def execute(self, context):
        execution = super().execute(context)
        self.log.info(
            "execution %s: target %s, diagnostics at %s",
            execution["execution_id"],
            execution["target"]["arn"],
            execution["diagnostics_uri"],
        )
        return execution


class AuditOperator(StepOperator):
    """Always runs last: writes the run's one AutomationAuditLog record and the RemediationExecuted
    metric, whatever happened before (a crashed task included), and the run's note (outcome and reason,
    shown in the run list). Fails the run when the outcome is FAILURE, so the Airflow UI shows it."""

    def execute(self, context):
        item = super().execute(context)
        run = context["dag_run"]
        if item is None:
            self.log.info("duplicate run: the first run's audit record stands; nothing written")
            set_run_note(
                get_settings(), run.dag_id, run.run_id, "DUPLICATE: an earlier run of this event is audited"
            )
            return None
        record = AuditRecord.model_validate({k: v for k, v in item.items() if k != "written"})
        set_run_note(get_settings(), run.dag_id, run.run_id, run_note(record))
        self.log.info(
            "audit %s (%s): %s %s",
            item["executionId"],
            "written" if item["written"] else "already there",
            item["outcome"],
            item["action"],
        )
        if item["outcome"] == Outcome.FAILURE.value:
            raise AirflowFailException(f"remediation FAILED: {item['action']}")
        return item
