"""# securityhub_findings_sync

Every 15 minutes: copy the Security Hub findings updated since the last sync into the DynamoDB table
`AIOPS_FINDINGS_TABLE` (key `findingId`).

Incremental by an UpdatedAt watermark (kept in the state table), 100 findings per GetFindings page,
upserted 25 per BatchWriteItem with UnprocessedItems retried. The watermark advances only after every
write succeeded, so a failed run is simply re-read by the next. Changes no AWS resource.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from matcarv_aiops.maintenance import SCHEDULES
from matcarv_aiops.maintenance.common import maintenance_dag_args
from matcarv_aiops.settings import get_settings

JOB = "securityhub_findings_sync"


@dag(
    schedule=SCHEDULES[JOB],
    **maintenance_dag_args(
        JOB,
        __doc__,
        get_settings(),
        tag="securityhub",
        dagrun_timeout=timedelta(minutes=30),
    ),
)
def securityhub_findings_sync():
    @task
    def sync(**context):
        from matcarv_aiops.maintenance import securityhub_sync
        from matcarv_aiops.maintenance.common import Clients, run_info

        settings = get_settings()
        return securityhub_sync.sync(
            settings, Clients(settings, job=JOB), run_info(JOB, context), now=datetime.now(UTC)
        )

    sync()


securityhub_findings_sync()
