"""The step table and its two runners: the inline runner's trigger rules, the XCom runner's reads, and the
SSM Automation wait (botocore's Stubber with the documented GetAutomationExecution shapes)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import boto3
import botocore.session
import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException
from botocore.stub import Stubber

from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.pipeline import STEPS, StepRecord, XComRun, not_needed, step_by_id, steps_for
from matcarv_aiops.pipeline.inline import run_inline
from matcarv_aiops.pipeline.protocol import (
    ALL_DONE,
    ALL_SUCCESS,
    NONE_FAILED_MIN_ONE_SUCCESS,
    ONE_FAILED,
    Step,
    StepFailed,
    StepSkipped,
)
from matcarv_aiops.pipeline.steps import Execution
from matcarv_aiops.remediations.base import RemediationContext
from matcarv_aiops.ssm import states
from matcarv_sensors.steps import AutomationExecutionSensor

AUTOMATION_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
STARTED = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
ENDED = datetime(2026, 11, 27, 4, 3, tzinfo=UTC)
EC2 = "ec2_status_check_failed"


def test_every_read_names_an_earlier_step():
    seen: list[str] = []
    for step in STEPS:
        assert all(read in seen for read in step.reads), (step.task_id, step.reads, seen)
        assert step.trigger_rule in (ALL_SUCCESS, NONE_FAILED_MIN_ONE_SUCCESS, ONE_FAILED, ALL_DONE)
        assert all(earlier in seen for earlier in step.after), (step.task_id, step.after, seen)
        assert step.doc, f"{step.task_id}: its function needs a docstring (it becomes the task's doc)"
        seen.append(step.task_id)
    assert len(seen) == len(set(seen))


def test_steps_that_may_be_skipped_are_joined_after_the_step_that_skips_them():
    """A step the run may not need is skipped by an earlier step; the step after it must then still run,
    so it also follows the deciding step and runs when none failed and one succeeded. Any other step
    must not: a skip at or before the deciding step has to skip it too."""
    ids = [s.task_id for s in STEPS]
    deciders = [s for s in STEPS if s.may_skip]
    assert deciders, "no step may skip others: the approval steps always run"
    for decider in deciders:
        skippable = [ids.index(t) for t in decider.may_skip]
        assert min(skippable) > ids.index(decider.task_id), decider.task_id
        assert skippable == list(range(min(skippable), max(skippable) + 1)), "skippable steps not in a row"
        assert all(STEPS[i].trigger_rule == ALL_SUCCESS and not STEPS[i].changes for i in skippable)
        joined = STEPS[max(skippable) + 1]
        assert joined.after == (decider.task_id,), joined.task_id
        assert joined.trigger_rule == NONE_FAILED_MIN_ONE_SUCCESS, joined.task_id
    joins = {STEPS[ids.index(d.may_skip[-1]) + 1].task_id for d in deciders}
    for step in STEPS:
        assert bool(step.after) == (step.task_id in joins), step.task_id
        assert (step.trigger_rule == NONE_FAILED_MIN_ONE_SUCCESS) == (step.task_id in joins), step.task_id


def test_a_step_may_name_as_not_needed_only_what_its_row_may_skip():
    decider = step_by_id("check_eligibility")
    assert not_needed(decider, {"not_needed": ["request_approval"]}) == ("request_approval",)
    assert not_needed(decider, {"needs_approval": True}) == ()
    assert not_needed(decider, None) == ()
    with pytest.raises(ValueError, match=r"named \['execute'\] as not needed"):
        not_needed(decider, {"not_needed": ["execute"]})
    with pytest.raises(ValueError, match="may skip only"):
        not_needed(step_by_id("collect_diagnostics"), {"not_needed": ["request_approval"]})


def test_the_runbook_wait_is_only_in_runbook_entries():
    for entry in catalogue().values():
        ids = [s.task_id for s in steps_for(entry)]
        assert ("wait_for_automation" in ids) == bool(entry.ssm_document), entry.id
        assert ids[0] == "collect_diagnostics" and ids[-2:] == ["rollback", "audit"]


# --- the inline runner applies the trigger rules as Airflow does on a chain ----------------------------


def _fake_table(monkeypatch, behaviour):
    """Replace the table by five steps whose functions do what ``behaviour`` says."""
    calls: list[str] = []

    def make(task_id):
        def function(run, *inputs):
            calls.append(task_id)
            action = behaviour.get(task_id)
            if action == "skip":
                raise StepSkipped(f"{task_id} skipped")
            if action == "fail":
                raise StepFailed(f"{task_id} failed")
            if action == "crash":
                raise RuntimeError("boom")
            return {"from": task_id, "inputs": list(inputs)}

        function.__doc__ = f"{task_id}."
        return function

    table = (
        Step("first", make("first")),
        Step("second", make("second"), reads=("first",)),
        Step("third", make("third"), reads=("second",)),
        Step("recover", make("recover"), trigger_rule=ONE_FAILED),
        Step("last", make("last"), trigger_rule=ALL_DONE),
    )
    monkeypatch.setattr("matcarv_aiops.pipeline.inline.steps_for", lambda entry: table)
    return calls


@pytest.mark.parametrize(
    ("behaviour", "ran"),
    [
        ({}, ["first", "second", "third", "last"]),
        ({"second": "skip"}, ["first", "second", "last"]),
        ({"second": "fail"}, ["first", "second", "recover", "last"]),
        ({"first": "crash"}, ["first", "recover", "last"]),
    ],
)
def test_inline_runner_follows_the_trigger_rules(monkeypatch, behaviour, ran):
    calls = _fake_table(monkeypatch, behaviour)
    run = run_inline("sqs_dlq_depth_high", {}, dag_id="remediate_x")
    assert calls == ran
    if not behaviour:
        assert run.records["third"].done == {
            "from": "third",
            "inputs": [{"from": "second", "inputs": [{"from": "first", "inputs": []}]}],
        }
    if behaviour.get("first") == "crash":
        assert run.crashed == {"first": "RuntimeError('boom')"} and not run.record("first").finished


@pytest.mark.parametrize(
    ("decision", "ran"),
    [
        ({"not_needed": ["ask", "wait"]}, ["decide", "act", "last"]),
        ({"not_needed": []}, ["decide", "ask", "wait", "act", "last"]),
        ("skip", ["decide", "last"]),
        ("fail", ["decide", "recover", "last"]),
    ],
)
def test_inline_runner_passes_over_steps_named_not_needed(monkeypatch, decision, ran):
    """As Airflow does: the steps a result names as not needed never run, the step joined after them
    does, and a skip or failure of the deciding step still ends the normal path."""
    calls: list[str] = []

    def make(task_id, result=None):
        def function(run, *inputs):
            calls.append(task_id)
            if task_id == "decide" and decision == "skip":
                raise StepSkipped("gone")
            if task_id == "decide" and decision == "fail":
                raise StepFailed("no")
            return result if result is not None else {"from": task_id}

        function.__doc__ = f"{task_id}."
        return function

    table = (
        Step(
            "decide",
            make("decide", decision if isinstance(decision, dict) else None),
            may_skip=("ask", "wait"),
        ),
        Step("ask", make("ask")),
        Step("wait", make("wait")),
        Step("act", make("act"), after=("decide",), trigger_rule=NONE_FAILED_MIN_ONE_SUCCESS),
        Step("recover", make("recover"), trigger_rule=ONE_FAILED),
        Step("last", make("last"), trigger_rule=ALL_DONE),
    )
    monkeypatch.setattr("matcarv_aiops.pipeline.inline.steps_for", lambda entry: table)
    run = run_inline("sqs_dlq_depth_high", {}, dag_id="remediate_x")
    assert calls == ran
    assert run.not_needed == (set(decision["not_needed"]) if isinstance(decision, dict) else set())
    if isinstance(decision, dict) and decision["not_needed"]:
        assert "ask" not in run.records and "wait" not in run.records  # no record: never run


# --- the XCom runner reads what the table says, from the right tasks ------------------------------------


class FakeTI:
    def __init__(self, xcoms, task_id="execute"):
        self.xcoms, self.pushed, self.pulled, self.task_id = xcoms, {}, [], task_id

    def xcom_pull(self, task_ids, key="return_value"):
        self.pulled.append((task_ids, key))
        return self.xcoms.get((task_ids, key))

    def xcom_push(self, key, value):
        self.pushed[key] = value


def _execution(remediation=EC2) -> Execution:
    return Execution(
        execution_id="3f1c2b9e-1111-4a8e-9c61-0d6a1a1b2c3d",
        remediation=remediation,
        dag_id=f"remediate_{remediation}",
        run_id="r1",
        target={
            "arn": "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0",
            "resource_id": "i-0123456789abcdef0",
            "region": "us-east-1",
            "account": "123456789012",
        },
        dry_run=False,
        trigger="{}",
        diagnostics_uri="s3://b/k",
        production=False,
        state={"instance_id": "i-0123456789abcdef0"},
    )


def test_xcom_run_parses_results_and_ignores_steps_the_dag_lacks():
    ti = FakeTI(
        {
            ("collect_diagnostics", "return_value"): _execution("sqs_dlq_depth_high").model_dump(mode="json"),
            ("execute", "started"): True,
        }
    )
    run = XComRun(
        "sqs_dlq_depth_high",
        {"ti": ti, "dag_run": SimpleNamespace(dag_id="remediate_sqs_dlq_depth_high", run_id="r1", conf={})},
    )
    assert isinstance(run.result("collect_diagnostics"), Execution)
    assert run.record("wait_for_automation") == StepRecord()  # not in this entry's DAG: never pulled
    assert not any(task == "wait_for_automation" for task, _ in ti.pulled)
    assert run.started
    run.mark_started()
    assert ti.pushed == {"started": True}


def test_xcom_run_pulls_each_record_once_per_task():
    """Every pull is an execution API call: a task that reads a step's record three times asks once, and
    asks for a skip or an error only of a step that left no result (one try leaves one of the three)."""
    ti = FakeTI(
        {
            ("collect_diagnostics", "return_value"): _execution("sqs_dlq_depth_high").model_dump(mode="json"),
            ("check_eligibility", "skip"): {"reason": "cooldown", "operator": "automated"},
            ("request_approval", "error"): "approval table unreachable",
        }
    )
    run = XComRun(
        "sqs_dlq_depth_high",
        {"ti": ti, "dag_run": SimpleNamespace(dag_id="remediate_sqs_dlq_depth_high", run_id="r1", conf={})},
    )
    assert run.execution_id == _execution().execution_id
    assert isinstance(run.result("collect_diagnostics"), Execution)
    assert run.record("collect_diagnostics").finished
    assert run.record("check_eligibility").skip == {"reason": "cooldown", "operator": "automated"}
    assert run.record("request_approval").error == "approval table unreachable"
    assert run.record("execute") == StepRecord()
    assert sorted(ti.pulled) == sorted(
        [
            ("collect_diagnostics", "return_value"),
            ("check_eligibility", "return_value"),
            ("check_eligibility", "skip"),
            ("request_approval", "return_value"),
            ("request_approval", "skip"),
            ("request_approval", "error"),
            ("execute", "return_value"),
            ("execute", "skip"),
            ("execute", "error"),
        ]
    )


def test_xcom_run_reads_the_started_flag_only_of_the_step_that_changes():
    ti = FakeTI({("execute", "started"): True}, task_id="audit")
    run = XComRun(
        "sqs_dlq_depth_high",
        {"ti": ti, "dag_run": SimpleNamespace(dag_id="remediate_sqs_dlq_depth_high", run_id="r1", conf={})},
    )
    assert run.started_here
    assert ti.pulled == [("execute", "started")]
    assert [s.task_id for s in STEPS if s.changes] == ["execute"]
    with pytest.raises(RuntimeError, match="'audit' marked the change started"):
        run.mark_started()  # a step that does not change may not claim it did: nobody would read it
    assert ti.pushed == {}


# --- wait_for_automation: the runbook's execution, read in the target's session --------------------------


def _step(name, status, **extra):
    step = {
        "StepName": name,
        "Action": "aws:changeInstanceState",
        "TimeoutSeconds": 300,
        "OnFailure": "Abort",
        "MaxAttempts": 3,
        "ExecutionStartTime": STARTED,
        "StepStatus": status,
        "Inputs": {},
        "Outputs": {},
        "StepExecutionId": f"{name}-0001",
        "IsEnd": False,
        "IsCritical": True,
        **extra,
    }
    if status not in ("Pending", "InProgress"):
        step["ExecutionEndTime"] = ENDED
    return step


def _automation(status, steps, **extra):
    """A GetAutomationExecution AutomationExecution, as the API reference documents it."""
    execution = {
        "AutomationExecutionId": AUTOMATION_ID,
        "DocumentName": "AIOps-EC2StatusCheckRestart",
        "DocumentVersion": "1",
        "ExecutionStartTime": STARTED,
        "AutomationExecutionStatus": status,
        "StepExecutions": steps,
        "StepExecutionsTruncated": False,
        "Mode": "Auto",
        "Parameters": {"InstanceId": ["i-0123456789abcdef0"]},
        "Outputs": {},
        **extra,
    }
    if status not in ("Pending", "InProgress", "Waiting", "Cancelling"):
        execution["ExecutionEndTime"] = ENDED
    return execution


RESPONSES = {
    "Success": _automation("Success", [_step("StopInstance", "Success")]),
    "InProgress": _automation(
        "InProgress", [_step("StopInstance", "InProgress")], CurrentStepName="StopInstance"
    ),
    "Failed": _automation(
        "Failed",
        [_step("StopInstance", "Failed", FailureMessage="IncorrectInstanceState.")],
        FailureMessage="Step fails when it is Execute/Cancelling action.",
    ),
    "TimedOut": _automation(
        "TimedOut",
        [
            _step(
                "ValidateRemediation",
                "TimedOut",
                FailureMessage="Step timed out while verifying the property.",
            )
        ],
    ),
}


@pytest.fixture
def target_ssm(monkeypatch, settings):
    """The SSM client of the target's session, stubbed; the aws backend."""
    monkeypatch.setenv("AIOPS_SSM_BACKEND", "aws")
    from matcarv_aiops.settings import reload_settings

    reload_settings()
    client = boto3.client("ssm", region_name="us-east-1")
    original = RemediationContext.client

    def stubbed(self, service):
        if service != "ssm":
            return original(self, service)
        self.session  # noqa: B018 (as the real client is made: from the target's session, opened here)
        return client

    monkeypatch.setattr(RemediationContext, "client", stubbed)
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _sensor_context(status_stub, status):
    status_stub.add_response(
        "get_automation_execution",
        {"AutomationExecution": RESPONSES[status]},
        {"AutomationExecutionId": AUTOMATION_ID},
    )
    ti = FakeTI(
        {
            ("collect_diagnostics", "return_value"): _execution().model_dump(mode="json"),
            ("execute", "return_value"): {"result": {"automation_execution_id": AUTOMATION_ID}},
        }
    )
    return {"ti": ti, "dag_run": SimpleNamespace(dag_id=f"remediate_{EC2}", run_id="r1", conf={})}


