"""StartAutomationExecutionOperator and AutomationExecutionSensor: against botocore's Stubber with the
documented GetAutomationExecution shapes (aws backend), and end to end on the local backend (moto)."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from airflow.providers.amazon.aws.hooks.ssm import SsmHook
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException
from botocore.stub import Stubber

from matcarv_operators.ssm import StartAutomationExecutionOperator
from matcarv_sensors.ssm import AutomationExecutionSensor
from tests.ssm.conftest import BUCKET, REGION, run_instance

EXECUTION_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
STARTED = datetime(2026, 11, 27, 4, 0, tzinfo=timezone.utc)
ENDED = datetime(2026, 11, 27, 4, 3, tzinfo=timezone.utc)


@pytest.fixture
def stubbed_ssm(monkeypatch):
    """SsmHook's client, stubbed: what the operator and sensor use on the aws backend."""
    client = boto3.client("ssm", region_name=REGION)
    monkeypatch.setattr(SsmHook, "conn", client)
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _step(name: str, action: str, status: str, **extra) -> dict:
    step = {"StepName": name, "Action": action, "TimeoutSeconds": 300, "OnFailure": "Abort", "MaxAttempts": 3,
            "ExecutionStartTime": STARTED, "StepStatus": status, "Inputs": {}, "Outputs": {},
            "StepExecutionId": f"{name}-0001", "IsEnd": False, "IsCritical": True, **extra}
    if status not in ("Pending", "InProgress"):
        step["ExecutionEndTime"] = ENDED
    return step


def _execution(status: str, steps: list[dict], **extra) -> dict:
    """A GetAutomationExecution AutomationExecution, as the API reference documents it."""
    execution = {
        "AutomationExecutionId": EXECUTION_ID, "DocumentName": "AIOps-EC2StatusCheckRestart", "DocumentVersion": "1",
        "ExecutionStartTime": STARTED, "AutomationExecutionStatus": status, "StepExecutions": steps,
        "StepExecutionsTruncated": False, "Parameters": {"InstanceId": ["i-0123456789abcdef0"]}, "Outputs": {},
        "Mode": "Auto", "ExecutedBy": "arn:aws:sts::123456789012:assumed-role/MWAA/worker", **extra,
    }
    if status not in ("Pending", "InProgress", "Waiting", "Cancelling"):
        execution["ExecutionEndTime"] = ENDED
    return execution


COLLECTED = _step("CollectDiagnostics", "aws:executeScript", "Success",
                  Outputs={"DiagnosticsUri": ["s3://b/k.json"]})
RESPONSES = {
    "Success": _execution("Success", [COLLECTED, _step("StopInstance", "aws:changeInstanceState", "Success")],
                          Outputs={"CollectDiagnostics.DiagnosticsUri": ["s3://b/k.json"]}),
    "Failed": _execution("Failed", [COLLECTED, _step(
        "StopInstance", "aws:changeInstanceState", "Failed",
        FailureMessage="Step fails when it is Execute/Cancelling action. IncorrectInstanceState.",
        FailureDetails={"FailureStage": "Execution", "FailureType": "Verification", "Details": {}})],
        FailureMessage="Step fails when it is Execute/Cancelling action."),
    "TimedOut": _execution("TimedOut", [COLLECTED, _step(
        "ValidateRemediation", "aws:waitForAwsResourceProperty", "TimedOut",
        FailureMessage="Step timed out while step is verifying the property.",
        FailureDetails={"FailureStage": "Execution", "FailureType": "Timeout", "Details": {}})]),
    "Cancelled": _execution("Cancelled", [COLLECTED, _step(
        "StartInstance", "aws:changeInstanceState", "Cancelled", FailureMessage="Execution cancelled by user.")],
        FailureMessage="Execution cancelled by user."),
    "InProgress": _execution("InProgress", [COLLECTED, _step("StopInstance", "aws:changeInstanceState", "InProgress")],
                             CurrentStepName="StopInstance", CurrentAction="aws:changeInstanceState"),
}


def _sensor(**kwargs) -> AutomationExecutionSensor:
    return AutomationExecutionSensor(task_id="wait_for_runbook", automation_execution_id=EXECUTION_ID,
                                     backend="aws", **kwargs)


def test_sensor_declares_every_automation_status_once():
    groups = (AutomationExecutionSensor.INTERMEDIATE_STATES, AutomationExecutionSensor.FAILURE_STATES,
              AutomationExecutionSensor.SUCCESS_STATES)
    every = [state for group in groups for state in group]
    assert len(every) == len(set(every)) == 19
    import botocore.session

    model = botocore.session.get_session().get_service_model("ssm")
    assert set(every) == set(model.shape_for("AutomationExecutionStatus").enum)


