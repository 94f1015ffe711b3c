"""How a decision run was triggered, asked of Airflow: the local REST API v2 and MWAA's InvokeRestApi."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import pytest
from botocore.stub import Stubber

from matcarv_aiops import run_source
from matcarv_aiops.run_source import RunSourceUnknown, trigger_source
from matcarv_aiops.settings import Settings

RUN_ID = "manual__2026-11-30T16:15:11.123456+00:00"


class FakeAirflow(BaseHTTPRequestHandler):
    """/auth/token for the ingress's credentials, then one DAG run by id."""

    runs: dict[str, dict] = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def _answer(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/auth/token" and body == {"username": "ingress", "password": "secret"}:
            self._answer(201, {"access_token": "jwt"})
        else:
            self._answer(401, {"detail": "bad credentials"})

    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer jwt":
            self._answer(401, {"detail": "no token"})
            return
        run = self.runs.get(self.path)
        self._answer(200, run) if run else self._answer(404, {"detail": "not found"})


@pytest.fixture
def airflow_api():
    server = HTTPServer(("127.0.0.1", 0), FakeAirflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def local_settings(url: str, password: str = "secret") -> Settings:
    return Settings(
        trigger_backend="local",
        airflow_base_url=url,
        airflow_api_username="ingress",
        airflow_api_password=password,
    )


def test_the_local_api_says_how_the_run_was_triggered(airflow_api):
    path = "/api/v2/dags/approve_remediation/dagRuns/manual__2026-11-30T16%3A15%3A11.123456%2B00%3A00"
    FakeAirflow.runs = {path: {"dag_run_id": RUN_ID, "triggered_by": "cli", "triggering_user_name": "alice"}}
    assert trigger_source(local_settings(airflow_api), "approve_remediation", RUN_ID) == "cli"
    FakeAirflow.runs[path]["triggered_by"] = "ui"
    assert trigger_source(local_settings(airflow_api), "approve_remediation", RUN_ID) == "ui"


def test_the_local_api_failing_is_unknown_never_authenticated(airflow_api):
    FakeAirflow.runs = {}
    with pytest.raises(RunSourceUnknown, match="answered 404"):
        trigger_source(local_settings(airflow_api), "approve_remediation", RUN_ID)
    with pytest.raises(RunSourceUnknown, match="answered 401"):
        trigger_source(local_settings(airflow_api, password="wrong"), "approve_remediation", RUN_ID)


def test_mwaa_lists_the_runs_matching_the_id_and_keeps_the_exact_one(monkeypatch):
    client = boto3.client("mwaa", region_name="us-east-1")
    stub = Stubber(client)
    expected = {
        "Name": "env",
        "Path": "/dags/approve_remediation/dagRuns",
        "Method": "GET",
        "QueryParameters": {"run_id_pattern": RUN_ID, "limit": 100},
    }
    listing = {
        "dag_runs": [
            {"dag_run_id": RUN_ID + "x", "triggered_by": "ui"},
            {"dag_run_id": RUN_ID, "triggered_by": "rest_api"},
        ]
    }
    stub.add_response("invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": listing}, expected)
    stub.add_response(
        "invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": {"dag_runs": []}}, expected
    )
    stub.add_client_error("invoke_rest_api", "AccessDeniedException", "not allowed", expected_params=expected)
    monkeypatch.setattr(run_source, "hub_client", lambda service, settings: client)
    settings = Settings(trigger_backend="mwaa", mwaa_environment_name="env")
    with stub:
        assert trigger_source(settings, "approve_remediation", RUN_ID) == "rest_api"
        with pytest.raises(RunSourceUnknown, match="lists no run"):
            trigger_source(settings, "approve_remediation", RUN_ID)
        with pytest.raises(RunSourceUnknown, match="AccessDeniedException"):
            trigger_source(settings, "approve_remediation", RUN_ID)
    with pytest.raises(RunSourceUnknown, match="AIOPS_MWAA_ENVIRONMENT_NAME is empty"):
        trigger_source(Settings(trigger_backend="mwaa"), "approve_remediation", RUN_ID)
