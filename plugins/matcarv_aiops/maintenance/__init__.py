"""The scheduled maintenance jobs, as plain functions (the DAGs in dags/ only call them).

ebs_snapshots (ebs_snapshot_retention), cost_anomalies (cost_anomaly_report), iam_keys
(iam_access_key_rotation), anomaly_detection (anomaly_detection), securityhub_sync
(securityhub_findings_sync), alarm_sync (alarm_sync); common holds what they share.
"""

SCHEDULES = {
    "ebs_snapshot_retention": "0 2 * * *",
    "cost_anomaly_report": "0 3 * * *",
    "iam_access_key_rotation": "0 1 * * 0",
    "anomaly_detection": "*/5 * * * *",
    "securityhub_findings_sync": "*/15 * * * *",
    "alarm_sync": "0 * * * *",
}
