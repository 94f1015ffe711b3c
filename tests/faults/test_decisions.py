"""Fault cases for who may decide: hostile or mistaken decisions on a waiting public-bucket fix (a
remediation that always needs a human). Each case runs the remediation in-process, injects the decision,
checks what the store and the bucket say, asserts the four invariants and adds its row to the report."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from local.scenarios import public_access_block, public_bucket
from matcarv_aiops import approvals
from matcarv_aiops.approvals import ApprovalError, ApprovalStore
from matcarv_aiops.models import ApprovalStatus
from matcarv_aiops.pipeline import StepFailed, StepRecord, StepSkipped, call, step_by_id
from matcarv_aiops.pipeline.inline import InlineRun, run_inline
from matcarv_aiops.settings import get_settings, reload_settings
from tests.events import cloudtrail_event
from tests.faults.invariants import ActionLog, audit_records, check

REMEDIATION = "s3_public_access"
FIX = "PutPublicAccessBlock"
# The approver group of the test environment (tests/conftest.py, AIOPS_APPROVERS).
GROUP = ("alice", "alice@example.com", "bob@example.com", "carol@example.com", "carol", "dag_test")
FORGED = {"decision": "auto", "operator": "automated", "reason": "edited in the UI"}


@pytest.fixture
def bucket_actions():
    """Mutating calls, the bucket's own (S3) included: the fix is an S3 call."""
    log = ActionLog(include=frozenset({"s3"}))
    with log.record():
        yield log


def _public_bucket(actions: ActionLog, name: str, **kwargs: Any):
    """The scenario's bucket; its own set-up calls are not the run's actions."""
    s3, bucket = public_bucket(name, **kwargs)
    actions.calls.clear()
    return s3, bucket


def _conf(bucket: str) -> dict[str, Any]:
    return {"event": cloudtrail_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": bucket})}


def _run(
    bucket: str, decide, *, requested_by: str = "automated", run_id: str = "manual__decide"
) -> InlineRun:
    """The whole run; ``decide(run, execution_id)`` acts as the humans do while it waits."""

    def on_wait(step, run):
        if step.task_id == "wait_for_approval":
            decide(run, run.result("collect_diagnostics").execution_id)

    return run_inline(
        REMEDIATION,
        _conf(bucket),
        run_id=run_id,
        requested_by=requested_by,
        on_wait=on_wait,
        poll_seconds=0.05,
        wait_timeout=20,
    )


def _refused(execution_id: str, approver: str, *, authenticated: bool = True, approve: bool = True) -> str:
    """A decision that must not count: the one-line reason it was refused."""
    with pytest.raises(ApprovalError) as refused:
        approvals.decide(
            get_settings(),
            execution_id,
            approve=approve,
            approver=approver,
            reason="injected",
            authenticated=authenticated,
        )
    assert "\n" not in str(refused.value)
    return str(refused.value)


def _audit_cell(execution_id: str) -> str:
    record = audit_records(get_settings())[execution_id]
    action = record["action"].removeprefix(f"{record['outcome']}: ")
    reason = action if len(action) <= 70 else action[:67] + "..."
    return (
        f"{record['outcome']}: {reason} (operator {record['operator']}, requested by {record['requestedBy']})"
    )


def _report(fault_report, case: str, injected: str, outcome: str, execution_id: str, actions: ActionLog):
    invariants = check(get_settings(), actions=actions, approver_group=GROUP)
    invariants.assert_hold()
    fault_report.add(case, injected, outcome, _audit_cell(execution_id), invariants)


def _execution_id(run: InlineRun) -> str:
    return run.result("collect_diagnostics").execution_id


def test_self_approval_is_refused(aws, bucket_actions, fault_report):
    s3, bucket = _public_bucket(bucket_actions, "self-approved")
    refusals = []

    def decide(run, execution_id):
        refusals.append(_refused(execution_id, "alice"))
        approvals.decide(get_settings(), execution_id, approve=True, approver="bob@example.com", reason="ok")

    run = _run(bucket, decide, requested_by="alice")
    assert "alice requested the run" in refusals[0]
    audit = run.audit
    assert (audit.outcome.value, audit.operator, audit.requested_by) == (
        "SUCCESS",
        "bob@example.com",
        "alice",
    )
    assert all(public_access_block(s3, bucket).values()) and bucket_actions.count(FIX) == 1
    _report(
        fault_report,
        "decisions: self-approval",
        "alice triggered the run by hand, then approved it herself",
        "refused (requester); bob approved; fixed once",
        _execution_id(run),
        bucket_actions,
    )


def test_a_decider_outside_the_group_is_refused(aws, bucket_actions, fault_report):
    s3, bucket = _public_bucket(bucket_actions, "outsider")
    refusals = []

    def decide(run, execution_id):
        refusals.append(_refused(execution_id, "mallory"))
        approvals.decide(get_settings(), execution_id, approve=False, approver="alice", reason="website")

    run = _run(bucket, decide)
    assert "mallory is not in the approver group" in refusals[0]
    assert (run.audit.outcome.value, run.audit.operator) == ("SKIPPED", "alice")
    assert not any(public_access_block(s3, bucket).values()) and bucket_actions.count(FIX) == 0
    _report(
        fault_report,
        "decisions: decider outside the group",
        "mallory (no approver) approved",
        "refused (not in group); alice rejected; nothing changed",
        _execution_id(run),
        bucket_actions,
    )


def test_the_reserved_name_automated_cannot_decide(aws, bucket_actions, fault_report):
    s3, bucket = _public_bucket(bucket_actions, "automated-decider")
    refusals = []

    def decide(run, execution_id):
        refusals.append(_refused(execution_id, "automated"))
        approvals.decide(get_settings(), execution_id, approve=True, approver="alice", reason="ok")

    run = _run(bucket, decide)
    assert "'automated' is the platform's own name" in refusals[0]
    assert (run.audit.outcome.value, run.audit.operator) == ("SUCCESS", "alice")
    assert bucket_actions.count(FIX) == 1
    _report(
        fault_report,
        "decisions: the name automated",
        "a decision recorded as 'automated'",
        "refused (reserved); alice approved; fixed once",
        _execution_id(run),
        bucket_actions,
    )


def test_a_cli_decision_has_no_authenticated_user(aws, bucket_actions, fault_report):
    """`LOGNAME=alice airflow dags trigger approve_remediation ...`: Airflow records triggered_by=cli and
    the OS user name; the decision task finds it unauthenticated and the store refuses it."""
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("approve_dag", REPO / "dags" / "approve_remediation.py")
    dag_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dag_module)
    s3, bucket = _public_bucket(bucket_actions, "cli-decision")
    refusals = []

    def decide(run, execution_id):
        cli_run = SimpleNamespace(triggered_by="cli", triggering_user_name="alice")
        authenticated, source = dag_module.trigger_is_authenticated(cli_run)
        assert (authenticated, source) == (False, "cli")
        refusals.append(_refused(execution_id, "alice", authenticated=authenticated))
        ui_run = SimpleNamespace(triggered_by="ui", triggering_user_name="alice")
        assert dag_module.trigger_is_authenticated(ui_run) == (True, "ui")
        approvals.decide(get_settings(), execution_id, approve=True, approver="alice", reason="from the UI")

    run = _run(bucket, decide)
    assert "no authenticated user is behind this decision" in refusals[0]
    assert (run.audit.outcome.value, run.audit.operator) == ("SUCCESS", "alice")
    assert bucket_actions.count(FIX) == 1
    _report(
        fault_report,
        "decisions: CLI decision",
        "LOGNAME=alice airflow dags trigger (no authenticated user)",
        "refused (unauthenticated); alice approved from the UI; fixed once",
        _execution_id(run),
        bucket_actions,
    )


