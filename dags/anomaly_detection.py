"""# anomaly_detection

Every 5 minutes: score the CloudWatch metrics listed in `AIOPS_ANOMALY_METRICS`
(`Namespace|MetricName|Dim=Value;Dim=Value|Stat`, comma-separated) with the anomaly model.

Pulls each series' new datapoints with GetMetricData (500 queries per call), scores them causally from
the series' stored state (table `AIOPS_ANOMALY_STATE_TABLE`), stores the new state, and publishes
anomalies (score >= `AIOPS_ANOMALY_THRESHOLD`) as the `AnomalyScore` / `AnomaliesDetected` metrics in
`AIOPS_ANOMALY_METRIC_NAMESPACE` and an SNS alert. Reads metrics only; changes no AWS resource.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from matcarv_aiops.maintenance import SCHEDULES
from matcarv_aiops.maintenance.common import maintenance_dag_args
from matcarv_aiops.settings import get_settings

JOB = "anomaly_detection"


@dag(
    schedule=SCHEDULES[JOB],
    **maintenance_dag_args(
        JOB,
        __doc__,
        get_settings(),
        tag="anomaly",
        dagrun_timeout=timedelta(minutes=10),
    ),
)
def anomaly_detection():
    @task(execution_timeout=timedelta(minutes=4))
    def detect(**context):
        from matcarv_aiops.maintenance import anomaly_detection as job
        from matcarv_aiops.maintenance.common import Clients, run_info

        settings = get_settings()
        return job.detect(settings, Clients(settings, job=JOB), run_info(JOB, context), now=datetime.now(UTC))

    detect()


anomaly_detection()
