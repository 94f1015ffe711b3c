"""A run's outcome at a glance: the DAG-run note, written through Airflow's REST API (PATCH dagRuns) by
the audit step and by audit_reconciler; a note that cannot be written never fails either."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest
from botocore.stub import Stubber

from matcarv_aiops.aws import hub_client
from matcarv_aiops.models import AuditRecord, Outcome, iso_utc, utc_now
from matcarv_aiops.reconcile import reconcile
from matcarv_aiops.run_notes import NOTE_MAX_CHARS, run_note, set_run_note
from matcarv_aiops.safety import SafetyStore
from matcarv_aiops.settings import Settings

RUN_ID = "manual__2026-11-30T16:15:11.123456+00:00"
QUOTED_RUN = "manual__2026-11-30T16%3A15%3A11.123456%2B00%3A00"


class FakeAirflow(BaseHTTPRequestHandler):
    """/auth/token for the ingress's credentials, then PATCH of a run's note (Airflow's status codes)."""

    notes: dict[str, str] = {}
    status = 200

    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_POST(self):
        if self.path == "/auth/token" and self._body() == {"username": "ingress", "password": "secret"}:
            self._answer(201, {"access_token": "jwt"})
        else:
            self._answer(401, {"detail": "bad credentials"})

    def do_PATCH(self):
        body = self._body()
        if self.headers.get("Authorization") != "Bearer jwt":
            self._answer(401, {"detail": "no token"})
        elif type(self).status != 200:
            self._answer(type(self).status, {"detail": "refused"})
        elif set(body) != {"note"} or len(body["note"]) > NOTE_MAX_CHARS:
            self._answer(422, {"detail": "bad body"})
        else:
            type(self).notes[self.path] = body["note"]
            self._answer(200, {"note": body["note"]})


@pytest.fixture
def airflow_api():
    FakeAirflow.notes, FakeAirflow.status = {}, 200
    server = HTTPServer(("127.0.0.1", 0), FakeAirflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def local_airflow(airflow_api, monkeypatch):
    from matcarv_aiops.settings import reload_settings

    for key, value in {
        "AIOPS_TRIGGER_BACKEND": "local",
        "AIOPS_AIRFLOW_BASE_URL": airflow_api,
        "AIOPS_AIRFLOW_API_USERNAME": "ingress",
        "AIOPS_AIRFLOW_API_PASSWORD": "secret",
    }.items():
        monkeypatch.setenv(key, value)
    yield reload_settings()
    monkeypatch.undo()
    reload_settings()


def record(outcome: Outcome, action: str) -> AuditRecord:
    return AuditRecord(
        execution_id=str(uuid.uuid4()),
        timestamp=iso_utc(),
        trigger="{}",
        runbook="remediate_s3_public_access",
        target_resource="arn:aws:s3:::public-bucket",
        action=action,
        outcome=outcome,
        operator="alice",
        rollback_plan="put it back",
    )


def test_the_note_is_the_outcome_and_its_one_line_reason():
    rejected = record(Outcome.SKIPPED, "SKIPPED: rejected by alice: not during the freeze")
    assert run_note(rejected) == "SKIPPED: rejected by alice: not during the freeze"
    failed = record(Outcome.FAILURE, "Block public access: FAILED at execute: AccessDenied\nsee log")
    assert run_note(failed) == "FAILURE: Block public access: FAILED at execute: AccessDenied see log"
    assert run_note(record(Outcome.FAILURE, "FAILED at execute: boom")) == "FAILURE: at execute: boom"
    assert run_note(record(Outcome.SUCCESS, "Block public access")) == "SUCCESS: Block public access"
    long = run_note(record(Outcome.SUCCESS, "x" * 5000))
    assert len(long) == NOTE_MAX_CHARS and long.endswith("…")


def test_the_note_is_patched_on_the_run_locally(local_airflow, airflow_api):
    assert set_run_note(local_airflow, "remediate_s3_public_access", RUN_ID, "SKIPPED: dry run")
    assert FakeAirflow.notes == {
        f"/api/v2/dags/remediate_s3_public_access/dagRuns/{QUOTED_RUN}": "SKIPPED: dry run"
    }


def test_a_refused_or_unreachable_note_is_logged_not_raised(local_airflow, airflow_api, caplog, monkeypatch):
    FakeAirflow.status = 403
    assert not set_run_note(local_airflow, "remediate_s3_public_access", RUN_ID, "SUCCESS: fixed")
    assert "answered 403" in caplog.text and FakeAirflow.notes == {}
    monkeypatch.setenv("AIOPS_AIRFLOW_BASE_URL", "http://127.0.0.1:9")  # nothing listens on discard
    from matcarv_aiops.settings import reload_settings

    assert not set_run_note(reload_settings(), "remediate_s3_public_access", RUN_ID, "SUCCESS: fixed")


def test_on_mwaa_the_note_goes_through_invoke_rest_api(aws):
    settings = Settings(trigger_backend="mwaa", mwaa_environment_name="aiops")
    client = hub_client("mwaa", settings)
    run_id = "aiops__0123456789abcdef"
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 200, "RestApiResponse": {"note": "SUCCESS: fixed"}},
            {
                "Name": "aiops",
                "Path": f"/dags/remediate_sg_open_ssh/dagRuns/{run_id}",
                "Method": "PATCH",
                "Body": {"note": "SUCCESS: fixed"},
            },
        )
        assert set_run_note(settings, "remediate_sg_open_ssh", run_id, "SUCCESS: fixed")
        # A manual run's id makes the path longer than InvokeRestApi takes: logged, nothing sent.
        assert not set_run_note(settings, "remediate_s3_public_access", RUN_ID, "SUCCESS: fixed")
        stub.assert_no_pending_responses()


