"""Context validation, action scoping, and the SSM documents construct with documents present."""

from __future__ import annotations

import pytest

from aiops_infra.config import ConfigError, DeploymentConfig
from aiops_infra.iam_actions import (
    STAR_ONLY_AS_CALLED,
    UnclassifiedActionError,
    scope_for,
    supports_no_resource_level_permissions,
)
from matcarv_aiops.catalogue import catalogue


def test_defaults_need_no_context():
    config = DeploymentConfig.from_mapping({})
    assert (config.airflow_version, config.webserver_access_mode, config.environment_class) == (
        "3.3.1",
        "PUBLIC_ONLY",
        "mw1.small",
    )
    assert (config.min_workers, config.max_workers, config.schedulers) == (1, 5, 2)


def test_micro_is_sized_to_what_it_runs():
    config = DeploymentConfig.from_mapping({"environmentClass": "mw1.micro"})
    assert (config.min_workers, config.max_workers, config.schedulers) == (1, 1, 1)
    with pytest.raises(ConfigError, match="maxWorkers: mw1.micro runs exactly one worker"):
        DeploymentConfig.from_mapping({"environmentClass": "mw1.micro", "maxWorkers": 3})
    with pytest.raises(ConfigError, match="schedulers: mw1.micro runs exactly one scheduler"):
        DeploymentConfig.from_mapping({"environmentClass": "mw1.micro", "schedulers": 2})


def test_private_webserver_needs_a_named_source():
    config = DeploymentConfig.from_mapping(
        {"webserverAccessMode": "PRIVATE_ONLY", "webserverAllowedFrom": "10.0.0.0/8, pl-0123456789abcdef0"}
    )
    assert config.webserver_allowed_from == ("10.0.0.0/8", "pl-0123456789abcdef0")


def test_context_values_are_parsed():
    config = DeploymentConfig.from_mapping(
        {
            "minWorkers": "2",
            "maxWorkers": 4,
            "memberAccountIds": "111111111111, 222222222222",
            "airflowConfigurationOptions": '{"core.parallelism": 64}',
        }
    )
    assert (config.min_workers, config.max_workers) == (2, 4)
    assert config.member_account_ids == ("111111111111", "222222222222")
    assert config.extra_airflow_options == {"core.parallelism": "64"}


@pytest.mark.parametrize(
    "context, named",
    [
        ({"environmentClass": "mw1.huge"}, "environmentClass"),
        ({"minWorkers": 5, "maxWorkers": 2}, "minWorkers/maxWorkers"),
        ({"minWorkers": "many"}, "minWorkers"),
        ({"webserverAccessMode": "OPEN"}, "webserverAccessMode"),
        ({"airflowApiRole": "Admin"}, "airflowApiRole"),
        ({"memberAccountIds": "12345"}, "memberAccountIds"),
        (
            {
                "existingVpc": {
                    "vpcId": "vpc-0abc1234def567890",
                    "privateSubnetIds": ["subnet-0aaa1111bbbb22223"],
                }
            },
            "existingVpc",
        ),
        ({"existingVpc": "not json"}, "existingVpc"),
        ({"snapshotRetentionDays": 0}, "snapshotRetentionDays"),
        ({"auditArchiveRetentionDays": 0}, "auditArchiveRetentionDays: 1 to 36500 days"),
        ({"schedulers": 1}, "schedulers: mw1.small runs 2 to 5"),
        ({"webserverAccessMode": "PRIVATE_ONLY"}, "webserverAllowedFrom: a PRIVATE_ONLY webserver needs"),
        (
            {"webserverAccessMode": "PRIVATE_ONLY", "webserverAllowedFrom": "10.0.0.1/8"},
            "webserverAllowedFrom",
        ),
        ({"webserverAccessMode": "PRIVATE_ONLY", "webserverAllowedFrom": "sg-xyz"}, "webserverAllowedFrom"),
        ({"webserverAllowedFrom": "10.0.0.0/8"}, "webserverAllowedFrom: applies to PRIVATE_ONLY only"),
        ({"triggerReservedConcurrency": -1}, "triggerReservedConcurrency"),
        ({"airflowConfigurationOptions": {"core.parallelism": "é"}}, "airflowConfigurationOptions"),
        ({"enviromentName": "typo"}, "unknown context keys"),
        ({"approverRole": "User"}, "approverRole: 'User' is a built-in Airflow role"),
        ({"approvers": "alice,automated"}, "approvers: 'automated'"),
        ({"approvers": "alice,lambda", "serviceUsers": "lambda"}, r"approvers: \['lambda'\] also start runs"),
        ({"productionApprovals": 0}, "productionApprovals"),
    ],
)
def test_bad_context_names_the_key(context, named):
    with pytest.raises(ConfigError, match=named):
        DeploymentConfig.from_mapping(context)


def _scope(entry_id: str, action: str):
    entry = catalogue()[entry_id]
    return scope_for(
        owner=entry.id,
        action=action,
        target_arn_templates=[t.arn for t in entry.targets],
        region="eu-west-1",
        account="123456789012",
        hub_account="999999999999",
        related_arn_templates=[r.arn for r in entry.related_resources if r.arn],
    )


def test_actions_are_scoped_to_the_target_type():
    assert _scope("ec2_status_check_failed", "ec2:StopInstances").resources == (
        "arn:aws:ec2:eu-west-1:123456789012:instance/*",
    )
    assert _scope("s3_public_access", "s3:PutBucketPublicAccessBlock").resources == ("arn:aws:s3:::*",)
    # The reference says DescribeInstances supports no resource-level permissions.
    assert _scope("ec2_status_check_failed", "ec2:DescribeInstances").resources == ("*",)


