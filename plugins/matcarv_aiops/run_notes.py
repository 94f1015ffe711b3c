"""A remediation run's outcome at a glance: the audit outcome and its one-line reason as the Airflow 3
DAG-run note (``SKIPPED: rejected by alice: not during the freeze``), which the run list shows.

Airflow 3.3's Task SDK cannot write a note, so the task asks the REST API (``PATCH
/dags/<dag_id>/dagRuns/<run_id>`` with ``note``) through ``run_source.call_airflow``: locally with the
ingress's credentials, on MWAA through InvokeRestApi. A note is a convenience: failing to set one is
logged and never fails the audit or loses its record.
"""

from __future__ import annotations

import logging
import urllib.parse

from matcarv_aiops.models import AuditRecord, Outcome
from matcarv_aiops.run_source import RunSourceUnknown, call_airflow
from matcarv_aiops.settings import Settings

log = logging.getLogger(__name__)

NOTE_MAX_CHARS = 1000  # Airflow's DAGRunPatchBody limits a note to 1000 characters
# The record's action text already starts with its outcome for these; the note names it once.
_ACTION_PREFIXES = {Outcome.SKIPPED: "SKIPPED: ", Outcome.FAILURE: "FAILED "}


def run_note(record: AuditRecord) -> str:
    """``<OUTCOME>: <reason>`` on one line, at most NOTE_MAX_CHARS characters."""
    reason = " ".join(record.action.split())  # one line, whatever the action text holds
    reason = reason.removeprefix(_ACTION_PREFIXES.get(record.outcome, ""))
    note = f"{record.outcome.value}: {reason}" if reason else record.outcome.value
    return note if len(note) <= NOTE_MAX_CHARS else note[: NOTE_MAX_CHARS - 1] + "…"


def set_run_note(settings: Settings, dag_id: str, run_id: str, note: str) -> bool:
    """Write ``note`` on run ``run_id`` of ``dag_id``. False (and a warning in the log) when Airflow
    could not be told; never raises for that."""
    path = "/dags/{}/dagRuns/{}".format(*(urllib.parse.quote(p, safe="") for p in (dag_id, run_id)))
    try:
        call_airflow(settings, "PATCH", path, {"note": note[:NOTE_MAX_CHARS]})
    except RunSourceUnknown as exc:
        log.warning("run note of %s/%s not set (%s): %s", dag_id, run_id, exc, note)
        return False
    return True
