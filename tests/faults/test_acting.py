"""Faults around acting: the task process killed during the change (a real process, against moto_server),
every task cleared and re-run after success, failure and rejection, and two runs on one resource at once.

Each case asserts the four invariants (``tests.faults.invariants.check``) and adds its row to the
session's fault report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from local.scenarios import ssh_rules, world_open_ssh
from matcarv_aiops.models import AuditRecord
from matcarv_aiops.pipeline import StepRecord, call
from matcarv_aiops.pipeline.inline import InlineRun, rerun_inline
from matcarv_aiops.remediations import sg_open_ssh
from matcarv_aiops.safety import SafetyStore
from tests.faults.invariants import ActionLog, audit_records, check
from tests.pipeline.test_intent_marker import APPROVER, open_ssh_conf, run_until
from tests.remediations.conftest import run_remediation
from tests.remediations.stubs import approver

# Not tests.conftest's REPO: importing that module (as the child process would) unsets AWS_ENDPOINT_URL.
REPO = Path(__file__).resolve().parents[2]
REVOKE = "RevokeSecurityGroupIngress"
APPROVERS = [APPROVER]
TASKS = (
    "collect_diagnostics",
    "check_eligibility",
    "request_approval",
    "wait_for_approval",
    "execute",
    "validate",
    "rollback",
    "audit",
)


def short(record: AuditRecord | None, length: int = 110) -> str:
    """The audit record's outcome and the start of its reason, for the report."""
    if record is None:
        return "none"
    action = record.action
    for telling in ("FAILED at ", "resumed after "):  # after the plan: what happened
        if telling in action:
            action = f"{record.outcome.value}: ... {action[action.index(telling) :]}"
            break
    text = action if action.startswith(record.outcome.value) else f"{record.outcome.value}: {action}"
    return text[:length]


# --- SIGKILL of the task process during the action -------------------------------------------------


def attempt_until_killed(
    endpoint: str,
    conf_json: str,
    run_id: str,
    records_path: str,
    calls_path: str,
    flag_path: str,
    moment: str,
) -> None:
    """The child process: the run up to execute (its records saved for the retry, as Airflow keeps the
    XComs of the tasks that finished), then execute, which holds at ``moment`` ("before" or "after" the
    AWS call that revokes the rule), raises the flag and waits to be killed."""
    if not endpoint.startswith("http://127.0.0.1:"):
        raise SystemExit(f"refusing to run against {endpoint!r}: only a local moto_server")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    from matcarv_aiops.aws import _session

    def hold() -> None:
        Path(flag_path).write_text(moment)
        time.sleep(300)

    asked: list[dict] = []

    def note(params, **_) -> None:  # the revoke's parameters, as the ActionLog records them
        asked.append(params)

    def before_call(**_) -> None:  # a before-call handler that returns anything replaces the call
        if moment == "before":
            hold()

    def after_call(**_) -> None:  # the server answered: the revoke was made
        with open(calls_path, "a") as made:
            made.write(json.dumps(asked[-1], default=str) + "\n")
        if moment == "after":
            hold()

    # target_session() and hub_client() hand out this session; clients copy its hooks when created.
    events = _session("us-east-1").events
    events.register(f"provide-client-params.ec2.{REVOKE}", note)
    events.register(f"before-call.ec2.{REVOKE}", before_call)
    events.register(f"after-call.ec2.{REVOKE}", after_call)
    run = run_until("sg_open_ssh", json.loads(conf_json), "execute", run_id=run_id)
    Path(records_path).write_text(json.dumps({task: record.done for task, record in run.records.items()}))
    call(run.step("execute"), run)
    raise SystemExit("execute finished: the parent never killed this process")


@pytest.fixture
def moto_server(settings, monkeypatch):
    """moto_server on a free 127.0.0.1 port, this process and its children pointed at it, the platform
    provisioned there."""
    from moto.server import ThreadedMotoServer

    from matcarv_aiops.provision import provision_platform
    from matcarv_aiops.settings import reload_settings

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()  # moto's backends are per process: start clean
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    hub = reload_settings()
    provision_platform(hub)
    try:
        yield hub
    finally:
        urllib.request.urlopen(reset, timeout=10).close()
        server.stop()