def test_other_resource_types_use_their_arn_format():
    # A health check's failover changes records of a hosted zone, not the health check.
    entry = catalogue().get("route53_health_check_failed")
    if entry is None:
        pytest.skip("no route53 entry in this catalogue")
    assert _scope(entry.id, "route53:ChangeResourceRecordSets").resources == (
        "arn:aws:route53:::hostedzone/*",
    )


def test_overrides_narrow_pass_role_and_publish():
    from aiops_infra.iam_actions import Scope

    scope = scope_for(
        owner="x",
        action="iam:PassRole",
        target_arn_templates=[
            "arn:aws:cloudtrail:{region}:{account}:trail/{value}",
            "arn:aws:iam::{value}:root",
        ],
        region="r",
        account="123456789012",
    )
    assert scope == Scope(
        ("arn:aws:iam::123456789012:role/*",),
        (("StringEquals", "iam:PassedToService", ("cloudtrail.amazonaws.com",)),),
    )
    assert scope_for(owner="x", action="sns:Publish", region="r", account="1", hub_account="2").resources == (
        "arn:aws:sns:r:2:AIOpsNotifications",
    )


def test_an_unknown_action_names_its_owner():
    with pytest.raises(
        UnclassifiedActionError, match="catalogue entry 's3_public_access'.*'s3:PutBucketPublicAcessBlock'"
    ):
        scope_for(
            owner="catalogue entry 's3_public_access'",
            action="s3:PutBucketPublicAcessBlock",
            region="r",
            account="a",
        )


def test_star_only_for_actions_without_resource_level_permissions():
    assert supports_no_resource_level_permissions("ec2:DescribeInstances")
    assert supports_no_resource_level_permissions("cloudwatch:PutMetricData")  # documented exception
    assert not supports_no_resource_level_permissions("ec2:StopInstances")
    for action in STAR_ONLY_AS_CALLED:
        assert "*" not in action


def test_every_catalogue_action_is_classified():
    """A new entry whose action cannot be scoped fails here first, naming the entry and the action."""
    for entry in catalogue().values():
        for action in entry.permissions:
            _scope(entry.id, action)


def test_ssm_construct_with_no_documents_creates_the_role_only(tmp_path):
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from aiops_infra.ssm_documents import SsmAutomation

    (tmp_path / "README.md").write_text("not a document")
    stack = cdk.Stack(cdk.App(), "Docs")
    SsmAutomation(
        stack,
        "Ssm",
        diagnostics_bucket_arn="arn:aws:s3:::diag",
        topic_arn="arn:aws:sns:eu-west-1:123456789012:t",
        directory=tmp_path,
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SSM::Document", 0)
    template.resource_count_is("AWS::IAM::Policy", 0)
    template.has_resource_properties("AWS::IAM::Role", {"RoleName": "AIOpsSSMAutomationRole"})


def test_runbook_actions_are_scoped_and_unknown_ones_named():
    from aiops_infra.ssm_documents import runbook_resources

    scope = dict(
        document="AIOps-X.yaml",
        region="eu-west-1",
        account="123456789012",
        diagnostics_bucket_arn="arn:aws:s3:::diag",
        topic_arn="arn:aws:sns:eu-west-1:123456789012:t",
    )
    assert runbook_resources("s3:PutObject", **scope) == ["arn:aws:s3:::diag/diagnostics/*"]
    assert runbook_resources("sns:Publish", **scope) == ["arn:aws:sns:eu-west-1:123456789012:t"]
    assert runbook_resources("ec2:DescribeVolumes", **scope) == ["*"]
    assert runbook_resources("ec2:StopInstances", **scope) == [
        "arn:aws:ec2:eu-west-1:123456789012:instance/*"
    ]
    assert runbook_resources("rds:RebootDBInstance", **scope) == ["arn:aws:rds:eu-west-1:123456789012:db:*"]
    with pytest.raises(UnclassifiedActionError, match="AIOps-X.yaml.*'rds:RebootDbInstances'"):
        runbook_resources("rds:RebootDbInstances", **scope)


def test_an_entry_that_runs_its_runbook_passes_only_the_runbooks_role():
    from aiops_infra.iam_actions import Scope

    runs_runbook = [e for e in catalogue().values() if "ssm:StartAutomationExecution" in e.permissions]
    if not runs_runbook:
        pytest.skip("no catalogue entry starts a runbook")
    for entry in runs_runbook:
        kwargs = dict(
            owner=entry.id,
            target_arn_templates=[t.arn for t in entry.targets],
            region="r",
            account="123456789012",
            sibling_actions=entry.permissions,
            ssm_document=entry.ssm_document,
        )
        if "iam:PassRole" in entry.permissions:
            assert scope_for(action="iam:PassRole", **kwargs) == Scope(
                ("arn:aws:iam::123456789012:role/AIOpsSSMAutomationRole",),
                (("StringEquals", "iam:PassedToService", ("ssm.amazonaws.com",)),),
            )
        start = scope_for(action="ssm:StartAutomationExecution", **kwargs)
        assert (
            start.resources[0]
            == f"arn:aws:ssm:r:123456789012:automation-definition/{entry.ssm_document or 'AIOps-*'}:*"
        )
