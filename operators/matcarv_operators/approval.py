from __future__ import annotations

from matcarv_aiops import pipeline
from matcarv_operators.base import RemediationStepOperator, execution_from


class RequestApprovalOperator(RemediationStepOperator):
    """Where a human must decide: store the pending request (bound to this execution, with an expiry)
    and send it over SNS with the target, action, diagnostics, rollback plan and how to approve."""

    def __init__(self, *, eligibility_task_id: str = "check_eligibility", **kwargs) -> None:
        super().__init__(**kwargs)
        self.eligibility_task_id = eligibility_task_id

    def step(self, context):
        eligibility = context["ti"].xcom_pull(task_ids=self.eligibility_task_id)
        return pipeline.request_approval(execution_from(context), eligibility)
