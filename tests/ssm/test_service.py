"""run_document and the local automation client: the same two SSM calls on both backends."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from aiops_local.ssm_emulator import LocalAutomationClient, local_client
from matcarv_aiops.settings import Settings
from matcarv_aiops.ssm import failure_message, run_document, to_ssm_parameters
from tests.ssm.conftest import (
    BUCKET,
    REGION,
    SSM_DIR,
    run_instance,
    steps_by_name,
    write_document,
)

EXECUTION_ID = "8c1d6a53-0b6e-4a8e-9d8e-0c3e6a6b4f10"


@pytest.fixture
def local_settings(tmp_path) -> Settings:
    return Settings(
        ssm_backend="local",
        ssm_local_state_dir=str(tmp_path / "executions"),
        ssm_poll_seconds=0.01,
        ssm_retry_seconds=0.0,
        region=REGION,
    )


def test_run_document_locally_by_name(moto_aws, local_settings):
    instance = run_instance()
    execution = run_document(
        "AIOps-EC2StatusCheckRestart",
        {"InstanceId": instance, "DiagnosticsBucket": BUCKET, "ExecutionId": EXECUTION_ID},
        settings=local_settings,
    )
    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    assert execution["DocumentName"] == "AIOps-EC2StatusCheckRestart"
    assert isinstance(execution["ExecutionStartTime"], datetime)  # as boto3 returns it


def test_run_document_locally_by_path(moto_aws, local_settings):
    instance = run_instance()
    execution = run_document(
        SSM_DIR / "AIOps-EC2StatusCheckRestart.yaml",
        {"InstanceId": instance, "DiagnosticsBucket": BUCKET, "ExecutionId": EXECUTION_ID},
        backend="local",
        settings=local_settings,
    )
    assert execution["AutomationExecutionStatus"] == "Success"


def test_local_client_start_is_idempotent_per_client_token(moto_aws, local_settings, tmp_path):
    client = local_client(local_settings)
    instance = run_instance()
    request = {
        "DocumentName": "AIOps-EC2StatusCheckRestart",
        "ClientToken": EXECUTION_ID,
        "Parameters": to_ssm_parameters(
            {"InstanceId": instance, "DiagnosticsBucket": BUCKET, "ExecutionId": EXECUTION_ID}
        ),
    }
    first = client.start_automation_execution(**request)["AutomationExecutionId"]
    again = client.start_automation_execution(**request)["AutomationExecutionId"]
    assert first == again
    assert len(list((tmp_path / "executions").glob("execution-*.json"))) == 1
    # Another process (the sensor's next poke) reads it back.
    reread = LocalAutomationClient(documents=SSM_DIR, state_dir=tmp_path / "executions", runner=client.runner)
    execution = reread.get_automation_execution(AutomationExecutionId=first)["AutomationExecution"]
    assert execution["AutomationExecutionStatus"] == "Success"
    assert isinstance(steps_by_name(execution)["StopInstance"]["ExecutionEndTime"], datetime)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"DocumentName": "AIOps-NoSuchDocument"}, "InvalidDocument"),
        (
            {
                "DocumentName": "AIOps-EC2StatusCheckRestart",
                "Parameters": {"InstanceId": ["i-0123456789abcdef0"]},
            },
            "InvalidAutomationExecutionParametersException",
        ),
        (
            {"DocumentName": "AIOps-EC2StatusCheckRestart", "TargetParameterName": "InstanceId"},
            "ValidationException",
        ),
    ],
)
def test_local_client_errors_are_client_errors_like_ssm(local_settings, request_, code):
    with pytest.raises(ClientError) as caught:
        local_client(local_settings).start_automation_execution(**request_)
    assert caught.value.response["Error"]["Code"] == code


@pytest.mark.parametrize("name", ["../Outside", "{outside}", "sub/../../Outside", "..."])
def test_local_client_reads_documents_only_from_its_directory(local_settings, tmp_path, name):
    documents = tmp_path / "ssm"
    documents.mkdir()
    outside = write_document(
        tmp_path, "Outside", [{"name": "Nap", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}]
    )
    client = local_client(local_settings, documents=documents)
    name = name.format(outside=outside.with_suffix(""))  # an absolute path, without .yaml
    with pytest.raises(ClientError) as caught:
        client.start_automation_execution(DocumentName=name)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert f"DocumentName {name!r} is not a document name" in error["Message"]
    assert str(documents) in error["Message"]
    assert not list((tmp_path / "executions").glob("execution-*.json"))  # nothing ran


def test_local_client_unknown_execution(local_settings):
    with pytest.raises(ClientError, match="AutomationExecutionNotFoundException"):
        local_client(local_settings).get_automation_execution(AutomationExecutionId="nope")


def _aws_execution(status: str, **extra) -> dict:
    now = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
    return {
        "AutomationExecutionId": EXECUTION_ID,
        "DocumentName": "AIOps-EC2StatusCheckRestart",
        "DocumentVersion": "1",
        "ExecutionStartTime": now,
        "AutomationExecutionStatus": status,
        "StepExecutions": [],
        "Parameters": {"InstanceId": ["i-0123456789abcdef0"]},
        "Outputs": {},
        **extra,
    }


def test_run_document_on_aws_starts_and_polls(monkeypatch):
    ssm = boto3.client("ssm", region_name=REGION)
    settings = Settings(ssm_backend="aws", ssm_poll_seconds=0.0, region=REGION)
    with Stubber(ssm) as stub:
        stub.add_response(
            "start_automation_execution",
            {"AutomationExecutionId": EXECUTION_ID},
            {
                "DocumentName": "AIOps-EC2StatusCheckRestart",
                "ClientToken": EXECUTION_ID,
                "Parameters": {"InstanceId": ["i-0123456789abcdef0"], "ExecutionId": [EXECUTION_ID]},
            },
        )
        for status in ("Pending", "InProgress", "Success"):
            stub.add_response(
                "get_automation_execution",
                {"AutomationExecution": _aws_execution(status)},
                {"AutomationExecutionId": EXECUTION_ID},
            )
        execution = run_document(
            SSM_DIR / "AIOps-EC2StatusCheckRestart.yaml",
            {"InstanceId": "i-0123456789abcdef0", "ExecutionId": EXECUTION_ID},
            client_token=EXECUTION_ID,
            settings=settings,
            client=ssm,
        )
        stub.assert_no_pending_responses()
    assert execution["AutomationExecutionStatus"] == "Success"


def test_run_document_times_out_while_still_running():
    ssm = boto3.client("ssm", region_name=REGION)
    settings = Settings(ssm_backend="aws", ssm_poll_seconds=0.05, region=REGION)
    with Stubber(ssm) as stub:
        stub.add_response("start_automation_execution", {"AutomationExecutionId": EXECUTION_ID})
        for _ in range(50):
            stub.add_response(
                "get_automation_execution", {"AutomationExecution": _aws_execution("InProgress")}
            )
        with pytest.raises(TimeoutError, match="still InProgress"):
            run_document("AIOps-EC2StatusCheckRestart", {}, settings=settings, client=ssm, timeout=0.1)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="SSM backend 'azure' is not one of aws, local"):
        run_document("AIOps-EC2StatusCheckRestart", {}, backend="azure", settings=Settings())


def test_to_ssm_parameters():
    assert to_ssm_parameters(
        {"A": "x", "B": 3, "C": True, "D": ["i-1", "i-2"], "E": None, "F": {"k": "v"}}
    ) == {"A": ["x"], "B": ["3"], "C": ["true"], "D": ["i-1", "i-2"], "F": ['{"k": "v"}']}


def test_failure_message_names_the_failed_step():
    execution = _aws_execution(
        "Failed",
        FailureMessage="Step fails when it is Execute/Cancelling action.",
        StepExecutions=[
            {"StepName": "CollectDiagnostics", "StepStatus": "Success"},
            {"StepName": "StopInstance", "StepStatus": "Failed", "FailureMessage": "IncorrectInstanceState"},
        ],
    )
    assert failure_message(execution) == (
        f"SSM automation {EXECUTION_ID} (AIOps-EC2StatusCheckRestart) ended "
        f"Failed: step StopInstance Failed: IncorrectInstanceState"
    )
    del execution["StepExecutions"][1]
    assert failure_message(execution).endswith(
        "ended Failed: Step fails when it is Execute/Cancelling action."
    )


def test_local_backend_without_the_emulator_names_the_missing_package(monkeypatch):
    """On MWAA (plugins.zip) the emulator is not installed: backend local fails clearly, aws still works."""
    from matcarv_aiops.ssm import EmulatorUnavailable, automation_client

    monkeypatch.setitem(sys.modules, "aiops_local.ssm_emulator", None)  # import fails as if not installed
    with pytest.raises(
        EmulatorUnavailable,
        match="needs the local SSM Automation emulator, package "
        "aiops_local.ssm_emulator .* use AIOPS_SSM_BACKEND=aws",
    ):
        automation_client("local", settings=Settings(region=REGION))
    assert automation_client("aws", settings=Settings(region=REGION)).meta.service_model.service_name == "ssm"
