"""Every claimed execution ends in exactly one true audit record, its metric and alert sent once.

Each case runs a remediation in-process (the inline runner over the step table) while a fault is
injected below the platform's code, then runs the reconciler as its schedule would (past the grace
period, with the DAG run ended), and asserts the four invariants, that the record tells the truth about
the target, and that the after-effects happened exactly once: one alert where the record calls for one,
one metric, cooldown history counting the change once, the lock released.

Faults are injected by wrapping ``BaseClient._make_api_call`` (below boto3's own retries, so "throttled"
means throttled on every try): ``ProvisionedThroughputExceededException`` or a connection error, for the
calls on one table (or one service) while one step runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from matcarv_aiops import METRIC_NAME, METRIC_NAMESPACE, approvals
from matcarv_aiops.models import utc_now
from matcarv_aiops.pipeline import inline
from matcarv_aiops.pipeline.inline import InlineRun
from matcarv_aiops.pipeline.protocol import StepRecord, call
from matcarv_aiops.pipeline.steps import step_by_id
from matcarv_aiops.reconcile import RUN_MISSING, reconcile
from matcarv_aiops.remediations import get_remediation
from matcarv_aiops.remediations.base import Validation
from matcarv_aiops.safety import SafetyStore
from matcarv_aiops.settings import reload_settings
from tests.faults.invariants import ActionLog, audit_records, check
from tests.remediations.conftest import run_remediation
from tests.remediations.notifications import TopicInbox
from tests.remediations.stubs import approver
from tests.remediations.test_sg_open_ssh import SSH_WORLD, _authorize_event, _group, _rules

APPROVERS = ["alice"]


@dataclass
class Outage:
    """Calls on ``table`` (DynamoDB) or to ``service`` fail, every try, while ``step`` runs (None: always);
    ``operations`` narrows it to those API operations. ``hits`` counts the calls refused."""

    service: str
    kind: str  # "throttled" or "unavailable"
    step: str | None
    table: str | None = None
    operations: frozenset[str] = frozenset()
    hits: int = 0
    _running: list[str] = field(default_factory=list)

    def _applies(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        if service != self.service or (self.operations and operation not in self.operations):
            return False
        if self.step is not None and self._running != [self.step]:
            return False
        if self.table is None:
            return True
        return self.table in (params.get("TableName"), *params.get("RequestItems", {}))

    def _fail(self, operation: str) -> Exception:
        self.hits += 1
        if self.kind == "throttled":
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "injected: throttled"}
            return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)
        return EndpointConnectionError(endpoint_url=f"https://{self.service}.us-east-1.amazonaws.com")

    @contextmanager
    def active(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
        original_call, original_api = inline.call, botocore.client.BaseClient._make_api_call
        outage = self

        def step_call(step, run):
            outage._running.append(step.task_id)
            try:
                return original_call(step, run)
            finally:
                outage._running.pop()

        def api_call(client, operation, params):
            if outage._applies(client.meta.service_model.service_name, operation, params):
                raise outage._fail(operation)
            return original_api(client, operation, params)

        monkeypatch.setattr(inline, "call", step_call)
        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", api_call)
        try:
            yield self
        finally:
            monkeypatch.setattr(inline, "call", original_call)
            monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", original_api)


def _ended(run: InlineRun) -> str:
    """The DAG run's state as Airflow would leave it."""
    return "failed" if run.crashed or run.outcome in (None, "FAILURE") else "success"


def _reconcile_later(settings, state: str | None) -> dict:
    """The reconciler as its schedule runs it, after the grace period, reading every run as ``state``."""
    later = utc_now() + timedelta(minutes=settings.safety.reconcile_grace_minutes + 1)
    return reconcile(settings, run_state=lambda dag_id, run_id: state, now=later)


