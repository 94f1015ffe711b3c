"""The approve_remediation DAG, triggered as a human would from the UI form (dag.test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, iso_utc

EXECUTION = "3f0e2f7c-9a51-4a5e-8a3b-6c1d2e3f4a5b"


@pytest.fixture
def triggered_by(monkeypatch):
    """How Airflow says the decision run was triggered (dag.test() records "test"; the API is not up)."""

    def set_source(source: str) -> None:
        monkeypatch.setattr(
            "matcarv_aiops.run_source.trigger_source", lambda settings, dag_id, run_id: source
        )

    return set_source


def pending(settings, minutes=30, **extra):
    now = datetime.now(UTC)
    ApprovalStore(settings).create(
        ApprovalRecord(
            **extra,
            execution_id=EXECUTION,
            remediation="s3_public_access",
            dag_id="remediate_s3_public_access",
            run_id="r1",
            target_resource="arn:aws:s3:::b",
            action="a",
            diagnostics_uri="s3://d/k",
            rollback_plan="none",
            reason_for_approval="always",
            requested_at=iso_utc(now),
            expires_at=iso_utc(now + timedelta(minutes=minutes)),
        )
    )


def test_approval_records_the_triggering_user(run_dag, aws, triggered_by):
    triggered_by("ui")
    pending(aws)
    _, states = run_dag(
        "approve_remediation",
        {"execution_id": EXECUTION, "decision": "approve", "reason": "diagnostics look right"},
    )
    assert states == {"record_decision": "success"}
    record = ApprovalStore(aws).get(EXECUTION)
    assert record.status is ApprovalStatus.APPROVED
    assert record.approver == "dag_test"  # dag.test()'s triggering user; the UI passes the logged-in user
    assert record.decision_reason == "diagnostics look right"


def test_rejection(run_dag, aws, triggered_by):
    triggered_by("rest_api")
    pending(aws)
    run_dag("approve_remediation", {"execution_id": EXECUTION, "decision": "reject", "reason": "not now"})
    assert ApprovalStore(aws).get(EXECUTION).status is ApprovalStatus.REJECTED


def test_unknown_or_expired_execution_fails_and_records_nothing(run_dag, aws, triggered_by):
    triggered_by("ui")
    _, states = run_dag(
        "approve_remediation", {"execution_id": EXECUTION, "decision": "approve", "reason": "looks fine"}
    )
    assert states == {"record_decision": "failed"}
    assert ApprovalStore(aws).get(EXECUTION) is None
    pending(aws, minutes=-1)
    _, states = run_dag(
        "approve_remediation", {"execution_id": EXECUTION, "decision": "approve", "reason": "looks fine"}
    )
    assert states == {"record_decision": "failed"}
    assert ApprovalStore(aws).get(EXECUTION).status is ApprovalStatus.EXPIRED


DECISION = {"execution_id": EXECUTION, "decision": "approve", "reason": "looks fine"}


def test_a_cli_trigger_cannot_decide(run_dag, aws, triggered_by):
    """`LOGNAME=alice airflow dags trigger ...` records alice, but nobody authenticated her."""
    triggered_by("cli")
    pending(aws)
    _, states = run_dag("approve_remediation", DECISION)
    assert states == {"record_decision": "failed"}
    record = ApprovalStore(aws).get(EXECUTION)
    assert (record.status, record.approver) == (ApprovalStatus.PENDING, None)


def test_a_run_airflow_cannot_say_how_was_triggered_cannot_decide(run_dag, aws):
    """Unconfigured Airflow API (AIOPS_MWAA_ENVIRONMENT_NAME empty): fail closed."""
    pending(aws)
    _, states = run_dag("approve_remediation", DECISION)
    assert states == {"record_decision": "failed"}
    assert ApprovalStore(aws).get(EXECUTION).status is ApprovalStatus.PENDING


def test_the_requester_cannot_decide_from_the_ui(run_dag, aws, triggered_by):
    triggered_by("ui")
    pending(aws, requested_by="dag_test")
    _, states = run_dag("approve_remediation", DECISION)
    assert states == {"record_decision": "failed"}
    assert ApprovalStore(aws).get(EXECUTION).status is ApprovalStatus.PENDING


def test_a_user_outside_the_group_cannot_decide(run_dag, aws, triggered_by, monkeypatch):
    from matcarv_aiops.settings import reload_settings

    monkeypatch.setenv("AIOPS_APPROVERS", "alice")
    reload_settings()
    triggered_by("ui")
    pending(aws)
    _, states = run_dag("approve_remediation", DECISION)
    assert states == {"record_decision": "failed"}
    assert ApprovalStore(aws).get(EXECUTION).status is ApprovalStatus.PENDING


def test_only_the_approver_role_is_granted_the_dag(dagbag):
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("approve_dag", REPO / "dags" / "approve_remediation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.approver_access("") is None
    assert module.approver_access("AIOpsApprover") == {
        "AIOpsApprover": {"DAGs": {"can_read"}, "DAG Runs": {"can_read", "can_create"}}
    }
    assert dagbag.get_dag("approve_remediation").access_control is None  # AIOPS_APPROVER_ROLE unset


def test_the_dag_with_an_approver_role_loads(monkeypatch, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import REPO

    monkeypatch.setenv("AIOPS_APPROVER_ROLE", "AIOpsApprover")
    from matcarv_aiops.settings import reload_settings

    reload_settings()
    bag = DagBag(dag_folder=str(REPO / "dags" / "approve_remediation.py"))
    assert not bag.import_errors, bag.import_errors
    assert bag.get_dag("approve_remediation").access_control == {
        "AIOpsApprover": {"DAGs": {"can_read"}, "DAG Runs": {"can_read", "can_create"}}
    }
    reload_settings()
