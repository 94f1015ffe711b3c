from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

from matcarv_aiops.models import Outcome
from matcarv_operators.step import StepOperator


class AuditOperator(StepOperator):
    """Always runs last: writes the run's one AutomationAuditLog record and the RemediationExecuted
    metric, whatever happened before (a crashed task included). Fails the run when the outcome is
    FAILURE, so the Airflow UI shows it."""

    def execute(self, context):
        item = super().execute(context)
        if item is None:
            self.log.info("duplicate run: the first run's audit record stands; nothing written")
            return None
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
