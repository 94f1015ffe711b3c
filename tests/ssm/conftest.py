"""SSM runbook tests: moto in-process, a diagnostics bucket, fast poll intervals (same semantics)."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from aiops_local.ssm_emulator import LocalAutomationRunner
from local.scenarios import ebs_image

REPO = Path(__file__).resolve().parents[2]
SSM_DIR = REPO / "ssm"
HERE = Path(__file__).parent
BUCKET = "aiops-diagnostics-test"
REGION = "us-east-1"


@pytest.fixture
def runner() -> LocalAutomationRunner:
    return LocalAutomationRunner(poll_interval=0.01, retry_delay=0.0, region=REGION)


_CLIENTS: dict[str, object] = {}


def client(service: str):
    """A client for the test's own checks, one per service and test (creating clients is slow)."""
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.client(service, region_name=REGION)
    return _CLIENTS[service]


@pytest.fixture
def moto_aws():
    _CLIENTS.clear()
    with mock_aws():
        client("s3").create_bucket(Bucket=BUCKET)
        yield
    _CLIENTS.clear()


@pytest.fixture
def execution_id() -> str:
    return str(uuid.uuid4())


def run_instance(**extra) -> str:
    ec2 = client("ec2")
    image = ebs_image(ec2)
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", **extra)[
        "Instances"
    ][0]["InstanceId"]


def write_document(
    tmp_path: Path, name: str, steps: list[dict], parameters: dict | None = None, **top
) -> Path:
    """A small document for exercising the runner's semantics (not one of the runbooks)."""
    path = tmp_path / f"{name}.yaml"
    document = {"schemaVersion": "0.3", "parameters": parameters or {}, "mainSteps": steps, **top}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def steps_by_name(execution: dict) -> dict[str, dict]:
    return {step["StepName"]: step for step in execution["StepExecutions"]}


def object_body(key: str) -> bytes:
    return client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


def remediation_metrics() -> list[dict]:
    return client("cloudwatch").list_metrics(Namespace="AIOps/Automation", MetricName="RemediationExecuted")[
        "Metrics"
    ]
