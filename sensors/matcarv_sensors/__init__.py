"""Custom Airflow sensors: the waiting steps of the step table (the approval wait, the SSM Automation
execution wait), and the maintenance jobs' plan approval wait."""
