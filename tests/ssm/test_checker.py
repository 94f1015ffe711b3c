"""The checker: every runbook in ssm/ passes; each deliberately broken document fails on its own rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcarv_aiops.ssm.checker import check_document, is_destructive
from matcarv_aiops.ssm.document import RULE_TITLES, load
from tests.ssm.conftest import HERE, SSM_DIR

RUNBOOKS = sorted(SSM_DIR.glob("*.yaml"))


def test_only_the_catalogue_s_runbook_is_deployed():
    # Only ec2_status_check_failed is an SSM-pattern entry; a document no entry runs is not deployed.
    assert [p.stem for p in RUNBOOKS] == ["AIOps-EC2StatusCheckRestart"]


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_every_runbook_passes(path: Path):
    assert [str(p) for p in check_document(path)] == []


def test_the_base_of_the_broken_documents_passes():
    assert check_document(HERE / "valid_base.yaml") == []


# file -> (rule, step, words the message must contain)
BROKEN = {
    "rule1_first_step_not_collect": (
        "rule-1",
        "DescribeInstance",
        "first step must be named CollectDiagnostics",
    ),
    "rule1_no_s3_write": ("rule-1", "CollectDiagnostics", "must write state to S3"),
    "rule2_no_eligibility_check": ("rule-2", None, "no step named EligibilityCheck"),
    "rule2_ineligible_path_acts": ("rule-2", "EligibilityCheck", "runs destructive step(s) StopInstance"),
    "rule3_destructive_continues": ("rule-3", "StopInstance", "must set onFailure: Abort, got 'Continue'"),
    "rule3_destructive_no_oncancel": ("rule-3", "StopInstance", "must set onCancel: Abort, got '(unset)'"),
    "rule4_last_step_not_validate": (
        "rule-4",
        "EmitRemediationMetric",
        "last step must be named ValidateRemediation",
    ),
    "rule5_no_remediation_metric": (
        "rule-5",
        None,
        "no step emits RemediationExecuted in namespace AIOps/Automation",
    ),
    "rule6_missing_timeout": ("rule-6", "DescribeInstance", "timeoutSeconds must be 300, got '(unset)'"),
    "rule6_wrong_max_attempts": ("rule-6", "EmitRemediationMetric", "maxAttempts must be 3, got 1"),
    "schema_unknown_action": (
        "schema",
        "DescribeInstance",
        "'aws:describeThings' is not an SSM Automation action",
    ),
    "schema_bad_reference": (
        "schema",
        "RecordIneligible",
        "step DescribeInstance declares no output 'Status'",
    ),
    "schema_unknown_api": ("schema", "DescribeInstance", "Api 'DescribeInstance' is not an operation of ec2"),
    "schema_missing_next_step": ("schema", "EligibilityCheck", "NextStep naming a step"),
    "schema_unquoted_version": ("schema", None, "schemaVersion must be the string '0.3'"),
    "schema_script_reference": (
        "schema",
        "CollectDiagnostics",
        "Script must not contain references ({{ InstanceId }}): pass values through InputPayload",
    ),
}


def test_every_broken_document_is_listed():
    assert {p.stem for p in (HERE / "broken").glob("*.yaml")} == set(BROKEN)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_document_fails_on_its_rule_only(name: str):
    rule, step, words = BROKEN[name]
    path = HERE / "broken" / f"{name}.yaml"
    problems = check_document(path)
    assert len(problems) == 1, [str(p) for p in problems]
    problem = problems[0]
    assert (problem.rule, problem.step) == (rule, step)
    assert words in problem.message
    text = str(problem)  # what the CLI prints: the file, the step, the rule
    assert text.startswith(str(path))
    assert step is None or f"step {step}:" in text
    assert RULE_TITLES[rule] in text


def test_rule_titles_name_the_rule_in_the_message():
    problem = check_document(HERE / "broken" / "rule3_destructive_no_oncancel.yaml")[0]
    assert "rule 3 (destructive steps set onFailure: Abort and onCancel: Abort)" in str(problem)


def test_unreadable_and_non_mapping_documents(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mainSteps: [unclosed")
    assert "cannot read YAML" in check_document(bad)[0].message
    bad.write_text("- just a list")
    assert check_document(bad)[0].message == "a document must be a YAML mapping"


def test_destructive_steps_of_the_runbook():
    document = load(SSM_DIR / "AIOps-EC2StatusCheckRestart.yaml")
    assert {step.name for step in document.steps if is_destructive(step)} == {"StopInstance", "StartInstance"}


def test_a_script_that_calls_a_mutating_api_is_destructive(tmp_path: Path):
    from tests.ssm.conftest import write_document

    script = (
        "import boto3\ndef handler(events, context):\n    "
        "boto3.client('ec2').reboot_instances(InstanceIds=['i-1'])\n"
    )
    reader = (
        "import boto3\ndef handler(events, context):\n    return boto3.client('ec2').describe_instances()\n"
    )
    path = write_document(
        tmp_path,
        "Scripts",
        [
            {
                "name": "Writes",
                "action": "aws:executeScript",
                "inputs": {"Runtime": "python3.11", "Handler": "handler", "Script": script},
            },
            {
                "name": "Reads",
                "action": "aws:executeScript",
                "inputs": {"Runtime": "python3.11", "Handler": "handler", "Script": reader},
            },
        ],
    )
    document = load(path)
    assert [is_destructive(step) for step in document.steps] == [True, False]


def test_unknown_api_parameter_is_a_schema_error(tmp_path: Path):
    from tests.ssm.conftest import write_document

    path = write_document(
        tmp_path,
        "Typo",
        [
            {
                "name": "Describe",
                "action": "aws:executeAwsApi",
                "inputs": {"Service": "ec2", "Api": "DescribeInstances", "InstanceId": ["i-1"]},
            }
        ],
    )
    problems = check_document(path)
    assert [p.message for p in problems if p.rule == "schema"] == [
        "ec2 DescribeInstances has no parameter 'InstanceId'"
    ]
