"""Airflow's local settings for the local stack only (never bundled for MWAA): every Airflow process imports
this module when it starts, so the scheduler imports the task code once. The LocalExecutor workers it forks,
and the task process each of them forks per task, then start with boto3 and the platform's packages already
in memory instead of importing them again for every task (the largest part of a task's start-up here).
"""

import boto3  # noqa: F401

import matcarv_aiops.pipeline  # noqa: F401
import matcarv_operators  # noqa: F401
import matcarv_sensors  # noqa: F401
