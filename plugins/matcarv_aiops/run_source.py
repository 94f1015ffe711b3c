"""How a DAG run was triggered, as Airflow itself recorded it (``triggered_by``: ui, rest_api, cli, ...).

A decision must have an authenticated user behind it. Airflow's task context names the triggering user
(``dag_run.triggering_user_name``) but not how the run was triggered (Airflow 3.3's Task SDK has no
``triggered_by``), and ``airflow dags trigger`` on the CLI records the OS user name (``LOGNAME=alice``
makes it "alice"). So the decision task asks Airflow's REST API for its own run: locally the REST API v2
at ``airflow_base_url`` with the ingress's credentials, on MWAA ``mwaa:InvokeRestApi`` with the
execution role. Only the UI and the REST API authenticate the user they record.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from matcarv_aiops.aws import hub_client
from matcarv_aiops.settings import Settings

# DagRunTriggeredByType values whose triggering user Airflow authenticated.
AUTHENTICATED_SOURCES = frozenset({"ui", "rest_api"})
_TIMEOUT = 10.0


class RunSourceUnknown(RuntimeError):
    """Airflow could not be asked how the run was triggered; the message says why."""


def trigger_source(settings: Settings, dag_id: str, run_id: str) -> str:
    """``triggered_by`` of run ``run_id`` of ``dag_id`` (e.g. "ui", "rest_api", "cli")."""
    if settings.ingress.trigger_backend == "mwaa":
        run = _mwaa_run(settings, dag_id, run_id)
    elif settings.ingress.trigger_backend == "local":
        run = _local_run(settings, dag_id, run_id)
    else:
        raise RunSourceUnknown(
            f"AIOPS_TRIGGER_BACKEND={settings.ingress.trigger_backend!r} is not mwaa or local"
        )
    source = run.get("triggered_by")
    if not isinstance(source, str) or not source:
        raise RunSourceUnknown(f"Airflow's record of run {run_id} has no triggered_by")
    return source.lower()


def _mwaa_run(settings: Settings, dag_id: str, run_id: str) -> dict[str, Any]:
    name = settings.ingress.mwaa_environment_name
    if not name:
        raise RunSourceUnknown("AIOPS_MWAA_ENVIRONMENT_NAME is empty, so Airflow cannot be asked")
    # InvokeRestApi's Path is at most 64 characters, too short for a run id: list the DAG's runs
    # matching it (a LIKE pattern) and keep the exact one.
    try:
        answer = hub_client("mwaa", settings).invoke_rest_api(
            Name=name,
            Path=f"/dags/{dag_id}/dagRuns",
            Method="GET",
            QueryParameters={"run_id_pattern": run_id, "limit": 100},
        )
    except (ClientError, BotoCoreError) as exc:
        raise RunSourceUnknown(f"mwaa:InvokeRestApi failed: {exc}") from None
    return _exact_run(answer.get("RestApiResponse"), run_id)


def _local_run(settings: Settings, dag_id: str, run_id: str) -> dict[str, Any]:
    path = "/dags/{}/dagRuns/{}".format(*(urllib.parse.quote(p, safe="") for p in (dag_id, run_id)))
    return call_airflow(settings, "GET", path)


def call_airflow(
    settings: Settings, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Call Airflow's REST API v2 at ``path`` (e.g. ``/dags/<dag_id>/dagRuns/<run_id>``, parts already
    quoted) the way this module does: locally with the ingress's credentials, on MWAA through
    InvokeRestApi (whose Path is at most 64 characters). Raises RunSourceUnknown with the reason."""
    if settings.ingress.trigger_backend == "mwaa":
        name = settings.ingress.mwaa_environment_name
        if not name:
            raise RunSourceUnknown("AIOPS_MWAA_ENVIRONMENT_NAME is empty, so Airflow cannot be asked")
        if len(path) > 64:
            raise RunSourceUnknown(f"{path} is longer than the 64 characters mwaa:InvokeRestApi takes")
        request: dict[str, Any] = {"Name": name, "Path": path, "Method": method}
        if body is not None:
            request["Body"] = body
        try:
            answer = hub_client("mwaa", settings).invoke_rest_api(**request)
        except (ClientError, BotoCoreError) as exc:
            raise RunSourceUnknown(f"mwaa:InvokeRestApi {method} {path} failed: {exc}") from None
        response = answer.get("RestApiResponse")
        return response if isinstance(response, dict) else {}
    if settings.ingress.trigger_backend == "local":
        base = settings.airflow.airflow_base_url.rstrip("/")
        credentials = {
            "username": settings.ingress.airflow_api_username,
            "password": settings.ingress.airflow_api_password,
        }
        token = _http_json("POST", f"{base}/auth/token", credentials, None).get("access_token")
        if not token:
            raise RunSourceUnknown("no access_token from Airflow's /auth/token")
        return _http_json(method, f"{base}/api/v2{path}", body, token)
    raise RunSourceUnknown(f"AIOPS_TRIGGER_BACKEND={settings.ingress.trigger_backend!r} is not mwaa or local")


def _http_json(method: str, url: str, body: Any, token: str | None) -> dict[str, Any]:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as answer:
            parsed = json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise RunSourceUnknown(f"{method} {url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RunSourceUnknown(f"{method} {url} failed: {exc}") from None
    if not isinstance(parsed, dict):
        raise RunSourceUnknown(f"{method} {url} answered something other than a JSON object")
    return parsed


def _exact_run(listing: Any, run_id: str) -> dict[str, Any]:
    runs = listing.get("dag_runs", []) if isinstance(listing, dict) else []
    for run in runs:
        if isinstance(run, dict) and run.get("dag_run_id") == run_id:
            return run
    raise RunSourceUnknown(f"Airflow lists no run {run_id}")
