from __future__ import annotations

from matcarv_operators.step import StepOperator


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
