"""Custom Airflow operators: one per remediation step, each a thin shell over matcarv_aiops.pipeline."""