def test_an_expired_decision_does_not_count(aws, bucket_actions, fault_report, monkeypatch):
    monkeypatch.setenv("AIOPS_APPROVAL_TIMEOUT_MINUTES", "0.003")  # 0.18 s
    reload_settings()
    s3, bucket = _public_bucket(bucket_actions, "expired-decision")
    refusals = []

    def decide(run, execution_id):
        time.sleep(0.4)
        refusals.append(_refused(execution_id, "alice"))

    run = _run(bucket, decide)
    assert "expired at" in refusals[0]
    assert ApprovalStore(get_settings()).get(_execution_id(run)).status is ApprovalStatus.EXPIRED
    assert run.audit.outcome.value == "SKIPPED" and "expired" in run.audit.action
    assert not any(public_access_block(s3, bucket).values()) and bucket_actions.count(FIX) == 0
    _report(
        fault_report,
        "decisions: expired decision",
        "alice approved after the request expired",
        "refused (expired); nothing changed",
        _execution_id(run),
        bucket_actions,
    )


def test_a_replayed_decision_is_refused(aws, bucket_actions, fault_report):
    s3, bucket = _public_bucket(bucket_actions, "replayed-decision")
    refusals = []

    def decide(run, execution_id):
        approvals.decide(get_settings(), execution_id, approve=True, approver="alice", reason="ok")
        refusals.append(_refused(execution_id, "alice"))

    run = _run(bucket, decide)
    execution_id = _execution_id(run)
    refusals.append(_refused(execution_id, "carol", approve=False))  # after the run: decided already
    assert all("already APPROVED by alice" in refusal for refusal in refusals)
    assert (run.audit.outcome.value, run.audit.operator) == ("SUCCESS", "alice")
    assert bucket_actions.count(FIX) == 1
    _report(
        fault_report,
        "decisions: replayed decision",
        "alice's approval sent twice; carol rejected the decided request",
        "both refused (already decided); fixed once",
        execution_id,
        bucket_actions,
    )


