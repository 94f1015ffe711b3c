"""# audit_reconciler

Every 10 minutes: every claimed remediation execution ends in exactly one true audit record.

Finds executions that were claimed (`execution#<id>` in the state table) but have no audit record, or
whose record's after-effects did not all happen, once their run can no longer finish them itself: a run
marked failed while it waited for approval, a lost worker, an audit table that was unavailable for every
retry. For each: a FAILURE record saying whether a change may have been made (the intent marker), a
pending approval closed as CANCELLED, the lock released, the action counted for cooldown when a change may
have been made, the metric and the alert sent once. A queued or running DAG run is never touched (Airflow
is asked for its state); the record is written only if none exists, so a run's own record always stands.
Changes no AWS resource. Logic: `matcarv_aiops.reconcile`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from matcarv_aiops.maintenance.common import default_args
from matcarv_aiops.reconcile import RECONCILER, RUN_MISSING, SCHEDULE
from matcarv_aiops.settings import get_settings


@dag(
    dag_id=RECONCILER,
    doc_md=__doc__,
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=9),
    tags=["aiops", "audit"],
    default_args=default_args(get_settings()),
)
def audit_reconciler():
    @task(execution_timeout=timedelta(minutes=8))
    def reconcile(ti=None):
        from airflow.sdk.api.client import ServerResponseError
        from airflow.sdk.exceptions import AirflowRuntimeError

        from matcarv_aiops import reconcile as reconciler

        def run_state(dag_id: str, run_id: str) -> str | None:
            """The run's state from Airflow; RUN_MISSING when it does not exist, None when unreadable.
            The API's error reaches a task wrapped by its supervisor, or as is when run in-process."""
            try:
                return str(ti.get_dagrun_state(dag_id=dag_id, run_id=run_id))
            except AirflowRuntimeError as exc:
                status = (exc.error.detail or {}).get("status_code")
            except ServerResponseError as exc:
                status = exc.response.status_code
            return RUN_MISSING if status == 404 else None

        return reconciler.reconcile(get_settings(), run_state=run_state, now=datetime.now(UTC))

    reconcile()


audit_reconciler()
