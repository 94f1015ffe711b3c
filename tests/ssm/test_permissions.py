"""The IAM actions each runbook calls, read from its steps (for a least-privilege automation role)."""

from __future__ import annotations

import json
import re

import pytest

from matcarv_aiops.cli import main
from matcarv_aiops.ssm.checker import check_document
from matcarv_aiops.ssm.document import load
from matcarv_aiops.ssm.permissions import UnreadableCallError, document_permissions
from tests.ssm.conftest import SSM_DIR, write_document

EXPECTED = {
    "AIOps-EC2StatusCheckRestart": [
        "cloudwatch:PutMetricData",
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeInstances",
        "ec2:StartInstances",
        "ec2:StopInstances",
        "s3:PutObject",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_runbook_permissions(name):
    assert document_permissions(load(SSM_DIR / f"{name}.yaml")) == EXPECTED[name]


def test_cli_lists_permissions(capsys):
    assert main(["ssm", "permissions"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["document"]: line["actions"] for line in lines} == EXPECTED


def test_script_calls_are_read_from_the_python(tmp_path):
    script = (
        "import boto3\n"
        "def handler(events, context):\n"
        "    rds = boto3.client('rds')\n"
        "    rds.reboot_db_instance(DBInstanceIdentifier='db')\n"
        "    boto3.client('logs').put_log_events(logGroupName='g', logStreamName='s', logEvents=[])\n"
    )
    doc = load(
        write_document(
            tmp_path,
            "Script",
            [
                {
                    "name": "Go",
                    "action": "aws:executeScript",
                    "inputs": {"Runtime": "python3.11", "Handler": "handler", "Script": script},
                }
            ],
        )
    )
    assert document_permissions(doc) == ["logs:PutLogEvents", "rds:RebootDBInstance"]


@pytest.mark.parametrize(
    ("script", "words"),
    [
        (
            "import boto3\ndef h(e, c):\n    name = 'ec2'\n    boto3.client(name).describe_instances()\n",
            "boto3.client() with a service name that is not a literal",
        ),
        (
            "import boto3\ndef h(e, c):\n    boto3.client('ec2').describe_instance()\n",
            "ec2 client has no method describe_instance()",
        ),
    ],
)
def test_unreadable_calls_are_schema_problems(tmp_path, script, words):
    path = write_document(
        tmp_path,
        "Opaque",
        [
            {
                "name": "Go",
                "action": "aws:executeScript",
                "inputs": {"Runtime": "python3.11", "Handler": "h", "Script": script},
            }
        ],
    )
    with pytest.raises(UnreadableCallError, match=re.escape(words)):
        document_permissions(load(path))
    assert any(p.rule == "schema" and p.step == "Go" and words in p.message for p in check_document(path))