def test_the_audit_operator_notes_its_run_and_survives_a_failed_note(monkeypatch):
    from matcarv_operators import steps as operators

    written = record(Outcome.SKIPPED, "SKIPPED: rejected by alice: not during the freeze")
    monkeypatch.setattr(operators, "run_in_task", lambda *_: {**written.to_item(), "written": True})
    notes = []

    def failing_note(settings, dag_id, run_id, note):
        notes.append((dag_id, run_id, note))
        return False  # what set_run_note answers when Airflow cannot be told

    monkeypatch.setattr(operators, "set_run_note", failing_note)
    operator = operators.AuditOperator(task_id="audit", remediation_id="s3_public_access")
    context = {"dag_run": SimpleNamespace(dag_id="remediate_s3_public_access", run_id=RUN_ID)}
    assert operator.execute(context)["outcome"] == "SKIPPED"
    assert notes == [
        ("remediate_s3_public_access", RUN_ID, "SKIPPED: rejected by alice: not during the freeze")
    ]


def test_the_reconciler_notes_the_run_whose_record_it_writes(aws, local_airflow, airflow_api):
    execution_id = str(uuid.uuid4())
    SafetyStore(local_airflow).claim_execution(
        execution_id,
        RUN_ID,
        "remediate_sqs_dlq_depth_high",
        details={
            "remediation": "sqs_dlq_depth_high",
            "targetArn": "arn:aws:sqs:us-east-1:123456789012:orders-dlq",
            "trigger": '{"manual": true}',
        },
    )
    done = reconcile(
        local_airflow, run_state=lambda dag_id, run_id: "failed", now=utc_now() + timedelta(hours=1)
    )
    assert done["written"] == [execution_id]
    [(path, note)] = FakeAirflow.notes.items()
    assert path == f"/api/v2/dags/remediate_sqs_dlq_depth_high/dagRuns/{QUOTED_RUN}"
    assert note.startswith("FAILURE: ") and "the DAG run is failed" in note


def test_the_reconciler_writes_its_record_when_the_note_cannot_be(aws, local_airflow, airflow_api):
    FakeAirflow.status = 500
    execution_id = str(uuid.uuid4())
    SafetyStore(local_airflow).claim_execution(execution_id, RUN_ID, "remediate_sqs_dlq_depth_high")
    done = reconcile(
        local_airflow, run_state=lambda dag_id, run_id: "failed", now=utc_now() + timedelta(hours=1)
    )
    assert done["written"] == [execution_id] and FakeAirflow.notes == {}
