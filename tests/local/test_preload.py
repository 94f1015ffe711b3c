"""local/preload: what the scheduler loads before its first fork is what its task processes then use.

Run in a child process: the preload replaces botocore's loader factory for the whole process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Static keys and an endpoint never called: making a client sends nothing, and the preload's credential
# fetch fails and says so.
NOWHERE = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}


# Defined in every child: the preload, loaded from its file as Airflow loads airflow_local_settings.
LOAD_PRELOAD = """
def load_preload():
    import importlib.util, os
    spec = importlib.util.spec_from_file_location("preload", os.environ["PRELOAD"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
"""


def in_a_child(code: str, tmp_path: Path, **env: str) -> dict:
    """Run ``code`` in a fresh Python with the preload's path in PRELOAD, ``load_preload()`` defined, and
    no AWS configuration but ``env``; the JSON object it prints last."""
    answer = subprocess.run(
        [sys.executable, "-c", LOAD_PRELOAD + code],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "PRELOAD": str(REPO / "local" / "preload" / "airflow_local_settings.py"),
            **env,
        },
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    return json.loads(answer.stdout.strip().splitlines()[-1])


CHILD = """
import json
import botocore.loaders

preload = load_preload()
preload._load_task_code_once()  # what the scheduler runs before its first fork

read = []
load_file = botocore.loaders.JSONFileLoader.load_file
botocore.loaders.JSONFileLoader.load_file = lambda self, path: read.append(path) or load_file(self, path)

import boto3

# A session made in the task process (a test's, the SSM emulator's), and its clients.
session = boto3.session.Session(
    aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="secret", region_name="us-east-1"
)
for service in ("elbv2", "cloudfront", "route53", "sqs", "ec2", "ssm", "dynamodb"):
    session.client(service, region_name="us-east-1")
session.client("ec2", region_name="us-east-1").get_paginator("describe_instances")
print(json.dumps({
    "shared": session._session.get_component("data_loader") is preload._shared_loader(),
    "read": read,
}))
"""


def test_a_session_made_after_the_preload_reads_no_model_again(tmp_path):
    result = in_a_child(CHILD, tmp_path, **NOWHERE)
    assert result["shared"], "a new session has a loader of its own"
    assert result["read"] == [], f"a task process would read these again: {result['read']}"


CREDENTIALS_CHILD = """
import json, os, sys
from pathlib import Path
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{server._server.server_port}"
config = Path(os.environ["CONFIG"])
config.write_text(
    "[profile base]\\naws_access_key_id = testing\\naws_secret_access_key = testing\\n"
    "[profile hub]\\nrole_arn = arn:aws:iam::123456789012:role/aiops-execution\\nsource_profile = base\\n"
)
os.environ.update(AWS_CONFIG_FILE=str(config), AWS_PROFILE="hub")

preload = load_preload()
preload._load_task_code_once()

from botocore.credentials import AssumeRoleCredentialFetcher as Fetcher
fetched = []
fetch = Fetcher._get_credentials
Fetcher._get_credentials = lambda self: fetched.append(1) or fetch(self)
read, write = os.pipe()
pid = os.fork()
if pid == 0:  # a task process: its first call through a hub client
    from matcarv_aiops.aws import hub_client
    hub_client("dynamodb").list_tables()
    os.write(write, json.dumps({"fetched": len(fetched)}).encode())
    os._exit(0)
os.waitpid(pid, 0)
print(os.read(read, 1000).decode())
server.stop()
"""


def test_a_task_process_uses_the_hub_credentials_fetched_before_the_fork(tmp_path):
    assert in_a_child(CREDENTIALS_CHILD, tmp_path, CONFIG=str(tmp_path / "config")) == {"fetched": 0}


NICENESS_CHILD = """
import json, os, sys

sys.argv = ["airflow", "scheduler"]  # the preload lowers the scheduler's priority only
preload = load_preload()
read, write = os.pipe()
worker = os.fork()
if worker == 0:  # a LocalExecutor worker, and the task process it forks
    task = os.fork()
    if task == 0:
        os.write(write, json.dumps({"task": os.getpriority(os.PRIO_PROCESS, 0)}).encode() + b"\\n")
        os._exit(0)
    os.waitpid(task, 0)
    os.write(write, json.dumps({"worker": os.getpriority(os.PRIO_PROCESS, 0)}).encode() + b"\\n")
    os._exit(0)
os.waitpid(worker, 0)
os.close(write)
seen = {"scheduler": os.getpriority(os.PRIO_PROCESS, 0), "wanted": preload.SCHEDULER_NICENESS}
for line in os.fdopen(read).read().splitlines():
    seen.update(json.loads(line))
print(json.dumps(seen))
"""


def test_the_scheduler_and_what_it_forks_run_below_the_api_server(tmp_path):
    seen = in_a_child(NICENESS_CHILD, tmp_path, **NOWHERE)
    assert seen["wanted"] > os.getpriority(os.PRIO_PROCESS, 0)  # below the API server's (this process's)
    assert seen["scheduler"] == seen["worker"] == seen["task"] == seen["wanted"]  # inherited, not added up
