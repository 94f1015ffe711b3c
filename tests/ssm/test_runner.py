"""The local runner's semantics on small purpose-built documents: failure, retries, timeouts, onFailure /
onCancel / isCritical / isEnd / nextStep, branches, references, parameters, and what it refuses."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

from aiops_local.ssm_emulator.jsonpath import MISSING, select
from aiops_local.ssm_emulator.runner import (
    ParameterError,
    UnsupportedError,
    parse_duration,
)
from matcarv_aiops.ssm.document import DocumentError, parse
from tests.ssm.conftest import (
    BUCKET,
    REGION,
    client,
    object_body,
    run_instance,
    steps_by_name,
    write_document,
)

COUNTING_SCRIPT = """
import boto3

def handler(events, context):
    s3 = boto3.client("s3")
    key = "attempts/" + events["Name"]
    try:
        count = int(s3.get_object(Bucket=events["Bucket"], Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        count = 0
    count += 1
    s3.put_object(Bucket=events["Bucket"], Key=key, Body=str(count).encode())
    if count < events["SucceedOnAttempt"]:
        raise RuntimeError(f"attempt {count} fails on purpose")
    return {"Attempts": count}
"""


def counting_step(name: str, succeed_on: int, **extra) -> dict:
    return {
        "name": name,
        "action": "aws:executeScript",
        **extra,
        "inputs": {
            "Runtime": "python3.11",
            "Handler": "handler",
            "Script": COUNTING_SCRIPT,
            "InputPayload": {"Name": name, "Bucket": BUCKET, "SucceedOnAttempt": succeed_on},
        },
        "outputs": [{"Name": "Attempts", "Selector": "$.Payload.Attempts", "Type": "Integer"}],
    }


def attempts(name: str) -> int:
    return int(object_body(f"attempts/{name}"))


def api_step(name: str, **extra) -> dict:
    return {
        "name": name,
        "action": "aws:executeAwsApi",
        **extra,
        "inputs": {"Service": "s3", "Api": "PutObject", "Bucket": BUCKET, "Key": f"ran/{name}", "Body": name},
    }


def ran(name: str) -> bool:
    try:
        object_body(f"ran/{name}")
        return True
    except client("s3").exceptions.NoSuchKey:
        return False


# -- failure, retries, timeouts ----------------------------------------------------------------------


def test_retries_until_an_attempt_succeeds(moto_aws, runner, tmp_path):
    doc = write_document(tmp_path, "Retry", [counting_step("Flaky", succeed_on=3, maxAttempts=3)])
    execution = runner.run(doc)
    assert execution["AutomationExecutionStatus"] == "Success"
    assert attempts("Flaky") == 3
    assert steps_by_name(execution)["Flaky"]["Outputs"]["Attempts"] == ["3"]


def test_a_failing_step_with_abort_stops_the_execution_after_max_attempts(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Abort",
        [
            counting_step("Broken", succeed_on=99, maxAttempts=3, onFailure="Abort"),
            api_step("After"),
        ],
    )
    execution = runner.run(doc)
    assert execution["AutomationExecutionStatus"] == "Failed"
    assert attempts("Broken") == 3
    broken = steps_by_name(execution)["Broken"]
    assert broken["StepStatus"] == "Failed"
    assert broken["FailureMessage"] == (
        "Script handler handler raised RuntimeError: attempt 3 fails on purpose (attempt 3 of 3)"
    )
    assert broken["FailureDetails"]["FailureStage"] == "Execution"
    assert steps_by_name(execution)["After"]["StepStatus"] == "Pending" and not ran("After")
    assert "Step Broken (aws:executeScript) Failed" in execution["FailureMessage"]


def test_a_wait_that_never_matches_times_out(moto_aws, runner, tmp_path):
    instance = run_instance()
    runner.poll_interval = 0.25
    doc = write_document(
        tmp_path,
        "Timeout",
        [
            {
                "name": "WaitStopped",
                "action": "aws:waitForAwsResourceProperty",
                "timeoutSeconds": 1,
                "maxAttempts": 2,
                "inputs": {
                    "Service": "ec2",
                    "Api": "DescribeInstances",
                    "InstanceIds": ["{{ InstanceId }}"],
                    "PropertySelector": "$.Reservations[0].Instances[0].State.Name",
                    "DesiredValues": ["stopped"],
                },
            },
            api_step("After"),
        ],
        parameters={"InstanceId": {"type": "String"}},
    )
    started = time.monotonic()
    execution = runner.run(doc, {"InstanceId": instance})
    elapsed = time.monotonic() - started
    assert execution["AutomationExecutionStatus"] == "TimedOut"
    step = steps_by_name(execution)["WaitStopped"]
    assert step["StepStatus"] == "TimedOut" and step["FailureDetails"]["FailureType"] == "Timeout"
    assert "was still 'running', waiting for one of ['stopped']" in step["FailureMessage"]
    assert step["FailureMessage"].endswith("(attempt 2 of 2)")
    assert 2 <= elapsed < 10  # two attempts of one second each
    assert not ran("After")


def test_a_script_that_overruns_times_out(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "SlowScript",
        [
            {
                "name": "Slow",
                "action": "aws:executeScript",
                "timeoutSeconds": 1,
                "inputs": {
                    "Runtime": "python3.11",
                    "Handler": "slow",
                    "Script": "import time\ndef slow(events, context):\n    time.sleep(2)\n",
                },
            }
        ],
    )
    execution = runner.run(doc)
    assert execution["AutomationExecutionStatus"] == "TimedOut"
    assert "did not return within 1 seconds" in steps_by_name(execution)["Slow"]["FailureMessage"]


# -- flow: onFailure, isCritical, isEnd, nextStep ------------------------------------------------------


def test_on_failure_continue_is_not_critical_by_default(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Continue",
        [
            counting_step("Optional", succeed_on=99, maxAttempts=1, onFailure="Continue"),
            api_step("After"),
        ],
    )
    execution = runner.run(doc)
    assert execution["AutomationExecutionStatus"] == "Success"
    assert steps_by_name(execution)["Optional"]["StepStatus"] == "Failed" and ran("After")


def test_on_failure_step_runs_the_handler_and_still_fails_a_critical_step(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Handler",
        [
            counting_step("Broken", succeed_on=99, onFailure="step:Cleanup"),
            api_step("Skipped"),
            api_step("Cleanup", isEnd=True),
        ],
    )
    execution = runner.run(doc)
    assert execution["AutomationExecutionStatus"] == "Failed"
    assert ran("Cleanup") and not ran("Skipped")


def test_on_failure_step_of_a_non_critical_step_succeeds(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Graceful",
        [
            counting_step("Check", succeed_on=99, onFailure="step:Exit", isCritical=False),
            api_step("Act"),
            api_step("Exit", isEnd=True),
        ],
    )
    execution = runner.run(doc)
    assert execution["AutomationExecutionStatus"] == "Success"
    assert ran("Exit") and not ran("Act")


def test_next_step_and_is_end(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Jump",
        [
            api_step("First", nextStep="Third"),
            api_step("Second"),
            api_step("Third", isEnd=True),
            api_step("Fourth"),
        ],
    )
    execution = runner.run(doc)
    assert [s["StepName"] for s in execution["StepExecutions"] if s["StepStatus"] == "Success"] == [
        "First",
        "Third",
    ]
    assert {s["StepName"]: s["StepStatus"] for s in execution["StepExecutions"]}["Second"] == "Pending"
    assert not ran("Second") and not ran("Fourth")


def test_a_loop_is_stopped(moto_aws, tmp_path, monkeypatch):
    from aiops_local.ssm_emulator import runner as runner_module

    monkeypatch.setattr(runner_module, "MAX_STEP_EXECUTIONS", 25)
    doc = write_document(tmp_path, "Loop", [api_step("Again", nextStep="Again")])
    execution = runner_module.LocalAutomationRunner(poll_interval=0, retry_delay=0).run(doc)
    assert execution["AutomationExecutionStatus"] == "Failed"
    assert f"stopped after {runner_module.MAX_STEP_EXECUTIONS} step executions" in execution["FailureMessage"]


# -- cancellation ----------------------------------------------------------------------------------------


def test_cancel_runs_the_on_cancel_step_and_ends_cancelled(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Cancel",
        [
            {
                "name": "Nap",
                "action": "aws:sleep",
                "onCancel": "step:Cleanup",
                "inputs": {"Duration": "PT30S"},
            },
            api_step("Act"),
            api_step("Cleanup", isEnd=True),
        ],
    )
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    execution = runner.run(doc, cancel=cancel)
    assert time.monotonic() - started < 10
    assert execution["AutomationExecutionStatus"] == "Cancelled"
    steps = steps_by_name(execution)
    assert steps["Nap"]["StepStatus"] == "Cancelled" and steps["Cleanup"]["StepStatus"] == "Success"
    assert not ran("Act") and ran("Cleanup")


def test_cancel_with_abort_stops_at_once(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "CancelAbort",
        [
            {"name": "Nap", "action": "aws:sleep", "onCancel": "Abort", "inputs": {"Duration": "PT30S"}},
            api_step("Act"),
        ],
    )
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    execution = runner.run(doc, cancel=cancel)
    assert execution["AutomationExecutionStatus"] == "Cancelled" and not ran("Act")


# -- branches and references --------------------------------------------------------------------------

BRANCH_PARAMETERS = {
    "Count": {"type": "Integer"},
    "Tags": {"type": "StringList"},
    "Flag": {"type": "Boolean"},
    "Name": {"type": "String"},
}


@pytest.mark.parametrize(
    ("choice", "params", "expected"),
    [
        ({"Variable": "{{ Count }}", "NumericGreater": 2}, {"Count": "3"}, "Yes"),
        ({"Variable": "{{ Count }}", "NumericGreater": 2}, {"Count": "2"}, "No"),
        ({"Variable": "{{ Count }}", "NumericLesserOrEquals": 2}, {"Count": "2"}, "Yes"),
        ({"Variable": "{{ Tags }}", "Contains": "prod"}, {"Tags": "dev,prod"}, "Yes"),
        ({"Variable": "{{ Tags }}", "Contains": "prod"}, {"Tags": '["production"]'}, "No"),
        ({"Variable": "{{ Flag }}", "BooleanEquals": True}, {"Flag": "true"}, "Yes"),
        ({"Not": {"Variable": "{{ Flag }}", "BooleanEquals": True}}, {"Flag": "true"}, "No"),
        (
            {
                "Or": [
                    {"Variable": "{{ Name }}", "StartsWith": "web"},
                    {"Variable": "{{ Name }}", "EqualsIgnoreCase": "API"},
                ]
            },
            {"Name": "api"},
            "Yes",
        ),
        (
            {
                "And": [
                    {"Variable": "{{ Name }}", "EndsWith": "-1"},
                    {"Variable": "{{ Count }}", "NumericEquals": 1},
                ]
            },
            {"Name": "db-1", "Count": "2"},
            "No",
        ),
    ],
)
def test_branch_operators(moto_aws, runner, tmp_path, choice, params, expected):
    defaults = {"Count": "0", "Tags": "x", "Flag": "false", "Name": "n"}
    doc = write_document(
        tmp_path,
        "Branch",
        [
            {
                "name": "Decide",
                "action": "aws:branch",
                "inputs": {"Choices": [{"NextStep": "Yes", **choice}], "Default": "No"},
            },
            api_step("Yes", isEnd=True),
            api_step("No", isEnd=True),
        ],
        parameters=BRANCH_PARAMETERS,
    )
    execution = runner.run(doc, {**defaults, **params})
    assert steps_by_name(execution)["Decide"]["NextStep"] == expected
    assert ran(expected) and not ran({"Yes": "No", "No": "Yes"}[expected])


def test_a_branch_without_default_falls_through(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "FallThrough",
        [
            {
                "name": "Decide",
                "action": "aws:branch",
                "inputs": {
                    "Choices": [{"NextStep": "Elsewhere", "Variable": "{{ Name }}", "StringEquals": "x"}]
                },
            },
            api_step("Next", isEnd=True),
            api_step("Elsewhere"),
        ],
        parameters={"Name": {"type": "String"}},
    )
    runner.run(doc, {"Name": "y"})
    assert ran("Next") and not ran("Elsewhere")


def test_references_selectors_and_system_variables(moto_aws, runner, tmp_path):
    instance = run_instance()
    doc = write_document(
        tmp_path,
        "Refs",
        [
            {
                "name": "Describe",
                "action": "aws:executeAwsApi",
                "inputs": {"Service": "ec2", "Api": "DescribeInstances", "InstanceIds": ["{{ InstanceId }}"]},
                "outputs": [
                    {
                        "Name": "State",
                        "Selector": "$.Reservations[0].Instances[0].State.Name",
                        "Type": "String",
                    },
                    {"Name": "Ids", "Selector": "$..InstanceId", "Type": "StringList"},
                    {"Name": "Nothing", "Selector": "$.Reservations[0].Missing", "Type": "String"},
                ],
            },
            {
                "name": "Write",
                "action": "aws:executeAwsApi",
                "inputs": {
                    "Service": "s3",
                    "Api": "PutObject",
                    "Bucket": BUCKET,
                    "Key": "refs",
                    "Body": "{{ Describe.State }} {{ Describe.Ids }} {{ automation:EXECUTION_ID }} "
                    "{{ automation:DOCUMENT_NAME }} {{ global:REGION }} {{ global:ACCOUNT_ID }}",
                },
            },
        ],
        parameters={"InstanceId": {"type": "String"}},
        outputs=["Describe.State", "Describe.Ids"],
    )
    execution = runner.run(doc, {"InstanceId": instance}, execution_id="exec-1")
    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    body = object_body("refs").decode()
    assert body == f'running ["{instance}"] exec-1 Refs {REGION} 123456789012'
    assert execution["Outputs"] == {"Describe.State": ["running"], "Describe.Ids": [instance]}
    assert (
        "Nothing" not in steps_by_name(execution)["Describe"]["Outputs"]
    )  # an unmatched selector sets nothing


def test_a_reference_to_an_unset_output_fails_the_step(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Unset",
        [
            {
                "name": "Describe",
                "action": "aws:executeAwsApi",
                "inputs": {"Service": "s3", "Api": "ListBuckets"},
                "outputs": [{"Name": "Missing", "Selector": "$.Nope", "Type": "String"}],
            },
            {
                "name": "Use",
                "action": "aws:executeAwsApi",
                "inputs": {
                    "Service": "s3",
                    "Api": "PutObject",
                    "Bucket": BUCKET,
                    "Key": "x",
                    "Body": "{{ Describe.Missing }}",
                },
            },
        ],
    )
    execution = runner.run(doc)
    use = steps_by_name(execution)["Use"]
    assert use["StepStatus"] == "Failed" and use["FailureDetails"]["FailureStage"] == "Inputs"
    assert "step Describe has not produced output 'Missing'" in use["FailureMessage"]


def test_an_output_of_the_wrong_type_fails_the_step(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Typed",
        [
            {
                "name": "List",
                "action": "aws:executeAwsApi",
                "inputs": {"Service": "s3", "Api": "ListBuckets"},
                "outputs": [{"Name": "Buckets", "Selector": "$.Buckets", "Type": "Integer"}],
            }
        ],
    )
    execution = runner.run(doc)
    assert "output Buckets" in steps_by_name(execution)["List"]["FailureMessage"]
    assert "is not a valid Integer" in steps_by_name(execution)["List"]["FailureMessage"]


def test_change_instance_state_check_only_asserts(moto_aws, runner, tmp_path):
    instance = run_instance()
    runner.poll_interval = 0.25
    doc = write_document(
        tmp_path,
        "CheckOnly",
        [
            {
                "name": "MustBeStopped",
                "action": "aws:changeInstanceState",
                "timeoutSeconds": 1,
                "inputs": {
                    "InstanceIds": ["{{ InstanceId }}"],
                    "DesiredState": "stopped",
                    "CheckStateOnly": True,
                },
            }
        ],
        parameters={"InstanceId": {"type": "String"}},
    )
    execution = runner.run(doc, {"InstanceId": instance})
    assert execution["AutomationExecutionStatus"] == "TimedOut"
    state = client("ec2").describe_instances(InstanceIds=[instance])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


def test_assume_role_is_assumed_for_api_calls_and_scripts(moto_aws, runner, tmp_path):
    iam = client("iam")
    role = iam.create_role(RoleName="AIOpsSSMAutomationRole", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    script = (
        "import boto3\ndef who(events, context):\n"
        "    return {'Arn': boto3.client('sts').get_caller_identity()['Arn']}\n"
    )
    doc = write_document(
        tmp_path,
        "Assume",
        [
            {
                "name": "Who",
                "action": "aws:executeScript",
                "inputs": {"Runtime": "python3.11", "Handler": "who", "Script": script},
                "outputs": [{"Name": "Arn", "Selector": "$.Payload.Arn", "Type": "String"}],
            }
        ],
        parameters={"AutomationAssumeRole": {"type": "String", "default": ""}},
        assumeRole="{{ AutomationAssumeRole }}",
    )
    assumed = runner.run(doc, {"AutomationAssumeRole": role})
    assert "assumed-role/AIOpsSSMAutomationRole/" in steps_by_name(assumed)["Who"]["Outputs"]["Arn"][0]
    own = runner.run(doc)
    assert "assumed-role" not in steps_by_name(own)["Who"]["Outputs"]["Arn"][0]


# -- what the runner refuses, before running anything --------------------------------------------------


def test_an_unsupported_action_is_rejected_by_name_before_any_step_runs(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Unsupported",
        [
            api_step("First"),
            {"name": "Approve", "action": "aws:approve", "inputs": {"Approvers": ["x"]}},
        ],
    )
    with pytest.raises(
        UnsupportedError, match="step Approve: action aws:approve is not supported by the local runner"
    ):
        runner.run(doc)
    assert not ran("First")


def test_an_unsupported_input_or_runtime_is_rejected(moto_aws, runner, tmp_path):
    doc = write_document(
        tmp_path,
        "PowerShell",
        [
            {
                "name": "Ps",
                "action": "aws:executeScript",
                "inputs": {"Runtime": "PowerShell 7.4", "Handler": "x", "Script": "Write-Host hi"},
            }
        ],
    )
    with pytest.raises(UnsupportedError, match="runtime 'PowerShell 7.4' is not supported"):
        runner.run(doc)
    doc = write_document(
        tmp_path,
        "Attachment",
        [
            {
                "name": "Py",
                "action": "aws:executeScript",
                "inputs": {"Runtime": "python3.11", "Handler": "m.f", "Attachment": "code.zip"},
            }
        ],
    )
    with pytest.raises(UnsupportedError, match="input\\(s\\) Attachment are not supported"):
        runner.run(doc)


def test_an_invalid_document_is_rejected(runner, tmp_path):
    doc = write_document(tmp_path, "Invalid", [{"name": "X", "action": "aws:doThings"}])
    with pytest.raises(DocumentError, match="action 'aws:doThings' is not an SSM Automation action"):
        runner.run(doc)


INJECTING_VALUE = '", __import__("builtins").setattr(__import__("builtins"), "aiops_injected", True), "'


def test_a_script_gets_parameters_only_through_its_input_payload(moto_aws, runner, tmp_path):
    """A {{ reference }} in a Script is never substituted into the source: the value would run as code."""
    script = (
        'def handler(events, context):\n    text = "{{ Name }}"\n'
        '    return {"Text": text, "Given": events["Name"]}\n'
    )
    path = write_document(
        tmp_path,
        "Inject",
        [
            {
                "name": "Echo",
                "action": "aws:executeScript",
                "inputs": {
                    "Runtime": "python3.11",
                    "Handler": "handler",
                    "Script": script,
                    "InputPayload": {"Name": "{{ Name }}"},
                },
                "outputs": [
                    {"Name": "Text", "Selector": "$.Payload.Text", "Type": "String"},
                    {"Name": "Given", "Selector": "$.Payload.Given", "Type": "String"},
                ],
            }
        ],
        parameters={"Name": {"type": "String"}},
    )
    document, problems = parse(path)
    assert [p.step for p in problems] == [
        "Echo"
    ]  # load() refuses it; run it anyway: the emulator's own guard
    builtins = __import__("builtins")
    try:
        execution = runner.run(document, {"Name": INJECTING_VALUE})
        assert not hasattr(builtins, "aiops_injected"), "a parameter value ran as code"
    finally:
        builtins.__dict__.pop("aiops_injected", None)
    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    outputs = steps_by_name(execution)["Echo"]["Outputs"]
    assert (outputs["Text"], outputs["Given"]) == (["{{ Name }}"], [INJECTING_VALUE])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "parameter Name is required"),
        ({"Name": "ok", "Other": "x"}, "has no parameter Other"),
        ({"Name": "BAD"}, "'BAD' does not match"),
        ({"Name": "ok", "Count": "many"}, "parameter Count: 'many' is not a valid Integer"),
        ({"Name": "ok", "Mode": "fast"}, "is not one of"),
    ],
)
def test_bad_parameters_are_rejected(runner, tmp_path, params, message):
    doc = write_document(
        tmp_path,
        "Params",
        [{"name": "Nap", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}],
        parameters={
            "Name": {"type": "String", "allowedPattern": "^[a-z]+$"},
            "Count": {"type": "Integer", "default": 1},
            "Mode": {"type": "String", "default": "safe", "allowedValues": ["safe", "slow"]},
        },
    )
    with pytest.raises(ParameterError, match=message):
        runner.run(doc, params)


def test_parameters_are_reported_as_lists_of_strings(runner, tmp_path):
    doc = write_document(
        tmp_path,
        "Report",
        [{"name": "Nap", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}],
        parameters={
            "Ids": {"type": "StringList"},
            "Count": {"type": "Integer", "default": 2},
            "On": {"type": "Boolean", "default": False},
        },
    )
    execution = runner.run(doc, {"Ids": ["a", "b"]})
    assert execution["Parameters"] == {"Ids": ["a", "b"], "Count": ["2"], "On": ["false"]}


# -- small pieces --------------------------------------------------------------------------------------


def test_iso_durations():
    assert parse_duration("PT5M") == 300
    assert parse_duration("P1DT1H30M2.5S") == 86400 + 3600 + 1800 + 2.5
    with pytest.raises(Exception, match="not an ISO 8601 duration"):
        parse_duration("5 minutes")


def test_selectors():
    data = {"A": [{"B": {"C": 1}}, {"B": {"C": 2}}], "x-y": "z"}
    assert select(data, "$.A[0].B.C") == 1
    assert select(data, "$.A[-1].B.C") == 2
    assert select(data, "$.A[*].B.C") == [1, 2]
    assert select(data, "$..C") == [1, 2]
    assert select(data, "$['x-y']") == "z"
    assert select(data, "$.A[5]") is MISSING


def test_the_result_has_the_get_automation_execution_shape(moto_aws, runner, tmp_path):
    """botocore's Stubber validates a response against the SSM model: the runner's result passes."""
    from botocore.stub import Stubber

    doc = write_document(
        tmp_path,
        "Shape",
        [
            counting_step("Flaky", succeed_on=2, maxAttempts=2),
            counting_step("Broken", succeed_on=9, maxAttempts=1),
        ],
        outputs=["Flaky.Attempts"],
    )
    execution = runner.run(doc)
    assert execution["AutomationExecutionStatus"] == "Failed"
    ssm = boto3.client("ssm", region_name=REGION)
    with Stubber(ssm) as stub:
        stub.add_response(
            "get_automation_execution",
            {"AutomationExecution": execution},
            {"AutomationExecutionId": execution["AutomationExecutionId"]},
        )
        got = ssm.get_automation_execution(AutomationExecutionId=execution["AutomationExecutionId"])
    assert got["AutomationExecution"]["StepExecutions"][0]["Outputs"]["Attempts"] == ["2"]
    json.dumps(execution, default=str)