def _sensor():
    return AutomationExecutionSensor(task_id="wait_for_automation", remediation_id=EC2)


def test_statuses_cover_the_api_model_once():
    groups = (states.INTERMEDIATE_STATES, states.FAILURE_STATES, states.SUCCESS_STATES)
    every = [state for group in groups for state in group]
    model = botocore.session.get_session().get_service_model("ssm")
    assert len(every) == len(set(every)) == len(model.shape_for("AutomationExecutionStatus").enum)
    assert set(every) == set(model.shape_for("AutomationExecutionStatus").enum)


def test_sensor_waits_in_reschedule_mode():
    assert _sensor().mode == "reschedule"


def test_sensor_success_hands_the_execution_on(target_ssm):
    result = _sensor().poke(_sensor_context(target_ssm, "Success"))
    assert isinstance(result, PokeReturnValue) and result.is_done
    assert result.xcom_value["AutomationExecutionStatus"] == "Success"
    assert result.xcom_value["ExecutionEndTime"].startswith("2026-11-27 04:03")  # JSON-safe for XCom


def test_sensor_keeps_waiting_while_in_progress(target_ssm):
    assert _sensor().poke(_sensor_context(target_ssm, "InProgress")) is False


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("Failed", "ended Failed: step StopInstance Failed: IncorrectInstanceState."),
        ("TimedOut", "ended TimedOut: step ValidateRemediation TimedOut: Step timed out while verifying"),
    ],
)
def test_sensor_failure_names_the_failed_step_for_the_audit(target_ssm, status, words):
    context = _sensor_context(target_ssm, status)
    with pytest.raises(AirflowFailException, match=words):
        _sensor().poke(context)
    assert words in context["ti"].pushed["error"]  # what the audit record quotes


