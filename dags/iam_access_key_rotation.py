"""# iam_access_key_rotation

Weekly, Sunday 01:00 UTC: rotate the access keys of **non-production** IAM users that are older than
`AIOPS_ACCESS_KEY_MAX_AGE_DAYS` (default 90).

1. `rotate`: create a new key, store it in Secrets Manager (`AIOPS_ACCESS_KEY_SECRET_PREFIX` + user
   name) where its consumers read it, then deactivate the old key (undo: re-activate it). A user who
   already has two keys is handled, or left alone with the reason in the audit record.
2. Keys inactive for longer than `AIOPS_ACCESS_KEY_GRACE_DAYS` are put in a deletion plan (S3) and
   wait for a human: approve or reject with the `approve_remediation` DAG, using the execution id of
   the approval request.
3. `delete_keys`: while the approval (bound to the plan's sha256) holds, delete each planned key that
   passes a re-check just before: same user, still inactive past the grace period, not production,
   not exempt. The plan and the decision are read from the state table, S3 and the approval store,
   never from XCom; XCom that differs from them, or a plan changed in S3, deletes nothing and fails.

Production and exempt users are never touched. Every changed key gets its own audit record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag, task

from matcarv_aiops.maintenance import SCHEDULES
from matcarv_aiops.maintenance.common import maintenance_dag_args
from matcarv_aiops.settings import get_settings
from matcarv_sensors.approval import PlanApprovalSensor

JOB = "iam_access_key_rotation"
_settings = get_settings()


@dag(
    schedule=SCHEDULES[JOB],
    **maintenance_dag_args(
        JOB,
        __doc__,
        _settings,
        tag="iam",
    ),
)
def iam_access_key_rotation():
    @task
    def rotate(**context):
        from matcarv_aiops.maintenance import iam_keys
        from matcarv_aiops.maintenance.common import Clients, run_info

        settings = get_settings()
        return iam_keys.rotate(
            settings, Clients(settings, job=JOB), run_info(JOB, context), now=datetime.now(UTC)
        )

    @task
    def delete_keys(summary: dict, decision, **context):
        # summary and decision are XCom, which a UI user can edit: delete_keys only compares them with
        # the recorded plan and the approval store, and refuses on any difference.
        from matcarv_aiops.maintenance import iam_keys
        from matcarv_aiops.maintenance.common import Clients, run_info

        settings = get_settings()
        return iam_keys.delete_keys(
            settings,
            Clients(settings, job=JOB),
            run_info(JOB, context),
            now=datetime.now(UTC),
            xcom={"summary": summary, "decision": decision},
        )

    summary = rotate()
    decision = PlanApprovalSensor(task_id="wait_for_approval")
    summary >> decision
    delete_keys(summary, decision.output)


iam_access_key_rotation()
