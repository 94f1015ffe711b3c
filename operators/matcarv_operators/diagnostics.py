from __future__ import annotations

from matcarv_aiops import pipeline
from matcarv_operators.base import RemediationStepOperator


class CollectDiagnosticsOperator(RemediationStepOperator):
    """Validate the run's conf, claim the execution (once per event) and write the target's current
    state as JSON to S3 under the execution id. Observe before acting."""

    def step(self, context):
        dag_run = context["dag_run"]
        execution = pipeline.collect(self.remediation_id, dag_run.conf, dag_id=dag_run.dag_id,
                                     run_id=dag_run.run_id)
        self.log.info("execution %s: target %s, diagnostics at %s", execution.execution_id,
                      execution.target.arn, execution.diagnostics_uri)
        return execution.model_dump(mode="json")
