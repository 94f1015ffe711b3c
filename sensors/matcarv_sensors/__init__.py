"""Custom Airflow sensors: the approval wait, and the SSM Automation execution wait."""