def test_a_decision_forged_in_xcom_does_not_act(aws, bucket_actions, fault_report):
    """alice rejects; a UI user edits wait_for_approval's result to "auto" and re-runs execute, before and
    after the audit record exists. execute reads the store, so the bucket is never changed."""
    s3, bucket = _public_bucket(bucket_actions, "forged-decision")
    run = InlineRun(REMEDIATION, _conf(bucket), run_id="manual__forged")
    for task_id in ("collect_diagnostics", "check_eligibility", "request_approval"):
        run.records[task_id] = StepRecord(done=call(step_by_id(task_id), run))
    execution_id = _execution_id(run)
    approvals.decide(get_settings(), execution_id, approve=False, approver="alice", reason="public website")
    run.records["wait_for_approval"] = StepRecord(done=call(step_by_id("wait_for_approval"), run))
    run.records["wait_for_approval"] = StepRecord(done=FORGED)  # the edit
    with pytest.raises(StepSkipped, match="rejected by alice") as skipped:
        call(step_by_id("execute"), run)
    run.records["execute"] = StepRecord(skip=skipped.value.record())
    run.records["audit"] = StepRecord(done=call(step_by_id("audit"), run))
    with pytest.raises(StepFailed, match="already has its audit record"):
        call(step_by_id("execute"), run)  # cleared again after the audit
    assert (run.audit.outcome.value, run.audit.operator) == ("SKIPPED", "alice")
    assert ApprovalStore(get_settings()).get(execution_id).status is ApprovalStatus.REJECTED
    assert not any(public_access_block(s3, bucket).values()) and bucket_actions.count(FIX) == 0
    _report(
        fault_report,
        "decisions: decision forged in XCom",
        'rejected, then wait_for_approval edited to {"decision": "auto"} and execute re-run twice',
        "execute refused both times (store says REJECTED; then audited); nothing changed",
        execution_id,
        bucket_actions,
    )


def test_production_needs_two_distinct_approvers(aws, bucket_actions, fault_report, monkeypatch):
    monkeypatch.setenv("AIOPS_PRODUCTION_APPROVALS", "2")
    reload_settings()
    s3, bucket = _public_bucket(bucket_actions, "prod-four-eyes", tags={"Environment": "prod"})
    seen: dict[str, Any] = {}

    def decide(run, execution_id):
        first = approvals.decide(get_settings(), execution_id, approve=True, approver="alice", reason="ok")
        seen["after_one"] = (first.status, first.approvals_required)
        with pytest.raises(StepFailed, match="no decision yet"):  # one approval is not enough to act
            call(step_by_id("execute"), run)
        seen["twice"] = _refused(execution_id, "alice")  # the same person twice is not two
        approvals.decide(
            get_settings(), execution_id, approve=True, approver="bob@example.com", reason="agreed"
        )

    run = _run(bucket, decide)
    assert seen["after_one"] == (ApprovalStatus.PENDING, 2)
    assert "alice already approved" in seen["twice"]
    assert (run.audit.outcome.value, run.audit.operator) == ("SUCCESS", "alice,bob@example.com")
    assert all(public_access_block(s3, bucket).values()) and bucket_actions.count(FIX) == 1
    _report(
        fault_report,
        "decisions: two approvers for production",
        "AIOPS_PRODUCTION_APPROVALS=2: alice approved, execute tried, alice approved again",
        "execute refused after one; second alice refused; bob approved; fixed once",
        _execution_id(run),
        bucket_actions,
    )


def test_a_hand_triggered_run_with_an_event_in_its_conf_is_not_automated(aws, bucket_actions, fault_report):
    """A human may trigger the DAG with an ingress-like event conf: the triggering user, not the conf,
    is the requester, so that human still cannot approve it."""
    s3, bucket = _public_bucket(bucket_actions, "looks-automated")
    refusals = []

    def decide(run, execution_id):
        refusals.append(_refused(execution_id, "carol"))
        approvals.decide(get_settings(), execution_id, approve=False, approver="alice", reason="no")

    run = _run(bucket, decide, requested_by="carol")
    assert "carol requested the run" in refusals[0]
    record = ApprovalStore(get_settings()).get(_execution_id(run))
    assert record.requested_by == "carol" and run.audit.requested_by == "carol"
    assert bucket_actions.count(FIX) == 0
    _report(
        fault_report,
        "decisions: hand-triggered run posing as automated",
        "carol triggered the DAG with an event conf, then approved it",
        "refused (requester); alice rejected; nothing changed",
        _execution_id(run),
        bucket_actions,
    )