def _metric_count(outcome: str, remediation: str = "sg_open_ssh") -> float:
    """RemediationExecuted sent for this remediation and outcome (the per-remediation datum)."""
    stats = boto3.client("cloudwatch", region_name="us-east-1").get_metric_statistics(
        Namespace=METRIC_NAMESPACE,
        MetricName=METRIC_NAME,
        Dimensions=[{"Name": "Remediation", "Value": remediation}, {"Name": "Outcome", "Value": outcome}],
        StartTime=utc_now() - timedelta(hours=1),
        EndTime=utc_now() + timedelta(hours=1),
        Period=7200,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(point["Sum"] for point in stats)


def _platform_actions(actions: ActionLog) -> ActionLog:
    """The case's actions without the test's own reads of its SNS inbox (SQS ReceiveMessage and
    DeleteMessage, repeated with the same parameters by design): no remediation here touches SQS."""
    inbox_reads = {"ReceiveMessage", "DeleteMessage"}
    return ActionLog(calls=[c for c in actions.calls if not (c[0] == "sqs" and c[1] in inbox_reads)])


def _short(record: dict[str, Any]) -> str:
    """Outcome and short reason; for the reconciler's record, what it says about a possible change."""
    action = record["action"].removeprefix(f"{record['outcome']}: ")
    said = action.partition("recorded by audit_reconciler. ")[2]
    return f"{record['outcome']}: {(f'(reconciler) {said}' if said else action)[:110]}"


def _assert_one_true_record(
    settings, inbox: TopicInbox, execution_id: str, target: str, changed: bool, *, alerts_read: int = 0
):
    """The execution's record, true about the target, with its after-effects exactly once
    (``alerts_read``: alerts the case already took from the inbox)."""
    record = audit_records(settings)[execution_id]
    # A record says the target changed by its outcome, by the reconciler's words, or (a run that failed
    # after acting) by what its rollback did; "nothing to roll back" is a run that never acted.
    action = record["action"].lower()
    acted_then_failed = "rollback" in action and "nothing to roll back" not in action
    says_changed = (
        record["outcome"] == "SUCCESS" or "a change may have been made" in action or acted_then_failed
    )
    assert says_changed == changed, record["action"]
    alerts = inbox.messages("alert")
    assert len(alerts) + alerts_read == (1 if record["outcome"] == "FAILURE" else 0), alerts
    assert _metric_count(record["outcome"]) == 1
    safety = SafetyStore(settings)
    assert len(safety.recent_actions("sg_open_ssh", target)) == (1 if changed else 0)
    assert safety._get(f"lock#{target}") is None
    claim = safety._get(f"execution#{execution_id}")  # none when the claim itself could not be written
    assert claim is None or "settledAt" in claim, claim
    return record


# (table setting, step) pairs where the step really calls that table in an approved sg_open_ssh run.
TABLE_AT_STEP = [
    ("state_table", "collect_diagnostics"),
    ("state_table", "check_eligibility"),
    ("state_table", "execute"),
    ("state_table", "audit"),
    ("approvals_table", "request_approval"),
    ("approvals_table", "wait_for_approval"),
    ("approvals_table", "execute"),
    ("audit_table", "execute"),
    ("audit_table", "audit"),
]


@pytest.mark.parametrize("kind", ["throttled", "unavailable"])
@pytest.mark.parametrize(("table", "step"), TABLE_AT_STEP)
def test_dynamodb_fails_for_one_table_at_one_step(aws, actions, fault_report, monkeypatch, table, step, kind):
    inbox = TopicInbox(aws)
    ec2, group = _group(SSH_WORLD)
    target = f"arn:aws:ec2:us-east-1:123456789012:security-group/{group}"
    outage = Outage("dynamodb", kind, step, table=getattr(aws.platform, table))
    with outage.active(monkeypatch):
        run = run_remediation("sg_open_ssh", {"event": _authorize_event(group)}, decide=approver(who="alice"))
    assert outage.hits > 0, f"{table} was never called during {step}: the case injects nothing"
    _reconcile_later(aws, _ended(run))

    [execution_id] = audit_records(aws)
    changed = _rules(ec2, group) == []
    record = _assert_one_true_record(aws, inbox, execution_id, target, changed)
    invariants = check(aws, actions=_platform_actions(actions), approver_group=APPROVERS)
    invariants.assert_hold()
    fault_report.add(
        f"dynamodb {table} {kind} at {step}",
        f"every call on {getattr(aws.platform, table)} during {step}: {kind} ({outage.hits} refused)",
        f"run {_ended(run)}" + (f", crashed at {', '.join(run.crashed)}" if run.crashed else ""),
        _short(record),
        invariants,
    )


def test_s3_unavailable_during_diagnostics(aws, actions, fault_report, monkeypatch):
    inbox = TopicInbox(aws)
    ec2, group = _group(SSH_WORLD)
    target = f"arn:aws:ec2:us-east-1:123456789012:security-group/{group}"
    outage = Outage("s3", "unavailable", "collect_diagnostics")
    with outage.active(monkeypatch):
        run = run_remediation("sg_open_ssh", {"event": _authorize_event(group)}, decide=approver(who="alice"))
    assert outage.hits == 1 and list(run.crashed) == ["collect_diagnostics"]
    assert run.outcome == "FAILURE" and "FAILED at collect_diagnostics" in run.audit.action
    _reconcile_later(aws, "failed")

    [execution_id] = audit_records(aws)
    record = _assert_one_true_record(aws, inbox, execution_id, target, changed=False)
    invariants = check(aws, actions=_platform_actions(actions), approver_group=APPROVERS)
    invariants.assert_hold()
    fault_report.add(
        "s3 unavailable during diagnostics",
        "S3 PutObject of the diagnostics: connection error",
        "run failed at collect_diagnostics; nothing changed",
        _short(record),
        invariants,
    )


def _waiting_run(group: str, run_id: str = "manual__waiting") -> InlineRun:
    """An sg_open_ssh run up to its approval request, as the DAG leaves it while it waits."""
    run = InlineRun("sg_open_ssh", {"event": _authorize_event(group)}, run_id=run_id)
    for task_id in ("collect_diagnostics", "check_eligibility", "request_approval"):
        run.records[task_id] = StepRecord(done=call(step_by_id(task_id), run))
    assert run.records["request_approval"].done["requested"]
    return run


def test_a_waiting_run_marked_failed(aws, actions, fault_report):
    inbox = TopicInbox(aws)
    ec2, group = _group(SSH_WORLD)
    target = f"arn:aws:ec2:us-east-1:123456789012:security-group/{group}"
    run = _waiting_run(group)
    execution_id = run.result("collect_diagnostics").execution_id
    assert SafetyStore(aws)._get(f"lock#{target}")["executionId"]["S"] == execution_id

    # While the run waits (running in Airflow, or unreadable with the request unexpired) nothing happens.
    assert _reconcile_later(aws, "running")["left"] == [execution_id]
    assert _reconcile_later(aws, None)["left"] == [execution_id]
    assert audit_records(aws) == {}

    # Marked failed from the UI: no audit step will ever run.
    assert _reconcile_later(aws, "failed")["written"] == [execution_id]
    record = _assert_one_true_record(aws, inbox, execution_id, target, changed=False)
    assert "the DAG run is failed" in record["action"] and "Nothing was changed" in record["action"]
    assert "pending approval request was cancelled" in record["action"]
    assert approvals.ApprovalStore(aws).get(execution_id).status.value == "CANCELLED"
    with pytest.raises(approvals.ApprovalError, match="already CANCELLED"):
        approvals.decide(aws, execution_id, approve=True, approver="alice", reason="too late")
    assert _reconcile_later(aws, "failed") == {"written": [], "settled": [], "left": []}  # settled: done
    assert len(inbox.messages("alert")) == 0  # the one alert was read above; none since

    invariants = check(aws, actions=_platform_actions(actions), approver_group=APPROVERS)
    invariants.assert_hold()
    fault_report.add(
        "waiting run marked failed",
        "the run stopped after request_approval (marked failed in the UI)",
        "run failed; approval CANCELLED, lock released by the reconciler",
        _short(record),
        invariants,
    )


def test_lock_release_fails_after_the_record_then_the_audit_step_is_retried(
    aws, actions, fault_report, monkeypatch
):
    inbox = TopicInbox(aws)
    ec2, group = _group(SSH_WORLD)
    target = f"arn:aws:ec2:us-east-1:123456789012:security-group/{group}"
    handler = type(get_remediation("sg_open_ssh"))
    monkeypatch.setattr(handler, "validate", lambda self, ctx, state, result: Validation(False, "injected"))
    outage = Outage(
        "dynamodb",
        "unavailable",
        "audit",
        table=aws.platform.state_table,
        operations=frozenset({"DeleteItem"}),
    )
    with outage.active(monkeypatch):
        run = run_remediation("sg_open_ssh", {"event": _authorize_event(group)}, decide=approver(who="alice"))
    assert outage.hits == 1 and list(run.crashed) == ["audit"] and "lock release" in run.crashed["audit"]
    [execution_id] = audit_records(aws)
    assert audit_records(aws)[execution_id]["outcome"] == "FAILURE"
    assert len(inbox.messages("alert")) == 1  # the lock's trouble did not stop the alert

    retried = call(step_by_id("audit"), run)  # Airflow's retry of the audit task
    assert retried["written"] is False and retried["outcome"] == "FAILURE"
    _reconcile_later(aws, "failed")
    # Not again on the retry, nor by the reconciler.
    record = _assert_one_true_record(aws, inbox, execution_id, target, changed=True, alerts_read=1)
    invariants = check(aws, actions=_platform_actions(actions), approver_group=APPROVERS)
    invariants.assert_hold()
    fault_report.add(
        "lock release fails after the audit record",
        "state table DeleteItem (lock release) unavailable in the audit step, then the step retried",
        "audit crashed, retried: alert once, history once, lock released",
        _short(record),
        invariants,
    )


def test_an_expired_approval_alerts(aws, actions, fault_report, monkeypatch):
    from local.scenarios import public_access_block, public_bucket
    from tests.events import cloudtrail_event

    monkeypatch.setenv("AIOPS_APPROVAL_TIMEOUT_MINUTES", "0")
    settings = reload_settings()
    inbox = TopicInbox(settings)
    s3, bucket = public_bucket()
    event = cloudtrail_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": bucket})
    run = run_remediation("s3_public_access", {"event": event})
    assert run.outcome == "SKIPPED" and "expired" in run.audit.action
    assert not any(public_access_block(s3, bucket).values())  # still public: somebody must be told
    [expired] = inbox.messages("approval_expired")
    assert bucket in expired["Subject"] and "EXPIRED" in expired["Subject"]
    assert "nobody decided on the fix in time" in expired["Message"]

    call(step_by_id("audit"), run)  # a retried audit step
    _reconcile_later(settings, "success")
    assert inbox.messages("approval_expired") == [] and inbox.messages("alert") == []
    assert _metric_count("SKIPPED", "s3_public_access") == 1
    record = audit_records(settings)[run.audit.execution_id]
    invariants = check(settings, actions=_platform_actions(actions), approver_group=APPROVERS)
    invariants.assert_hold()
    fault_report.add(
        "approval expired",
        "nobody decided within the approval timeout (public bucket)",
        "run SKIPPED; approval_expired alert sent once",
        _short(record),
        invariants,
    )


def test_the_reconciler_and_a_late_audit_step_leave_one_record(aws, actions, fault_report):
    """The run's audit step comes after the reconciler wrote the record: the first record stands."""
    inbox = TopicInbox(aws)
    ec2, group = _group(SSH_WORLD)
    target = f"arn:aws:ec2:us-east-1:123456789012:security-group/{group}"
    run = _waiting_run(group, "manual__late")
    execution_id = run.result("collect_diagnostics").execution_id
    _reconcile_later(aws, RUN_MISSING)
    late = call(step_by_id("audit"), run)
    assert late["written"] is False and late["outcome"] == "FAILURE"
    assert "the DAG run no longer exists" in late["action"]
    record = _assert_one_true_record(aws, inbox, execution_id, target, changed=False)
    invariants = check(aws, actions=_platform_actions(actions), approver_group=APPROVERS)
    invariants.assert_hold()
    fault_report.add(
        "reconciler races a late audit step",
        f"the DAG run reads as {RUN_MISSING}; its audit step runs after the reconciler",
        "one record (the reconciler's), alert once",
        _short(record),
        invariants,
    )