def test_sensor_waits_in_reschedule_mode_by_default():
    sensor = _sensor()
    assert sensor.mode == "reschedule"
    assert "automation_execution_id" in sensor.template_fields


def test_operator_starts_the_document(stubbed_ssm):
    stubbed_ssm.add_response(
        "start_automation_execution", {"AutomationExecutionId": EXECUTION_ID},
        {"DocumentName": "AIOps-EC2StatusCheckRestart", "ClientToken": EXECUTION_ID,
         "Parameters": {"InstanceId": ["i-0123456789abcdef0"], "DiagnosticsBucket": [BUCKET],
                        "ExecutionId": [EXECUTION_ID]}})
    operator = StartAutomationExecutionOperator(
        task_id="start_runbook", document_name="AIOps-EC2StatusCheckRestart", backend="aws",
        parameters={"InstanceId": "i-0123456789abcdef0", "DiagnosticsBucket": BUCKET, "ExecutionId": EXECUTION_ID},
        client_token=EXECUTION_ID)
    assert operator.execute({}) == EXECUTION_ID
    assert set(operator.template_fields) >= {"document_name", "parameters"}


def test_sensor_success_returns_the_execution(stubbed_ssm):
    stubbed_ssm.add_response("get_automation_execution", {"AutomationExecution": RESPONSES["Success"]},
                             {"AutomationExecutionId": EXECUTION_ID})
    result = _sensor().poke({})
    assert isinstance(result, PokeReturnValue) and result.is_done
    assert result.xcom_value["Outputs"] == {"CollectDiagnostics.DiagnosticsUri": ["s3://b/k.json"]}
    assert result.xcom_value["ExecutionEndTime"] == ENDED.isoformat()  # JSON-safe for XCom


def test_sensor_keeps_waiting_while_in_progress(stubbed_ssm):
    stubbed_ssm.add_response("get_automation_execution", {"AutomationExecution": RESPONSES["InProgress"]})
    assert _sensor().poke({}) is False


@pytest.mark.parametrize(("status", "words"), [
    ("Failed", "ended Failed: step StopInstance Failed: Step fails when it is Execute/Cancelling action. "
               "IncorrectInstanceState."),
    ("TimedOut", "ended TimedOut: step ValidateRemediation TimedOut: Step timed out while step is verifying"),
    ("Cancelled", "ended Cancelled: step StartInstance Cancelled: Execution cancelled by user."),
])
def test_sensor_fails_with_the_failed_steps_message(stubbed_ssm, status, words):
    stubbed_ssm.add_response("get_automation_execution", {"AutomationExecution": RESPONSES[status]})
    with pytest.raises(AirflowFailException) as failure:
        _sensor().poke({})
    assert words in str(failure.value)
    assert str(failure.value).startswith(f"SSM automation {EXECUTION_ID} (AIOps-EC2StatusCheckRestart)")


def test_local_backend_same_operator_and_sensor(moto_aws, monkeypatch, tmp_path, settings):
    """AIOPS_SSM_BACKEND=local: the operator runs the document with the local runner against moto."""
    from matcarv_aiops.settings import reload_settings

    monkeypatch.setenv("AIOPS_SSM_BACKEND", "local")
    monkeypatch.setenv("AIOPS_SSM_LOCAL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AIOPS_SSM_POLL_SECONDS", "0.01")
    reload_settings()
    instance = run_instance()
    operator = StartAutomationExecutionOperator(
        task_id="start_runbook", document_name="AIOps-EC2StatusCheckRestart",
        parameters={"InstanceId": instance, "DiagnosticsBucket": BUCKET, "ExecutionId": EXECUTION_ID})
    execution_id = operator.execute({})
    result = AutomationExecutionSensor(task_id="wait", automation_execution_id=execution_id).poke({})
    assert result.is_done and result.xcom_value["AutomationExecutionStatus"] == "Success"
    state = boto3.client("ec2", region_name=REGION).describe_instances(InstanceIds=[instance])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    # A failing run fails the sensor with the local runner's step message, as on SSM.
    failing = StartAutomationExecutionOperator(
        task_id="start_runbook", document_name="AIOps-EC2StatusCheckRestart",
        parameters={"InstanceId": "i-0123456789abcdef0", "DiagnosticsBucket": BUCKET,
                    "ExecutionId": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"})
    monkeypatch.setenv("AIOPS_SSM_RETRY_SECONDS", "0")
    reload_settings()
    with pytest.raises(AirflowFailException, match="step CollectDiagnostics Failed: .*InvalidInstanceID.NotFound"):
        AutomationExecutionSensor(task_id="wait", automation_execution_id=failing.execute({})).poke({})
