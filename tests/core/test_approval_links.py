"""Approval messages link to the environment's real Airflow UI: on MWAA its WebserverUrl, read with
mwaa:GetEnvironment (botocore's Stubber, the documented response shape; moto has no MWAA API)."""

from __future__ import annotations

import datetime

import pytest
from botocore.stub import Stubber

from matcarv_aiops import approvals
from matcarv_aiops.aws import hub_client
from matcarv_aiops.models import ApprovalRecord
from matcarv_aiops.settings import Settings

HOST = "a1b2c3d4-5e6f-7a8b-9c0d-e1f2a3b4c5d6-vpce.c17.eu-west-1.airflow.amazonaws.com"


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(approvals, "_webserver_urls", {})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _record() -> ApprovalRecord:
    return ApprovalRecord(
        execution_id="exec-1",
        remediation="s3_public_access",
        dag_id="remediate_s3_public_access",
        run_id="r",
        target_resource="arn:aws:s3:::b",
        action="block",
        diagnostics_uri="s3://d/x",
        rollback_plan="none",
        reason_for_approval="production",
        requested_at="2026-01-01T00:00:00Z",
        expires_at="2026-01-01T01:00:00Z",
    )


def _environment(name: str) -> dict:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return {
        "Environment": {
            "Name": name,
            "Arn": f"arn:aws:airflow:eu-west-1:123456789012:environment/{name}",
            "Status": "AVAILABLE",
            "CreatedAt": now,
            "WebserverUrl": HOST,
            "WebserverAccessMode": "PRIVATE_ONLY",
        }
    }


def test_on_mwaa_the_link_is_the_environments_webserver_url_read_once():
    settings = Settings(mwaa_environment_name="matcarv-aiops", region="eu-west-1")
    client = hub_client("mwaa", settings)
    with Stubber(client) as stub:
        stub.add_response("get_environment", _environment("matcarv-aiops"), {"Name": "matcarv-aiops"})
        text = approvals.approval_instructions(_record(), settings)
        again = approvals.approval_instructions(_record(), settings)  # cached: no second call
        stub.assert_no_pending_responses()
    assert f"(https://{HOST}/dags/approve_remediation)" in text
    assert text == again
    assert "localhost" not in text


def test_an_unreadable_environment_is_named_not_replaced_by_a_made_up_url():
    settings = Settings(mwaa_environment_name="matcarv-aiops", region="eu-west-1")
    with Stubber(hub_client("mwaa", settings)) as stub:
        stub.add_client_error("get_environment", "AccessDeniedException", http_status_code=403)
        text = approvals.approval_instructions(_record(), settings)
    assert "MWAA environment matcarv-aiops" in text and "localhost" not in text


def test_elsewhere_the_configured_base_url():
    text = approvals.approval_instructions(_record(), Settings(airflow_base_url="http://127.0.0.1:9090"))
    assert "(http://127.0.0.1:9090/dags/approve_remediation)" in text


def test_the_instructions_say_who_may_decide_and_offer_no_cli_line():
    record = _record().model_copy(update={"requested_by": "carol", "approvals_required": 2})
    text = approvals.approval_instructions(record, Settings(airflow_base_url="http://127.0.0.1:9090"))
    assert "Needs 2 distinct approvers of the approver group, other than carol who requested it" in text
    assert "POST /api/v2/dags/approve_remediation/dagRuns" in text
    assert "airflow dags trigger" not in text  # a CLI decision would be refused
