"""Context validation, action scoping, and the SSM documents construct with documents present."""

from __future__ import annotations

import pytest

from aiops_infra.config import ConfigError, DeploymentConfig
from aiops_infra.iam_actions import NO_RESOURCE_LEVEL_ACTIONS, UnclassifiedActionError, scoped_resources
from matcarv_aiops.catalogue import catalogue


def test_defaults_need_no_context():
    config = DeploymentConfig.from_mapping({})
    assert (config.airflow_version, config.webserver_access_mode, config.environment_class) == (
        "3.3.1", "PRIVATE_ONLY", "mw1.small")


def test_context_values_are_parsed():
    config = DeploymentConfig.from_mapping({"minWorkers": "2", "maxWorkers": 4, "memberAccountIds": "111111111111, 222222222222",
                                            "airflowConfigurationOptions": '{"core.parallelism": 64}'})
    assert (config.min_workers, config.max_workers) == (2, 4)
    assert config.member_account_ids == ("111111111111", "222222222222")
    assert config.extra_airflow_options == {"core.parallelism": "64"}


@pytest.mark.parametrize("context, named", [
    ({"environmentClass": "mw1.huge"}, "environmentClass"),
    ({"minWorkers": 5, "maxWorkers": 2}, "minWorkers/maxWorkers"),
    ({"minWorkers": "many"}, "minWorkers"),
    ({"webserverAccessMode": "OPEN"}, "webserverAccessMode"),
    ({"airflowApiRole": "Admin"}, "airflowApiRole"),
    ({"memberAccountIds": "12345"}, "memberAccountIds"),
    ({"existingVpc": {"vpcId": "vpc-0abc1234def567890", "privateSubnetIds": ["subnet-0aaa1111bbbb22223"]}}, "existingVpc"),
    ({"existingVpc": "not json"}, "existingVpc"),
    ({"snapshotRetentionDays": 0}, "snapshotRetentionDays"),
    ({"enviromentName": "typo"}, "unknown context keys"),
])
def test_bad_context_names_the_key(context, named):
    with pytest.raises(ConfigError, match=named):
        DeploymentConfig.from_mapping(context)


def test_actions_are_scoped_to_the_target_type():
    entry = catalogue()["ec2_status_check_failed"]
    templates = [t.arn for t in entry.targets]
    assert scoped_resources(remediation_id=entry.id, action="ec2:StopInstances", target_arn_templates=templates,
                            region="eu-west-1", account="123456789012") == [
        "arn:aws:ec2:eu-west-1:123456789012:instance/*"]
    assert scoped_resources(remediation_id=entry.id, action="ec2:DescribeInstances", target_arn_templates=templates,
                            region="eu-west-1", account="123456789012") == ["*"]


def test_an_unclassified_cross_service_action_names_the_entry():
    entry = catalogue()["s3_public_access"]
    with pytest.raises(UnclassifiedActionError, match="'s3_public_access'.*'config:PutEvaluations'"):
        scoped_resources(remediation_id=entry.id, action="config:PutEvaluations",
                         target_arn_templates=[t.arn for t in entry.targets], region="r", account="a")


def test_no_resource_level_list_is_exact_actions_with_reasons():
    for action, reason in NO_RESOURCE_LEVEL_ACTIONS.items():
        assert "*" not in action and ":" in action and reason


def test_every_catalogue_action_is_classified():
    """A new entry whose action cannot be scoped fails here first, naming the entry and the action."""
    for entry in catalogue().values():
        for action in entry.permissions:
            scoped_resources(remediation_id=entry.id, action=action, target_arn_templates=[t.arn for t in entry.targets],
                             region="r", account="a")


RUNBOOK = """\
description: test runbook
schemaVersion: '0.3'
assumeRole: '{{ AutomationAssumeRole }}'
parameters:
  AutomationAssumeRole: {type: String}
mainSteps:
  - name: CollectDiagnostics
    action: aws:sleep
    inputs: {Duration: PT1S}
"""


def test_ssm_documents_every_file_becomes_an_automation_document(tmp_path):
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from aiops_infra.ssm_documents import SsmAutomation

    (tmp_path / "ec2-restart.yaml").write_text(RUNBOOK)
    (tmp_path / "sqs-redrive.yml").write_text(RUNBOOK.replace("test runbook", "second"))
    (tmp_path / "README.md").write_text("not a document")
    stack = cdk.Stack(cdk.App(), "Docs")
    SsmAutomation(stack, "Ssm", entries=catalogue().values(), diagnostics_bucket_arn="arn:aws:s3:::diag",
                  directory=tmp_path)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SSM::Document", 2)
    template.has_resource_properties("AWS::SSM::Document", {
        "Name": "AIOps-ec2-restart", "DocumentType": "Automation", "DocumentFormat": "YAML",
        "Content": {"description": "test runbook", "schemaVersion": "0.3", "assumeRole": "{{ AutomationAssumeRole }}",
                    "parameters": {"AutomationAssumeRole": {"type": "String"}},
                    "mainSteps": [{"name": "CollectDiagnostics", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}]}})
    template.has_resource_properties("AWS::IAM::Role", {"RoleName": "AIOpsSSMAutomationRole"})


def test_ssm_documents_reject_a_file_that_is_not_a_runbook(tmp_path):
    import aws_cdk as cdk

    from aiops_infra.ssm_documents import SsmAutomation

    (tmp_path / "broken.yaml").write_text("just: a mapping\n")
    with pytest.raises(ValueError, match="broken.yaml.*schemaVersion and mainSteps"):
        SsmAutomation(cdk.Stack(cdk.App(), "Docs"), "Ssm", entries=[], diagnostics_bucket_arn="arn:aws:s3:::d",
                      directory=tmp_path)
