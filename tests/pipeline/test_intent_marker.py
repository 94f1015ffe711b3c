"""The intent marker: execute writes it before the first change (with who allowed it) and the change's
result right after; a retry of execute, whose XComs Airflow wiped, finds it and resumes instead of acting
again or reporting "already fixed"; rollback and the audit read "a change may have been made" from it."""

from __future__ import annotations

import json

import pytest

from local.scenarios import failing_instance, world_open_ssh
from matcarv_aiops import approvals
from matcarv_aiops.pipeline import StepFailed, StepRecord, call
from matcarv_aiops.pipeline.inline import InlineRun, rerun_inline
from matcarv_aiops.remediations import iam_access_key_old, sg_open_ssh
from matcarv_aiops.safety import SafetyStore
from tests.events import cloudtrail_event, config_compliance_event
from tests.faults.invariants import ActionLog
from tests.remediations.iam_setup import key_status, user_with_keys

APPROVER = "arn:aws:iam::123456789012:user/oncall"


class WorkerLost(RuntimeError):
    """The task process died here (the inline stand-in for a killed worker)."""


def open_ssh_conf(group: str, event_id: str = "evt-open-ssh") -> dict:
    permissions = {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {}}]}
    event = cloudtrail_event(
        "ec2",
        "AuthorizeSecurityGroupIngress",
        {"groupId": group, "ipPermissions": permissions},
        event_id=event_id,
    )
    return {"event": event}


def old_key_conf(user_id: str) -> dict:
    return {"event": config_compliance_event("access-keys-rotated", "AWS::IAM::User", user_id)}


def run_until(remediation_id: str, conf: dict, task_id: str, *, run_id: str = "manual__intent") -> InlineRun:
    """The run's steps before ``task_id``, as the DAG leaves them when ``task_id`` starts; a wait for a
    human is approved by APPROVER."""
    run = InlineRun(remediation_id, conf, run_id=run_id)
    for step in run.steps:
        if step.task_id == task_id:
            return run
        result = call(step, run)
        if result is None and step.task_id == "wait_for_approval":
            execution_id = run.result("collect_diagnostics").execution_id
            approvals.decide(run.settings, execution_id, approve=True, approver=APPROVER, reason="ok")
            result = call(step, run)
        run.records[step.task_id] = StepRecord(done=result)
    raise AssertionError(f"{remediation_id} has no step {task_id}")


def execution_id(run: InlineRun) -> str:
    return run.result("collect_diagnostics").execution_id


def lose_the_worker_after_recording(monkeypatch) -> None:
    """The worker dies right after the change's result reached the intent marker."""
    record = SafetyStore.record_intent_result

    def then_die(self, execution, result):
        record(self, execution, result)
        raise WorkerLost("killed after the change")

    monkeypatch.setattr(SafetyStore, "record_intent_result", then_die)


def lose_the_worker_before_recording(monkeypatch) -> None:
    """The worker dies after the change, before its result reached the intent marker."""

    def die(self, execution, result):
        raise WorkerLost("killed after the change")

    monkeypatch.setattr(SafetyStore, "record_intent_result", die)


def test_the_marker_is_written_before_the_change_and_the_result_after(aws, monkeypatch):
    ec2, group = world_open_ssh()
    run = run_until("sg_open_ssh", open_ssh_conf(group), "execute")
    real_execute = sg_open_ssh.SgOpenSsh.execute
    seen_before_the_change: list[dict | None] = []

    def execute(self, ctx, state):
        seen_before_the_change.append(SafetyStore(aws).intent(ctx.execution_id))
        return real_execute(self, ctx, state)

    monkeypatch.setattr(sg_open_ssh.SgOpenSsh, "execute", execute)
    acted = call(run.step("execute"), run)
    [before] = seen_before_the_change
    assert before is not None and "result" not in before
    assert (before["runId"], before["operator"]) == ("manual__intent", APPROVER)
    marker = SafetyStore(aws).intent(execution_id(run))
    assert marker is not None and json.loads(marker["result"]) == acted["result"]
    assert marker["startedAt"] <= marker["changedAt"]


def test_started_comes_from_the_store_after_the_xcoms_are_wiped(aws):
    ec2, group = world_open_ssh()
    run = run_until("sg_open_ssh", open_ssh_conf(group), "execute")
    wiped = InlineRun("sg_open_ssh", run.conf, run_id=run.run_id)
    wiped.records["collect_diagnostics"] = run.records["collect_diagnostics"]
    assert not wiped.started  # nothing acted yet
    call(run.step("execute"), run)
    assert wiped.started and not wiped.started_here  # only the marker says so
    assert not InlineRun("sg_open_ssh", run.conf, run_id=run.run_id).started  # no execution: nothing


