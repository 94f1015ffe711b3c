"""Fault cases that need the real Airflow: what a UI or API user can do to a finished run (edit an XCom,
clear a task with everything downstream, approve their own request), on the session's local stack. Each
ends with the four invariants of tests/faults/invariants.py read from the stack's own tables."""

from __future__ import annotations

import pytest

from local import scenarios
from local.stack import ADMIN_USER, APPROVER_USER
from matcarv_aiops.settings import get_settings
from tests.e2e.test_local_stack import audit_for, decide, dlq_alarm, pending_request, send
from tests.events import cloudtrail_event
from tests.faults.invariants import Invariants, check

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def clear_from(stack, dag_id: str, run_id: str, task_id: str) -> None:
    """What "Clear" with "Downstream" does in the UI: the task and everything after it run again."""
    status, body = stack.api(
        "POST",
        f"/dags/{dag_id}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [task_id],
            "include_downstream": True,
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    assert status == 200, body
    assert task_id in {ti["task_id"] for ti in body["task_instances"]}, body


def task_state(stack, dag_id: str, run_id: str, task_id: str) -> str | None:
    status, body = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
    assert status == 200, body
    return body["state"]


def invariants_on(stack, *, extra_changes: int) -> Invariants:
    """The four invariants on the stack's tables; the tasks ran in Airflow's processes, so the case
    counts the extra changes it saw on the resource itself."""
    return check(get_settings(), double_actions=extra_changes, approver_group=[APPROVER_USER])


def test_a_forged_decision_and_a_cleared_execute_do_not_act_after_a_rejection(stack_env, fault_report):
    """The attack the issue reports: alice rejects; a user who can edit XCom sets wait_for_approval's
    result to {"decision": "auto"} and clears execute with everything downstream."""
    s3, bucket = scenarios.public_bucket("e2e-forged-bucket")
    dag_id, run_id = send(
        stack_env, cloudtrail_event("s3", "PutBucketAcl", {"bucketName": bucket}), "s3_public_access"
    )
    decide(stack_env, pending_request(stack_env, ":::e2e-forged-bucket"), "reject")
    stack_env.wait_for_run(dag_id, run_id, timeout=300)
    status, body = stack_env.api(
        "PATCH",
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/wait_for_approval/xcomEntries/return_value",
        {"value": {"decision": "auto", "operator": "automated", "reason": "forged"}},
    )
    assert status == 200, body
    clear_from(stack_env, dag_id, run_id, "execute")
    stack_env.wait_for_run(dag_id, run_id, timeout=300)

    assert task_state(stack_env, dag_id, run_id, "execute") in ("skipped", "failed")
    changed = any(scenarios.public_access_block(s3, bucket).values())
    (record,) = audit_for(stack_env, ":::e2e-forged-bucket")
    assert (record["outcome"], record["operator"]) == ("SKIPPED", APPROVER_USER)
    assert "rejected by alice" in record["action"]
    # After a rejection, any change is one too many.
    found = invariants_on(stack_env, extra_changes=int(changed))
    fault_report.add(
        "forged decision in XCom + execute cleared (stack)",
        "after alice rejected: wait_for_approval's XCom PATCHed to auto, execute cleared with downstream",
        f"execute {task_state(stack_env, dag_id, run_id, 'execute')}; "
        f"bucket {'CHANGED' if changed else 'unchanged'}",
        f"exactly one: {record['outcome']} ({record['action'][:60]})",
        found,
    )
    found.assert_hold()


def test_clearing_execute_after_success_does_not_act_again(stack_env, fault_report):
    sqs, dlq, source = scenarios.dead_letter_queue(120, name="e2e-cleared-dlq")
    dag_id, run_id = send(stack_env, dlq_alarm("e2e-cleared-dlq"), "sqs_dlq_depth_high")
    assert stack_env.wait_for_run(dag_id, run_id, timeout=300)["state"] == "success"
    assert scenarios.queue_depth(sqs, dlq) == 0 and scenarios.queue_depth(sqs, source) == 120
    scenarios.add_messages(sqs, dlq, 30)  # new failures: a second redrive would move them
    clear_from(stack_env, dag_id, run_id, "execute")
    stack_env.wait_for_run(dag_id, run_id, timeout=300)

    assert task_state(stack_env, dag_id, run_id, "execute") == "failed"
    assert scenarios.queue_depth(sqs, source) in (120, 150)
    moved_again = scenarios.queue_depth(sqs, source) - 120  # a second redrive would move the new 30
    (record,) = audit_for(stack_env, ":e2e-cleared-dlq")
    assert record["outcome"] == "SUCCESS"
    found = invariants_on(stack_env, extra_changes=int(moved_again > 0))
    fault_report.add(
        "execute cleared after success (stack)",
        "Clear execute + downstream from the API on a successful run",
        "execute refused: the execution already has its audit record",
        f"exactly one: {record['outcome']} (the first record stands)",
        found,
    )
    found.assert_hold()


def test_the_requester_cannot_approve_their_own_run(stack_env, fault_report):
    """admin starts a remediation by hand and approves it himself: refused; alice's approval counts."""
    s3, bucket = scenarios.public_bucket("e2e-self-approved-bucket")
    status, body = stack_env.api(
        "POST",
        "/dags/remediate_s3_public_access/dagRuns",
        {"logical_date": None, "conf": {"target": f"arn:aws:s3:::{bucket}", "reason": "by hand"}},
    )
    assert status in (200, 201), body
    run_id = body["dag_run_id"]
    execution = pending_request(stack_env, ":::e2e-self-approved-bucket")
    status, body = stack_env.api(
        "POST",
        "/dags/approve_remediation/dagRuns",
        {
            "dag_run_id": f"self_{execution}",
            "logical_date": None,
            "conf": {"execution_id": execution, "decision": "approve", "reason": "my own change"},
        },
        user=ADMIN_USER,
    )
    assert status in (200, 201), body
    assert stack_env.wait_for_run("approve_remediation", f"self_{execution}")["state"] == "failed"
    acted_on_self_approval = any(scenarios.public_access_block(s3, bucket).values())

    decide(stack_env, execution, "approve")  # alice, who did not request it
    assert stack_env.wait_for_run("remediate_s3_public_access", run_id, timeout=300)["state"] == "success"
    (record,) = audit_for(stack_env, ":::e2e-self-approved-bucket")
    assert (record["outcome"], record["operator"], record["requestedBy"]) == (
        "SUCCESS",
        APPROVER_USER,
        ADMIN_USER,
    )
    found = invariants_on(stack_env, extra_changes=int(acted_on_self_approval))
    fault_report.add(
        "self-approval (stack)",
        "admin triggers remediate_s3_public_access by hand, then approves it himself",
        "admin's approve_remediation run failed; alice's approval counted",
        f"exactly one: {record['outcome']}, operator {record['operator']}, "
        f"requested by {record['requestedBy']}",
        found,
    )
    found.assert_hold()