def _kill_during_the_action(tmp_path: Path, moment: str, conf: dict, run_id: str) -> list[dict]:
    """Run execute in a child process, SIGKILL it at ``moment`` and return the revokes it made."""
    paths = {name: tmp_path / f"{name}-{moment}" for name in ("records", "calls", "flag")}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from tests.faults.test_acting import attempt_until_killed; "
            "attempt_until_killed(*sys.argv[1:])",
            os.environ["AWS_ENDPOINT_URL"],
            json.dumps(conf),
            run_id,
            *(str(paths[name]) for name in ("records", "calls", "flag")),
            moment,
        ],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not paths["flag"].exists():
            if child.poll() is not None:
                raise AssertionError(
                    f"the child ended before the action (rc {child.returncode}): {child.stderr.read()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError("the child never reached the action")
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()
    calls = paths["calls"].read_text().splitlines() if paths["calls"].exists() else []
    return [json.loads(line) for line in calls]


@pytest.mark.slow  # a child process and a moto_server: about 25 s each on a loaded machine
@pytest.mark.parametrize("moment", ["before", "after"])
def test_sigkill_during_the_action_then_the_retry(moment, moto_server, tmp_path, fault_report):
    hub = moto_server
    ec2, group = world_open_ssh()
    conf, run_id = open_ssh_conf(group, event_id=f"evt-kill-{moment}"), f"manual__kill_{moment}"
    killed_calls = _kill_during_the_action(tmp_path, moment, conf, run_id)
    assert len(killed_calls) == (1 if moment == "after" else 0)  # made by the killed attempt
    assert ("0.0.0.0/0" in ssh_rules(ec2, group)) == (moment == "before")  # and got it only "after"

    # The retry, as Airflow runs it: the same run and conf, the finished tasks' XComs kept, execute's wiped.
    earlier = InlineRun("sg_open_ssh", conf, run_id=run_id)
    records = json.loads((tmp_path / f"records-{moment}").read_text())
    earlier.records = {task: StepRecord(done=done) for task, done in records.items()}
    log = ActionLog()
    log.calls += [("ec2", REVOKE, params) for params in killed_calls]
    with log.record():
        retry = rerun_inline(earlier, "execute")

    assert log.count(REVOKE) == 1, log.calls  # revoked exactly once, across both processes
    assert ssh_rules(ec2, group) == ["198.51.100.0/24"]
    assert retry.outcome == "SUCCESS", retry.audit
    assert "resumed after an interrupted attempt" in retry.audit.action
    assert "Validated: port 22 is closed to the internet" in retry.audit.action
    assert "already fixed" not in retry.audit.action and retry.audit.operator == APPROVER
    target = retry.result("collect_diagnostics").target.arn
    assert len(SafetyStore(hub).recent_actions("sg_open_ssh", target)) == 1
    found = check(hub, actions=log, approver_group=APPROVERS)
    found.assert_hold()
    fault_report.add(
        f"SIGKILL of the execute task {moment} the AWS call",
        f"worker process killed (SIGKILL) in botocore's {moment}-call of {REVOKE}; "
        "execute retried with its XComs wiped",
        f"{retry.outcome}; rule revoked exactly once; validated",
        short(retry.audit),
        found,
    )


# --- every task cleared and re-run after success, failure and rejection ------------------------------


def _never_waits(step, run):
    raise AssertionError(f"{step.task_id} waits again in a re-run of a decided execution")


def _clear_each_task(hub, finished: InlineRun, log: ActionLog) -> list[str]:
    """Clear each task in turn with its downstream tasks (as "clear" from the API or UI does: their
    XComs wiped, the same run id and conf) and re-run them; check that nothing acts and no record is
    added or changed. Returns how each re-run ended, for the report."""
    records_before = audit_records(hub)
    ended = []
    for task in TASKS:
        calls = len(log.calls)
        again = rerun_inline(finished, task, on_wait=_never_waits)
        assert log.calls[calls:] == [], (task, log.calls[calls:])
        assert audit_records(hub) == records_before, task
        written = again.record("audit").done
        assert written is None or written["written"] is False, (task, written)
        refused = again.record("execute").error
        if refused is not None:
            assert "already has its audit record" in refused and "does not act again" in refused, refused
        assert "execute" not in again.crashed, again.crashed
        ended.append(f"{task}: {refused or _how_it_ended(again)}")
    return ended


def _how_it_ended(run: InlineRun) -> str:
    for task, record in run.records.items():
        if record.skip:
            return f"skipped at {task} ({record.skip['reason'][:60]})"
        if record.error:
            return f"failed at {task} ({record.error[:60]})"
    return "ran without acting"


def _summary(ended: list[str], outcome: str) -> str:
    """One report cell: how many re-runs, and execute's refusal (the same words each time)."""
    refusal = f"already has its audit record ({outcome})"
    refused = sum(refusal in line for line in ended)
    return (
        f"{len(ended)} re-runs, no action and no new audit record in any; execute refused {refused} times: "
        f"'{refusal}: a cleared or re-run execute does not act again'"
    )


def test_every_task_cleared_after_success(aws, actions, fault_report):
    ec2, group = world_open_ssh()
    finished = run_remediation("sg_open_ssh", open_ssh_conf(group), decide=approver(who=APPROVER))
    assert finished.outcome == "SUCCESS", finished.audit
    assert actions.count(REVOKE) == 1
    ended = _clear_each_task(aws, finished, actions)
    assert actions.count(REVOKE) == 1
    assert "execute: execution" in " ".join(ended) and "(SUCCESS)" in " ".join(ended)
    found = check(aws, actions=actions, approver_group=APPROVERS)
    found.assert_hold()
    fault_report.add(
        "each task cleared and re-run after success",
        "clear + re-run of each of the 8 tasks with downstream, XComs wiped",
        _summary(ended, "SUCCESS"),
        short(finished.audit),
        found,
    )


def test_every_task_cleared_after_failure(aws, actions, monkeypatch, fault_report):
    ec2, group = world_open_ssh()
    real_execute = sg_open_ssh.SgOpenSsh.execute

    def execute_then_reopen(self, ctx, state):  # someone opens it again at once: validation fails
        result = real_execute(self, ctx, state)
        ctx.client("ec2").authorize_security_group_ingress(
            GroupId=state["group_id"], IpPermissions=state["open_to_world"]
        )
        return result

    monkeypatch.setattr(sg_open_ssh.SgOpenSsh, "execute", execute_then_reopen)
    finished = run_remediation("sg_open_ssh", open_ssh_conf(group), decide=approver(who=APPROVER))
    monkeypatch.undo()
    assert finished.outcome == "FAILURE" and "validation failed: still open" in finished.audit.action
    actions.calls = [c for c in actions.calls if c[1] != "AuthorizeSecurityGroupIngress"]  # not ours
    ended = _clear_each_task(aws, finished, actions)
    assert actions.count(REVOKE) == 1 and "0.0.0.0/0" in ssh_rules(ec2, group)
    assert "execute: execution" in " ".join(ended) and "(FAILURE)" in " ".join(ended)
    found = check(aws, actions=actions, approver_group=APPROVERS)
    found.assert_hold()
    fault_report.add(
        "each task cleared and re-run after failure",
        "validation failed (rule reopened); then clear + re-run of each task with downstream",
        _summary(ended, "FAILURE"),
        short(finished.audit),
        found,
    )


def test_every_task_cleared_after_rejection(aws, actions, fault_report):
    ec2, group = world_open_ssh()
    rejected = run_remediation(
        "sg_open_ssh", open_ssh_conf(group), decide=approver(decision=False, who=APPROVER)
    )
    assert rejected.outcome == "SKIPPED" and f"rejected by {APPROVER}" in rejected.audit.action
    ended = _clear_each_task(aws, rejected, actions)
    assert actions.count(REVOKE) == 0 and "0.0.0.0/0" in ssh_rules(ec2, group)
    assert "execute: execution" in " ".join(ended) and "(SKIPPED)" in " ".join(ended)
    found = check(aws, actions=actions, approver_group=APPROVERS)
    found.assert_hold()
    fault_report.add(
        "each task cleared and re-run after rejection",
        "rejected by the approver; then clear + re-run of each task with downstream",
        _summary(ended, "SKIPPED"),
        short(rejected.audit),
        found,
    )


# --- two runs on one resource at once ---------------------------------------------------------------


def test_two_concurrent_runs_on_one_resource(aws, actions, monkeypatch, fault_report):
    ec2, group = world_open_ssh()
    real_execute = sg_open_ssh.SgOpenSsh.execute
    first_acting, second_done = threading.Event(), threading.Event()

    def execute_held(self, ctx, state):  # the first run holds mid-action until the second has ended
        if not first_acting.is_set():
            first_acting.set()
            assert second_done.wait(timeout=120), "the second run never ended"
        return real_execute(self, ctx, state)

    monkeypatch.setattr(sg_open_ssh.SgOpenSsh, "execute", execute_held)
    runs: dict[str, InlineRun] = {}

    def first() -> None:
        runs["first"] = run_remediation(
            "sg_open_ssh", open_ssh_conf(group, "evt-first"), run_id="r-first", decide=approver(who=APPROVER)
        )

    worker = threading.Thread(target=first)
    worker.start()
    assert first_acting.wait(timeout=120), "the first run never reached the action"
    try:
        runs["second"] = run_remediation(
            "sg_open_ssh",
            open_ssh_conf(group, "evt-second"),
            run_id="r-second",
            decide=approver(who=APPROVER),
        )
    finally:
        second_done.set()
        worker.join(timeout=120)
    assert runs["first"].outcome == "SUCCESS", runs["first"].audit
    assert runs["second"].outcome == "SKIPPED", runs["second"].audit
    assert "locked: execution" in runs["second"].audit.action
    assert actions.count(REVOKE) == 1
    ids = {name: run.result("collect_diagnostics").execution_id for name, run in runs.items()}
    assert ids["first"] != ids["second"] and set(ids.values()) <= set(audit_records(aws))
    found = check(aws, actions=actions, approver_group=APPROVERS)
    found.assert_hold()
    fault_report.add(
        "two concurrent runs on one resource",
        "two events for one security group, two runs in threads, the second while the first acts",
        f"first {runs['first'].outcome}, second {runs['second'].outcome} (locked); one revoke",
        f"{short(runs['first'].audit, 60)} / {short(runs['second'].audit, 60)}",
        found,
    )
