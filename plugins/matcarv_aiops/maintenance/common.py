"""What the scheduled maintenance jobs share: clients, deterministic audit records, plan files in S3 and
the approval of a plan through the core approval store (decided with the ``approve_remediation`` DAG).

Every job is a plain function of (settings, clients, run facts): no Airflow needed to run or test it.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from matcarv_aiops import approvals
from matcarv_aiops.audit import AuditWriter
from matcarv_aiops.aws import hub_client
from matcarv_aiops.models import AuditRecord, Outcome, iso_utc
from matcarv_aiops.settings import Settings

# uuid5 namespace of maintenance execution ids: the same job, resource and action always give the same
# id, so a re-run rewrites an audit record instead of adding a second one.
MAINTENANCE_NAMESPACE = uuid.UUID("0b7d7f0e-3f0a-4c55-8f3e-9a1d2c6b5e41")


class IncompleteListing(RuntimeError):
    """The job could not see everything it must look at: it fails rather than report a partial success."""


class JobFailed(RuntimeError):
    """Some resources could not be handled; their FAILURE audit records are written."""


def execution_id(job: str, *parts: str) -> str:
    return str(uuid.uuid5(MAINTENANCE_NAMESPACE, "|".join((job, *parts))))


@dataclass
class Clients:
    """One client per service for a job run (creating a client costs more than most calls).
    ``overrides`` lets a test hand in a stubbed client for an API moto lacks."""

    settings: Settings
    overrides: dict[str, Any] = field(default_factory=dict)
    _made: dict[str, Any] = field(default_factory=dict)

    def __call__(self, service: str):
        if service in self.overrides:
            return self.overrides[service]
        if service not in self._made:
            self._made[service] = hub_client(service, self.settings)
        return self._made[service]


@dataclass(frozen=True)
class RunInfo:
    """The scheduled run a job belongs to; it is the audit records' trigger."""

    job: str
    run_id: str
    logical_date: datetime

    def trigger(self) -> str:
        return json.dumps(
            {
                "source": "aiops.schedule",
                "detail-type": "Scheduled maintenance",
                "dag": self.job,
                "runId": self.run_id,
                "time": iso_utc(self.logical_date),
            }
        )

    @property
    def safe_run_id(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.run_id)


def audit(
    run: RunInfo,
    *,
    key: str,
    target: str,
    action: str,
    outcome: Outcome,
    rollback: str,
    operator: str = "automated",
) -> AuditRecord:
    """One resource's record. ``key`` names the change (resource + action) and fixes the execution id."""
    return AuditRecord(
        execution_id=execution_id(run.job, key),
        timestamp=iso_utc(),
        trigger=run.trigger(),
        runbook=run.job,
        target_resource=target,
        action=action,
        outcome=outcome,
        operator=operator,
        rollback_plan=rollback,
    )


def audit_writer(settings: Settings) -> AuditWriter:
    return AuditWriter(settings)


# --- plan files: JSON lines in the diagnostics bucket, streamed both ways ---------------------------
class PlanWriter:
    """Writes a plan line by line to a temporary file, then uploads it in one go: memory stays flat
    however many resources the plan holds."""

    def __init__(self, header: dict):
        # The file is the writer's state across add() calls, so no `with` here: upload() closes it.
        self._file = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115
        self.count = 0
        self._line(header)

    def _line(self, obj: dict) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def add(self, entry: dict) -> None:
        self._line(entry)
        self.count += 1

    def upload(self, clients: Clients, key: str) -> str:
        self._file.seek(0)
        clients("s3").upload_fileobj(self._file, clients.settings.platform.diagnostics_bucket, key)
        self._file.close()
        return f"s3://{clients.settings.platform.diagnostics_bucket}/{key}"


def read_plan(clients: Clients, key: str) -> tuple[dict, Iterator[dict]]:
    """(header, entries) of a plan file, the entries streamed from a temporary copy."""
    lines = _plan_lines(clients, key)
    header = next(lines)  # downloads the file now, as before; the entries stream on demand
    return header, lines


def _plan_lines(clients: Clients, key: str) -> Iterator[dict]:
    """The header, then every entry, of a plan file; the temporary copy is closed when the stream ends."""
    with tempfile.TemporaryFile(mode="w+b") as handle:
        clients("s3").download_fileobj(clients.settings.platform.diagnostics_bucket, key, handle)
        handle.seek(0)
        yield json.loads(handle.readline())
        for line in handle:
            if line.strip():
                yield json.loads(line)


def put_json(clients: Clients, key: str, obj: dict) -> None:
    clients("s3").put_object(
        Bucket=clients.settings.platform.diagnostics_bucket,
        Key=key,
        Body=json.dumps(obj).encode(),
        ContentType="application/json",
    )


def get_json(clients: Clients, key: str) -> dict | None:
    s3 = clients("s3")
    try:
        return json.loads(
            s3.get_object(Bucket=clients.settings.platform.diagnostics_bucket, Key=key)["Body"].read()
        )
    except s3.exceptions.NoSuchKey:
        return None


def delete_key(clients: Clients, key: str) -> None:
    clients("s3").delete_object(Bucket=clients.settings.platform.diagnostics_bucket, Key=key)


# --- approval of a plan, through the core approval store ------------------------------------------
def request_plan_approval(
    settings: Settings, run: RunInfo, *, target: str, action: str, plan_uri: str, rollback: str, why: str
) -> dict:
    """Ask a human to approve a whole plan (one request per run, not one per resource), through the same
    approval API, table and ``approve_remediation`` DAG as a remediation's."""
    return approvals.request(
        settings,
        execution_id=execution_id(run.job, run.run_id, "approval"),
        remediation=run.job,
        dag_id=run.job,
        run_id=run.run_id,
        target=target,
        action=action,
        diagnostics_uri=plan_uri,
        rollback_plan=rollback,
        why=why,
    )


# --- for the DAG files (no Airflow import here: plain values from the task context) ----------------
def default_args(settings: Settings) -> dict:
    return {
        "owner": "aiops",
        "retries": settings.airflow.task_retries,
        "retry_delay": timedelta(seconds=settings.airflow.task_retry_delay_seconds),
        "retry_exponential_backoff": True,
    }


def run_info(job: str, context: dict) -> RunInfo:
    """The run's facts from an Airflow task context. A run triggered by hand may have no logical date:
    its run_after stands in."""
    dag_run = context["dag_run"]
    moment = context.get("logical_date") or getattr(dag_run, "logical_date", None) or dag_run.run_after
    return RunInfo(job, dag_run.run_id, moment)
