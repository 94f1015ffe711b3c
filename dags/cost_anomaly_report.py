"""# cost_anomaly_report

Daily at 03:00 UTC: yesterday's Cost Explorer anomalies (GetAnomalies), with impact and root causes.

- Posts a readable Slack message (top anomalies by impact, a console link each) through the Slack
  provider's incoming-webhook hook, connection `AIOPS_SLACK_WEBHOOK_CONN_ID` (default `slack_aiops`,
  type *Slack Incoming Webhook*). A day without anomalies posts a short all-clear.
- Keeps the full report in S3: `s3://<diagnostics bucket>/reports/cost-anomalies/<date>.json`.

A re-run rewrites the report and does not post twice. It changes nothing in AWS.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from airflow.sdk import dag, task

from matcarv_aiops.maintenance import SCHEDULES
from matcarv_aiops.maintenance.common import maintenance_dag_args
from matcarv_aiops.settings import get_settings

JOB = "cost_anomaly_report"


@dag(
    schedule=SCHEDULES[JOB],
    **maintenance_dag_args(
        JOB,
        __doc__,
        get_settings(),
        tag="cost",
    ),
)
def cost_anomaly_report():
    @task
    def report(**context):
        from matcarv_aiops.maintenance import cost_anomalies
        from matcarv_aiops.maintenance.common import Clients, run_info

        settings = get_settings()
        run = run_info(JOB, context)
        day = (run.logical_date.astimezone(UTC) - timedelta(days=1)).date()
        return cost_anomalies.report(settings, Clients(settings, job=JOB), run, day=day)

    report()


cost_anomaly_report()
