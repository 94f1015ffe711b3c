"""Event ingress: EventBridge events in, remediation DAG runs out (imports no Airflow)."""
