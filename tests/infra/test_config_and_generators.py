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


def test_ssm_construct_with_no_documents_creates_the_role_only(tmp_path):
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from aiops_infra.ssm_documents import SsmAutomation

    (tmp_path / "README.md").write_text("not a document")
    stack = cdk.Stack(cdk.App(), "Docs")
    SsmAutomation(stack, "Ssm", diagnostics_bucket_arn="arn:aws:s3:::diag",
                  topic_arn="arn:aws:sns:eu-west-1:123456789012:t", directory=tmp_path)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SSM::Document", 0)
    template.resource_count_is("AWS::IAM::Policy", 0)
    template.has_resource_properties("AWS::IAM::Role", {"RoleName": "AIOpsSSMAutomationRole"})


def test_runbook_actions_are_scoped_and_unknown_ones_named():
    from aiops_infra.ssm_documents import runbook_resources

    scope = dict(document="AIOps-X.yaml", region="eu-west-1", account="123456789012",
                 diagnostics_bucket_arn="arn:aws:s3:::diag", topic_arn="arn:aws:sns:eu-west-1:123456789012:t")
    assert runbook_resources("s3:PutObject", **scope) == ["arn:aws:s3:::diag/diagnostics/*"]
    assert runbook_resources("sns:Publish", **scope) == ["arn:aws:sns:eu-west-1:123456789012:t"]
    assert runbook_resources("ec2:DescribeVolumes", **scope) == ["*"]
    assert runbook_resources("ec2:StopInstances", **scope) == ["arn:aws:ec2:eu-west-1:123456789012:instance/*"]
    with pytest.raises(UnclassifiedActionError, match="AIOps-X.yaml.*'rds:RebootDBInstance'"):
        runbook_resources("rds:RebootDBInstance", **scope)
