"""# alarm_sync

Hourly: keep the CloudWatch alarms that start the catalogue's metric entries in step with the catalogue.

- A resource opts in with the tag `aiops:managed=true` (or, for the entries named in
  `AIOPS_ALARM_SYNC_EVERY_RESOURCE_OF`, every resource of the kind does unless tagged
  `aiops:managed=false`).
- Its alarm `AIOps-<entry>-<resource>` is created, or rewritten when it differs from the entry's
  `trigger_conditions` (the data the entry's EventBridge pattern is generated from).
- Alarms of that name whose resource is gone or opted out are deleted; no other alarm is touched.
- In the hub's account and each member account (`AIOPS_MEMBER_ACCOUNTS`), in each Region of the
  deployment (`AIOPS_REGIONS`), through the job's role `AIOpsMaintenance-alarm_sync` there: an alarm lives
  in its resource's own account and Region. A place that fails does not stop the others; the run fails
  and its record names it.
- **Dry run** (`dry_run` param): counts what would change, changes nothing.

One audit record per run, with the counts (created, updated, unchanged, deleted) and the places.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from matcarv_aiops.maintenance import SCHEDULES
from matcarv_aiops.maintenance.common import maintenance_dag_args
from matcarv_aiops.settings import get_settings

JOB = "alarm_sync"


@dag(
    schedule=SCHEDULES[JOB],
    **maintenance_dag_args(
        JOB,
        __doc__,
        get_settings(),
        tag="cloudwatch",
        dagrun_timeout=timedelta(minutes=50),
        params={
            "dry_run": Param(False, type="boolean", description="Count what would change; change nothing")
        },
    ),
)
def alarm_sync():
    @task
    def sync(params=None, **context):
        from matcarv_aiops.maintenance import alarm_sync as job
        from matcarv_aiops.maintenance.common import Clients, run_info

        settings = get_settings()
        return job.sync(
            settings,
            Clients(settings, job=JOB),
            run_info(JOB, context),
            dry_run=bool((params or {}).get("dry_run")),
        )

    sync()


alarm_sync()
