"""The operators of a ``remediate_<id>`` DAG: one generic ``StepOperator`` runs any row of the step table
(``matcarv_aiops.pipeline.steps.STEPS``); the design card's named pieces add only what differs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, BaseXCom, SkipMixin
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from matcarv_aiops.models import AuditRecord, Outcome
from matcarv_aiops.pipeline import StepFailed, StepSkipped, not_needed, run_in_task, step_by_id
from matcarv_aiops.run_notes import run_note, set_run_note
from matcarv_aiops.settings import get_settings


class StepOperator(BaseOperator, SkipMixin):
    """Runs the step named by its ``task_id``: a skip ends the task skipped, a known failure ends it
    failed without retries; both reasons reach the audit record. Anything else is a crash that Airflow
    retries, and the audit reports it if it never succeeds. Later steps the result names as not needed
    by this run (``Step.may_skip``) are skipped without being started."""

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
            result = run_in_task(self.task_id, self.remediation_id, context)
        except StepSkipped as skip:
            raise AirflowSkipException(skip.reason) from None
        except StepFailed as failure:
            raise AirflowFailException(failure.reason) from None
        skipped = [t for t in not_needed(step_by_id(self.task_id), result) if self.dag.has_task(t)]
        if skipped:
            # Airflow skips the steps this run does not need, without starting them, and this task ends
            # successful; it pushes no return value when a task skips others, so the result goes first.
            context["ti"].xcom_push(key=BaseXCom.XCOM_RETURN_KEY, value=result)
            self.log.info("not needed by this run, skipped: %s", ", ".join(skipped))
            self.skip(context["ti"], [self.dag.get_task(t) for t in skipped])
        return result


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
