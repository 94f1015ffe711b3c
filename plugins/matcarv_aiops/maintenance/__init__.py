"""The scheduled maintenance jobs, as plain functions (the DAGs in dags/ only call them).

ebs_snapshots (ebs_snapshot_retention), cost_anomalies (cost_anomaly_report), iam_keys
(iam_access_key_rotation), anomaly_detection (anomaly_detection), securityhub_sync
(securityhub_findings_sync), alarm_sync (alarm_sync); common holds what they share.

Each job module names its DAG id (``JOB``) and declares the AWS actions it calls (``PERMISSIONS``, a
``common.JobPermissions``): its IAM role is generated from that declaration, so adding a job is adding a
module with both.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matcarv_aiops.maintenance.common import JobPermissions

SCHEDULES = {
    "ebs_snapshot_retention": "0 2 * * *",
    "cost_anomaly_report": "0 3 * * *",
    "iam_access_key_rotation": "0 1 * * 0",
    "anomaly_detection": "*/5 * * * *",
    "securityhub_findings_sync": "*/15 * * * *",
    "alarm_sync": "0 * * * *",
}


@cache
def job_permissions() -> dict[str, JobPermissions]:
    """Every job's declared permissions, by job (DAG id), from the modules of this package that define
    ``JOB`` and ``PERMISSIONS``. Two modules claiming one job is an error naming both."""
    found: dict[str, JobPermissions] = {}
    owners: dict[str, str] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        job, permissions = getattr(module, "JOB", None), getattr(module, "PERMISSIONS", None)
        if job is None or permissions is None:
            continue
        if job in found:
            raise ValueError(
                f"maintenance job {job!r} is declared by both {owners[job]} and {module.__name__}"
            )
        found[job], owners[job] = permissions, module.__name__
    return found
