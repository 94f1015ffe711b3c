"""The approve_remediation DAG, triggered as a human would from the UI form (dag.test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, iso_utc

EXECUTION = "3f0e2f7c-9a51-4a5e-8a3b-6c1d2e3f4a5b"


def pending(settings, minutes=30):
    now = datetime.now(UTC)
    ApprovalStore(settings).create(
        ApprovalRecord(
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


def test_approval_records_the_triggering_user(run_dag, aws):
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


def test_rejection(run_dag, aws):
    pending(aws)
    run_dag("approve_remediation", {"execution_id": EXECUTION, "decision": "reject", "reason": "not now"})
    assert ApprovalStore(aws).get(EXECUTION).status is ApprovalStatus.REJECTED


def test_unknown_or_expired_execution_fails_and_records_nothing(run_dag, aws):
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