def test_xcom_run_reads_started_from_the_intent_marker_once_the_xcoms_are_wiped(aws):
    from matcarv_aiops.safety import SafetyStore

    execution = _execution("sqs_dlq_depth_high")
    ti = FakeTI({("collect_diagnostics", "return_value"): execution.model_dump(mode="json")})
    context = {
        "ti": ti,
        "dag_run": SimpleNamespace(dag_id="remediate_sqs_dlq_depth_high", run_id="r1", conf={}),
    }
    run = XComRun("sqs_dlq_depth_high", context)
    assert not run.started  # no flag, no marker: nothing can have changed
    SafetyStore(aws).mark_intent(execution.execution_id, "r1", "redrive")
    assert run.started and not run.started_here


def test_sensor_watches_through_the_target_accounts_session(assume_calls, target_ssm):
    """The runbook was started in the member account: the sensor assumes the entry's role there, named
    after the execution and carrying the human who allowed the change, never the hub's credentials."""
    context = _sensor_context(target_ssm, "Success")
    context["ti"].xcoms[("execute", "return_value")]["operator"] = "alice"
    assert _sensor().poke(context).is_done
    [call] = assume_calls
    execution = _execution()
    assert call["RoleArn"] == f"arn:aws:iam::{execution.target.account}:role/AIOpsRemediation-{EC2}"
    assert (call["RoleSessionName"], call["SourceIdentity"]) == (execution.execution_id, "alice")
    assert execution.target.arn in call["Policy"]
