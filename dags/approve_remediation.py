"""# approve_remediation

Approve or reject one waiting remediation. Trigger this DAG by hand from the Airflow UI and fill in the
form: the **execution id** from the approval request (SNS message, or the waiting run's
`request_approval` task), **approve** or **reject**, and a **reason**.

The decision is recorded with the identity of the user who triggered this run. It counts only from a
member of the approver group (`AIOPS_APPROVERS`) who did not start the run being decided, only when that
user was authenticated (the UI or the REST API, not `airflow dags trigger` on the CLI), for the
execution it names, and only while that request is pending and unexpired; otherwise this run fails and
says why. Only the approver role (`AIOPS_APPROVER_ROLE`) is granted this DAG; roles with permissions on
every DAG (Admin, Op, User) can still trigger it, which is why the decision itself checks the group.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from matcarv_aiops.approvals import APPROVAL_DAG_ID
from matcarv_aiops.settings import get_settings

log = logging.getLogger(__name__)
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def approver_access(role: str) -> dict[str, dict[str, Collection[str]]] | None:
    """DAG-level access for the approver role (FAB auth manager): see the DAG and its runs, start one."""
    if not role:
        return None
    return {role: {"DAGs": {"can_read"}, "DAG Runs": {"can_read", "can_create"}}}


def trigger_is_authenticated(dag_run) -> tuple[bool, str]:
    """Whether Airflow authenticated the user who triggered ``dag_run`` (the UI or the REST API), and
    how it was triggered. The Task SDK may carry ``triggered_by``; else Airflow is asked."""
    from matcarv_aiops.run_source import AUTHENTICATED_SOURCES, RunSourceUnknown, trigger_source
    from matcarv_aiops.settings import get_settings

    source = getattr(dag_run, "triggered_by", None)
    if source is None:
        try:
            source = trigger_source(get_settings(), dag_run.dag_id, dag_run.run_id)
        except RunSourceUnknown as exc:
            return False, f"unknown ({exc})"
    source = str(getattr(source, "value", source)).lower()
    return source in AUTHENTICATED_SOURCES, source


@dag(
    dag_id=APPROVAL_DAG_ID,
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["aiops", "approval"],
    access_control=approver_access(get_settings().safety.approver_role),
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

        approver = getattr(dag_run, "triggering_user_name", None)
        if not approver:
            raise AirflowFailException(
                "cannot tell who triggered this run, so the decision cannot be recorded"
            )
        settings = get_settings()
        authenticated, source = trigger_is_authenticated(dag_run)
        if not authenticated and settings.safety.allow_unauthenticated_decisions:
            log.warning("run triggered by %s: decided without authentication (setting)", source)
        try:
            record = approvals.decide(
                settings,
                params["execution_id"],
                approve=params["decision"] == "approve",
                approver=approver,
                reason=params["reason"],
                authenticated=authenticated,
            )
        except approvals.ApprovalError as exc:
            raise AirflowFailException(f"{exc} (run triggered by {source})") from None
        return {
            "executionId": record.execution_id,
            "status": record.status.value,
            "approver": record.approver,
            "approvalsRequired": record.approvals_required,
            "requestedBy": record.requested_by,
            "decidedAt": record.decided_at,
        }

    record_decision()


approve_remediation()
