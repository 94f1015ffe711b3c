"""``aiops ssm check|run``: JSON out; exit 0 / 1 (problems, failed execution) / 2 (bad input)."""

from __future__ import annotations

import json

from matcarv_aiops.cli import main
from tests.ssm.conftest import BUCKET, HERE, SSM_DIR, run_instance, write_document

EXECUTION_ID = "3f2c1b0a-9d8e-4f7a-8b6c-5d4e3f2a1b0c"


def test_check_every_document_in_ssm(capsys):
    assert main(["ssm", "check"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "checked": len(list(SSM_DIR.glob("*.yaml"))),
        "problems": 0,
    }


def test_check_reports_file_step_and_rule(capsys):
    broken = HERE / "broken" / "rule3_destructive_no_oncancel.yaml"
    assert main(["ssm", "check", str(SSM_DIR / "AIOps-EC2StatusCheckRestart.yaml"), str(broken)]) == 1
    [line] = capsys.readouterr().out.splitlines()
    problem = json.loads(line)
    assert (problem["file"], problem["step"], problem["rule"]) == (str(broken), "StopInstance", "rule-3")


def test_check_rejects_a_reference_inside_a_script(capsys):
    broken = HERE / "broken" / "schema_script_reference.yaml"
    assert main(["ssm", "check", str(broken)]) == 1
    [line] = capsys.readouterr().out.splitlines()
    problem = json.loads(line)
    assert (problem["file"], problem["step"], problem["rule"]) == (
        str(broken),
        "CollectDiagnostics",
        "schema",
    )
    assert "Script must not contain references ({{ InstanceId }})" in problem["message"]


def test_run_prints_the_execution_and_exits_0_on_success(moto_aws, capsys):
    instance = run_instance()
    code = main(
        [
            "ssm",
            "run",
            str(SSM_DIR / "AIOps-EC2StatusCheckRestart.yaml"),
            "--param",
            f"InstanceId={instance}",
            "--param",
            f"DiagnosticsBucket={BUCKET}",
            "--param",
            f"ExecutionId={EXECUTION_ID}",
            "--poll-seconds",
            "0.01",
        ]
    )
    execution = json.loads(capsys.readouterr().out)["AutomationExecution"]
    assert code == 0
    assert execution["AutomationExecutionStatus"] == "Success"
    assert execution["Parameters"]["InstanceId"] == [instance]


def test_run_by_document_name_exits_1_when_the_execution_fails(moto_aws, capsys):
    code = main(
        [
            "ssm",
            "run",
            "AIOps-EC2StatusCheckRestart",
            "--param",
            "InstanceId=i-0123456789abcdef0",
            "--param",
            f"DiagnosticsBucket={BUCKET}",
            "--param",
            f"ExecutionId={EXECUTION_ID}",
            "--retry-seconds",
            "0",
        ]
    )
    assert code == 1
    assert json.loads(capsys.readouterr().out)["AutomationExecution"]["AutomationExecutionStatus"] == "Failed"


def test_run_bad_input_exits_2_with_one_line(capsys, tmp_path):
    cases = [
        (["ssm", "run", "AIOps-Nope"], "no SSM document 'AIOps-Nope'"),
        (["ssm", "check", "ssm/AIOps-Nope.yaml"], "no such document file: ssm/AIOps-Nope.yaml"),
        (["ssm", "run", "AIOps-EC2StatusCheckRestart", "--param", "InstanceId"], "must be NAME=VALUE"),
        (
            ["ssm", "run", "AIOps-EC2StatusCheckRestart", "--param", "InstanceId=bad"],
            "parameter InstanceId: 'bad'",
        ),
        (
            [
                "ssm",
                "run",
                str(
                    write_document(
                        tmp_path,
                        "Runs",
                        [
                            {
                                "name": "X",
                                "action": "aws:runCommand",
                                "inputs": {"DocumentName": "AWS-RunShellScript"},
                            }
                        ],
                    )
                ),
            ],
            "action aws:runCommand is not supported by the local runner",
        ),
    ]
    for argv, words in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and words in err, err
