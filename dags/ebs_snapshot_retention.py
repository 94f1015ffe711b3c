"""# ebs_snapshot_retention

Daily at 02:00 UTC: delete this account's **non-production** EBS snapshots older than
`AIOPS_SNAPSHOT_RETENTION_DAYS` (default 30).

- Snapshots that a **Recycle Bin** retention rule covers are deleted directly: they can be restored
  during the rule's retention (`aws ec2 restore-snapshot-from-recycle-bin`).
- The others are listed in a plan (S3) and wait for a human: approve or reject with the
  `approve_remediation` DAG, using the execution id of the approval request (SNS, or this run's
  `plan` task result). The approval holds for that plan's exact bytes (sha256) only.
- `delete` reads the plan recorded for this run (state table) and the approval store, never the XCom
  of `plan` or `wait_for_approval`; if those differ from the store, or the plan file in S3 changed,
  it deletes nothing and fails with the reason. Each snapshot is re-checked just before deletion
  (production, exempt, AMI, AWS Backup, age): one that fails is skipped, with its audit record.
- Never deleted: production snapshots, snapshots an AMI uses, AWS Backup's, exempt ones
  (tag `aiops:exempt=true` or the exemption table).
- **Dry run** (`dry_run` param): writes the plan, lists what would go, deletes nothing.

Every deleted snapshot gets its own audit record in AutomationAuditLog.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Param, dag, task

from matcarv_aiops.maintenance import SCHEDULES
from matcarv_aiops.maintenance.common import maintenance_dag_args
from matcarv_aiops.settings import get_settings
from matcarv_sensors.approval import PlanApprovalSensor

JOB = "ebs_snapshot_retention"
_settings = get_settings()


@dag(
    schedule=SCHEDULES[JOB],
    **maintenance_dag_args(
        JOB,
        __doc__,
        _settings,
        tag="ebs",
        params={
            "dry_run": Param(False, type="boolean", description="List what would be deleted; delete nothing")
        },
    ),
)
def ebs_snapshot_retention():
    @task
    def plan(params=None, **context):
        from matcarv_aiops.maintenance import ebs_snapshots
        from matcarv_aiops.maintenance.common import Clients, run_info

        settings = get_settings()
        run = run_info(JOB, context)
        return ebs_snapshots.plan(
            settings,
            Clients(settings, job=JOB),
            run,
            now=datetime.now(UTC),
            dry_run=bool(params.get("dry_run")),
        )

    @task
    def delete(summary: dict, decision, params=None, **context):
        # summary and decision are XCom, which a UI user can edit: execute only compares them with the
        # recorded plan and the approval store, and refuses on any difference.
        from matcarv_aiops.maintenance import ebs_snapshots
        from matcarv_aiops.maintenance.common import Clients, run_info

        settings = get_settings()
        return ebs_snapshots.execute(
            settings,
            Clients(settings, job=JOB),
            run_info(JOB, context),
            dry_run=bool(params.get("dry_run")),
            xcom={"summary": summary, "decision": decision},
        )

    summary = plan()
    decision = PlanApprovalSensor(task_id="wait_for_approval")
    summary >> decision
    delete(summary, decision.output)


ebs_snapshot_retention()
