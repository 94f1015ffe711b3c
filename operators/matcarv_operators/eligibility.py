from __future__ import annotations

from matcarv_aiops import pipeline
from matcarv_operators.base import RemediationStepOperator, execution_from


class EligibilityCheckOperator(RemediationStepOperator):
    """Re-check the condition from live data; end the run as SKIPPED, with the reason, when the target
    is gone, already fixed, exempt, in cooldown, flapping or locked. Decides whether a human approves."""

    def step(self, context):
        return pipeline.check(execution_from(context))
