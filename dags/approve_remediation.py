"""# approve_remediation

Approve or reject one waiting remediation. Trigger this DAG by hand from the Airflow UI and fill in the
form: the **execution id** from the approval request (SNS message, or the waiting run's
`request_approval` task), **approve** or **reject**, and a **reason**.

The decision is recorded with the identity of the user who triggered this run. It counts only for the
execution it names, and only while that request is pending and unexpired; otherwise this run fails and
says why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from matcarv_aiops.approvals import APPROVAL_DAG_ID

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


@dag(
    dag_id=APPROVAL_DAG_ID,
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["aiops", "approval"],
    default_args={"owner": "aiops", "retries": 2, "retry_delay": timedelta(seconds=10)},
    params={
        "execution_id": Param(
            "",
            type="string",
            pattern=UUID_PATTERN,
            title="Execution id",
            description="From the approval request",
        ),
        "decision": Param("approve", type="string", enum=["approve", "reject"], title="Decision"),
        "reason": Param("", type="string", minLength=3, maxLength=1000, title="Reason"),
    },
)
def approve_remediation():
    @task(retries=0)
    def record_decision(params=None, dag_run=None):
        from matcarv_aiops import approvals
        from matcarv_aiops.settings import get_settings

        approver = getattr(dag_run, "triggering_user_name", None)
        if not approver:
            raise AirflowFailException(
                "cannot tell who triggered this run, so the decision cannot be recorded"
            )
        try:
            record = approvals.decide(
                get_settings(),
                params["execution_id"],
                approve=params["decision"] == "approve",
                approver=approver,
                reason=params["reason"],
            )
        except approvals.ApprovalError as exc:
            raise AirflowFailException(str(exc)) from None
        return {
            "executionId": record.execution_id,
            "status": record.status.value,
            "approver": record.approver,
            "decidedAt": record.decided_at,
        }

    record_decision()


approve_remediation()