def test_a_retry_after_the_change_resumes_with_the_recorded_result(aws, monkeypatch):
    ec2, group = world_open_ssh()
    run = run_until("sg_open_ssh", open_ssh_conf(group), "execute")
    log = ActionLog()
    with log.record():
        lose_the_worker_after_recording(monkeypatch)
        with pytest.raises(WorkerLost):
            call(run.step("execute"), run)
        monkeypatch.undo()
        retry = rerun_inline(run, "execute")
    assert retry.outcome == "SUCCESS", retry.audit
    assert "resumed after an interrupted attempt" in retry.audit.action
    assert "was made at" in retry.audit.action and "not made again" in retry.audit.action
    assert "already fixed" not in retry.audit.action
    assert retry.audit.operator == APPROVER
    assert log.count("RevokeSecurityGroupIngress") == 1 and log.double_actions() == 0
    target = retry.result("collect_diagnostics").target.arn
    assert len(SafetyStore(aws).recent_actions("sg_open_ssh", target)) == 1  # cooldown counts it


def test_a_resumable_change_whose_result_was_lost_is_finished_once(aws, monkeypatch):
    ec2, group = world_open_ssh()
    run = run_until("sg_open_ssh", open_ssh_conf(group), "execute")

    def die_before_the_call(self, ctx, state):
        raise WorkerLost("killed before the AWS call")

    log = ActionLog()
    with log.record():
        monkeypatch.setattr(sg_open_ssh.SgOpenSsh, "execute", die_before_the_call)
        with pytest.raises(WorkerLost):
            call(run.step("execute"), run)
        monkeypatch.undo()
        retry = rerun_inline(run, "execute")
    assert retry.outcome == "SUCCESS", retry.audit
    assert "its result was not recorded, so only what was still missing was done" in retry.audit.action
    assert log.count("RevokeSecurityGroupIngress") == 1
    assert json.loads(SafetyStore(aws).intent(execution_id(run))["result"])["revoked"]


def test_a_change_whose_result_was_lost_is_not_repeated_and_validation_decides(aws, monkeypatch):
    iam, user_id, (old, new) = user_with_keys("deploy-bot", [120, 10])
    run = run_until("iam_access_key_old", old_key_conf(user_id), "execute")
    log = ActionLog()
    with log.record():
        lose_the_worker_before_recording(monkeypatch)
        with pytest.raises(WorkerLost):
            call(run.step("execute"), run)
        monkeypatch.undo()
        assert key_status(iam, "deploy-bot") == {old: "Inactive", new: "Active"}  # the change was made
        retry = rerun_inline(run, "execute")
    assert retry.record("execute").done["result"] is None
    assert retry.outcome == "FAILURE", retry.audit
    assert "validation failed (resumed after an interrupted attempt" in retry.audit.action
    assert "result was not recorded, so which access keys it disabled cannot be checked" in retry.audit.action
    assert "Rollback: re-enabled access key(s)" in retry.audit.action
    disabled = [c for c in log.calls if c[1] == "UpdateAccessKey" and c[2]["Status"] == "Inactive"]
    assert len(disabled) == 1  # acted once, never again
    assert key_status(iam, "deploy-bot") == {old: "Active", new: "Active"}


def test_rollback_after_a_lost_worker_undoes_with_the_recorded_result(aws, monkeypatch):
    iam, user_id, (old, new) = user_with_keys("deploy-bot", [120, 10])
    run = run_until("iam_access_key_old", old_key_conf(user_id), "execute")
    real_rollback = iam_access_key_old.IamAccessKeyOld.rollback
    given: list[dict | None] = []

    def rollback(self, ctx, state, result):
        given.append(result)
        return real_rollback(self, ctx, state, result)

    monkeypatch.setattr(iam_access_key_old.IamAccessKeyOld, "rollback", rollback)
    lose_the_worker_after_recording(monkeypatch)
    ended = rerun_inline(run, "execute")  # execute crashes with no retry left: rollback, then audit
    assert "execute" in ended.crashed and ended.record("execute").done is None
    assert given and given[0] is not None and given[0]["disabled"] == [old]
    assert ended.outcome == "FAILURE" and f"Rollback: re-enabled access key(s) {old}" in ended.audit.action
    assert key_status(iam, "deploy-bot") == {old: "Active", new: "Active"}


def test_a_cleared_execute_with_a_marker_and_an_audit_record_refuses(aws):
    ec2, group = world_open_ssh()
    run = run_until("sg_open_ssh", open_ssh_conf(group), "execute")
    finished = rerun_inline(run, "execute")
    assert finished.outcome == "SUCCESS" and SafetyStore(aws).intent(execution_id(run)) is not None
    log = ActionLog()
    with log.record():
        cleared = rerun_inline(finished, "execute")
    assert "already has its audit record (SUCCESS)" in cleared.record("execute").error
    assert cleared.record("audit").done["written"] is False
    assert log.calls == []


def test_a_runbook_started_by_an_interrupted_attempt_with_no_recorded_id_fails_for_a_human(aws):
    ec2, instance = failing_instance()
    run = run_until("ec2_status_check_failed", {"target": _instance_arn(instance)}, "execute")
    run.records["execute"] = StepRecord(done={"result": None, "operator": "automated", "resumed": True})
    with pytest.raises(StepFailed, match="execution it may have started was not recorded"):
        call(run.step("wait_for_automation"), run)


def _instance_arn(instance: str) -> str:
    return f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}"
