"""``aiops ssm run`` as the local stack uses it: a separate process, boto3 pointed at a moto_server on
127.0.0.1 by AWS_ENDPOINT_URL (executeScript handlers included)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from local.scenarios import ebs_image
from tests.ssm.conftest import SSM_DIR

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
EXECUTION_ID = "3f2c1b0a-9d8e-4f7a-8b6c-5d4e3f2a1b0c"


@pytest.fixture(scope="module")
def moto_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError as exc:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto_server did not start") from exc
            time.sleep(0.2)
    yield endpoint
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def _env(endpoint: str) -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}


def test_cli_runs_the_ec2_runbook_against_moto_server(moto_server):
    session = boto3.session.Session(region_name="us-east-1")
    s3, ec2 = (session.client(name, endpoint_url=moto_server) for name in ("s3", "ec2"))
    s3.create_bucket(Bucket="diag-local")
    image = ebs_image(ec2)
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    command = [
        str(BIN / "aiops"),
        "ssm",
        "run",
        str(SSM_DIR / "AIOps-EC2StatusCheckRestart.yaml"),
        "--param",
        f"InstanceId={instance}",
        "--param",
        "DiagnosticsBucket=diag-local",
        "--param",
        f"ExecutionId={EXECUTION_ID}",
        "--poll-seconds",
        "0.2",
        "--retry-seconds",
        "0",
    ]
    done = subprocess.run(command, env=_env(moto_server), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    execution = json.loads(done.stdout)["AutomationExecution"]
    assert execution["AutomationExecutionStatus"] == "Success"
    key = f"diagnostics/{EXECUTION_ID}/AIOps-EC2StatusCheckRestart.json"
    assert (
        json.loads(s3.get_object(Bucket="diag-local", Key=key)["Body"].read())["instance"]["InstanceId"]
        == instance
    )

    command[command.index(f"InstanceId={instance}")] = "InstanceId=i-0123456789abcdef0"
    failed = subprocess.run(command, env=_env(moto_server), capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["AutomationExecution"]["AutomationExecutionStatus"] == "Failed"
