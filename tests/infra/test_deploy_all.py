"""`cdk deploy --all` from a clean account: every stack deploys with no input (each parameter has a
default), no two stacks in one account (IAM) or account and region create the same physical name, the
order is source, hub, members, and the MWAA environment pins the bundle's object versions the source
stack's upload left, read again whenever a file changes."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aiops_infra.config import ConfigError, DeploymentConfig
from aiops_infra.event_rules import rule_name
from aiops_infra.mwaa import PLUGINS_PATH, REQUIREMENTS_PATH, STARTUP_PATH
from aiops_infra.remediation_roles import remediation_role_name
from matcarv_aiops.catalogue import catalogue
from tests.infra.conftest import (
    HUB_ACCOUNT,
    HUB_REGION,
    MEMBER_ACCOUNTS,
    MEMBER_STACKS,
    OTHER_REGION,
    REGIONAL_STACKS,
)

# The properties that give a resource its physical name, by where the name must be unique: IAM names per
# account, bucket names everywhere, the others per account and Region (a stack's own, or the hub's). (An
# AWS::IAM::Policy's PolicyName is inline, unique per role only.)
ACCOUNT_WIDE = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}
GLOBAL = {"AWS::S3::Bucket": "BucketName"}
REGIONAL = {
    "AWS::Events::Rule": "Name",
    "AWS::Events::EventBusPolicy": "StatementId",
    "AWS::SSM::Document": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::MWAA::Environment": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Config::ConfigRule": "ConfigRuleName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}
VERSION_PROPERTIES = {
    PLUGINS_PATH: "PluginsS3ObjectVersion",
    REQUIREMENTS_PATH: "RequirementsS3ObjectVersion",
    STARTUP_PATH: "StartupScriptS3ObjectVersion",
}


def _account(synth, stack: str) -> str:
    """The account a stack deploys into: its own, or (environment-agnostic) the deploying credentials',
    which are the hub's."""
    own = synth.own_account(stack)
    return HUB_ACCOUNT if isinstance(own, dict) else own


def _region(synth, stack: str) -> str:
    """The Region a stack deploys into: its own (the regional stacks), or the CLI's, which is the hub's."""
    region = synth.manifest["artifacts"][stack]["environment"].split("/")[3]
    return HUB_REGION if region == "unknown-region" else region


def _render(value: Any, account: str, stack: str, region: str = HUB_REGION) -> str:
    """A name as deployed: the account and Region filled in, another resource's attribute kept distinct
    per stack."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("Ref") == "AWS::AccountId":
        return account
    if isinstance(value, dict) and value.get("Ref") == "AWS::Region":
        return region
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part, account, stack, region) for part in parts)
    return f"{stack}:{json.dumps(value, sort_keys=True)}"


def physical_names(synth, accounts: dict[str, str]) -> Counter:
    """(scope, resource type, name) of every named resource; ``accounts`` maps each stack to the account
    it deploys into. The scope of a regional name is its account and Region."""
    names: Counter = Counter()
    for stack, template in synth.templates.items():
        account, region = accounts[stack], _region(synth, stack)
        for resource in template["Resources"].values():
            kind, props = resource["Type"], resource.get("Properties", {})
            for table, scope in (
                (ACCOUNT_WIDE, account),
                (GLOBAL, "global"),
                (REGIONAL, f"{account}/{region}"),
            ):
                if kind in table and table[kind] in props:
                    names[(scope, kind, _render(props[table[kind]], account, stack, region))] += 1
    return names


def test_every_stack_deploys_with_no_input(any_synth):
    for stack, template in any_synth.templates.items():
        for name, parameter in template.get("Parameters", {}).items():
            assert "Default" in parameter, f"{stack}: parameter {name} has no default; --all would stop"


def test_no_two_stacks_in_one_account_create_the_same_physical_name(any_synth):
    accounts = {stack: _account(any_synth, stack) for stack in any_synth.templates}
    names = physical_names(any_synth, accounts)
    # The walk saw the fixed names: each entry's remediation role and rule, in every account.
    fixed = {remediation_role_name(e.id) for e in catalogue().values()} | {
        rule_name(e) for e in catalogue().values()
    }
    for account in set(accounts.values()):
        assert fixed <= {name for scope, _, name in names if scope in (account, f"{account}/{HUB_REGION}")}, (
            account
        )
    # The rules again in every account's other Regions (the variant's), under the same names.
    rules = {rule_name(e) for e in catalogue().values()}
    for stack in set(REGIONAL_STACKS) & set(any_synth.templates):
        where = f"{accounts[stack]}/{OTHER_REGION}"
        assert rules <= {name for scope, _, name in names if scope == where}, stack
    assert [name for name, count in names.items() if count > 1] == []


def test_a_member_stack_in_the_hub_account_would_clash(synth_variant):
    """What the test above guards against: the member stack's roles and rules, deployed in the hub's
    account (as the old environment-agnostic member stack would be by `cdk deploy --all`), take names the
    hub stack holds."""
    accounts = {stack: _account(synth_variant, stack) for stack in synth_variant.templates}
    accounts[MEMBER_STACKS[0]] = HUB_ACCOUNT
    clashes = {
        name for (_, kind, name), count in physical_names(synth_variant, accounts).items() if count > 1
    }
    assert {"AIOpsSSMAutomationRole", "AIOpsEventBridgeRole", "AIOpsRemediation-ec2_status_check_failed"} <= (
        clashes
    )
    assert "aiops-ec2_status_check_failed" in clashes


def test_stacks_deploy_source_then_hub_then_members(synth, synth_variant):
    for each in (synth, synth_variant):
        artifacts = each.manifest["artifacts"]
        assert "AIOpsSource" in artifacts["AIOps"]["dependencies"]
        assert not {"AIOps", *MEMBER_STACKS} & set(artifacts["AIOpsSource"].get("dependencies", []))
    artifacts = synth_variant.manifest["artifacts"]
    for account, stack in zip(MEMBER_ACCOUNTS, MEMBER_STACKS, strict=True):
        assert "AIOps" in artifacts[stack]["dependencies"]
        assert not set(MEMBER_STACKS) & set(artifacts["AIOps"].get("dependencies", []))
        # In the member's account, in the region the hub is deployed in (the CLI's).
        assert artifacts[stack]["environment"] == f"aws://{account}/unknown-region"
    assert not set(MEMBER_STACKS) & set(synth.templates)


def test_regional_stacks_deploy_after_their_accounts_home_stack(synth, synth_variant):
    """One per account (the hub's and each member's) and other Region, in that account and Region, after
    the stack whose roles it names; none without other Regions."""
    artifacts = synth_variant.manifest["artifacts"]
    homes = {HUB_ACCOUNT: "AIOps", **dict(zip(MEMBER_ACCOUNTS, MEMBER_STACKS, strict=True))}
    for account, home in homes.items():
        stack = f"AIOpsRegion-{account}-{OTHER_REGION}"
        assert stack in REGIONAL_STACKS
        assert artifacts[stack]["environment"] == f"aws://{account}/{OTHER_REGION}"
        assert home in artifacts[stack]["dependencies"], stack
        assert not set(REGIONAL_STACKS) & set(artifacts[home].get("dependencies", []))
    assert not {name for name in synth.templates if name.startswith("AIOpsRegion-")}


def test_regions_are_checked():
    two = {"regions": "us-east-1,eu-west-1"}
    config = DeploymentConfig.from_mapping(two)
    assert config.hub_region("us-east-1") == "us-east-1"
    assert config.extra_regions("us-east-1") == ("eu-west-1",)
    assert DeploymentConfig().hub_region(None) is None
    assert DeploymentConfig().extra_regions("us-east-1") == ()
    assert DeploymentConfig.from_mapping({**two, "hubRegion": "eu-west-1"}).hub_region(None) == "eu-west-1"
    with pytest.raises(
        ConfigError, match=r"^context regions: us-east-1,eu-west-1 leaves out .* eu-central-1"
    ):
        config.hub_region("eu-central-1")
    with pytest.raises(ConfigError, match=r"^context hubRegion: the regional stacks .* -c hubRegion="):
        config.hub_region(None)
    with pytest.raises(ConfigError, match="hubRegion: eu-west-1, but the CLI deploys to us-east-1"):
        DeploymentConfig.from_mapping({**two, "hubRegion": "eu-west-1"}).hub_region("us-east-1")
    with pytest.raises(ConfigError, match=r"^context hubAccountId: the hub account's regional stacks"):
        config.hub_account(None)
    with pytest.raises(ConfigError, match=r"^context regions: not AWS Region names: \['Ireland'\]"):
        DeploymentConfig.from_mapping({"regions": "us-east-1,Ireland"})
    with pytest.raises(ConfigError, match=r"^context regions: \['eu-west-1'\] listed more than once"):
        DeploymentConfig.from_mapping({"regions": "eu-west-1,us-east-1,eu-west-1"})
    with pytest.raises(ConfigError, match=r"^context hubRegion: not AWS Region names: \['us_east_1'\]"):
        DeploymentConfig.from_mapping({"hubRegion": "us_east_1"})


def test_the_hub_account_for_member_stacks():
    members = DeploymentConfig.from_mapping({"memberAccountIds": "111111111111"})
    assert members.hub_account("999999999999") == "999999999999"
    assert DeploymentConfig().hub_account(None) is None
    pinned = DeploymentConfig.from_mapping(
        {"memberAccountIds": "111111111111", "hubAccountId": "999999999999"}
    )
    assert pinned.hub_account(None) == "999999999999"
    assert pinned.hub_account("999999999999") == "999999999999"
    with pytest.raises(ConfigError, match=r"^context hubAccountId: the member stacks .* -c hubAccountId="):
        members.hub_account(None)
    with pytest.raises(
        ConfigError, match="hubAccountId: 999999999999, but the credentials are for account 1"
    ):
        pinned.hub_account("123456789012")
    with pytest.raises(ConfigError, match="memberAccountIds: 111111111111 is the hub account"):
        members.hub_account("111111111111")
    with pytest.raises(ConfigError, match="memberAccountIds: 999999999999 is the hub account"):
        DeploymentConfig.from_mapping(
            {"memberAccountIds": "111111111111,999999999999", "hubAccountId": "999999999999"}
        ).hub_account(None)
    with pytest.raises(ConfigError, match="hubAccountId: '9999' is not a 12-digit account id"):
        DeploymentConfig.from_mapping({"hubAccountId": "9999"})
    with pytest.raises(ConfigError, match="unknown context keys.*pluginsVersion"):
        DeploymentConfig.from_mapping({"pluginsVersion": "v1"})


def _join(value: Any) -> str:
    """A template string with its intrinsics as placeholders (a JSON string value stays parsable)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(_join(part) for part in value["Fn::Join"][1])
    return "<token>"


def _staged_bundle(synth) -> Path:
    [deployment] = synth.resources("AIOpsSource", "Custom::CDKBucketDeployment").values()
    [key] = deployment["Properties"]["SourceObjectKeys"]
    return synth.outdir / f"asset.{key.removesuffix('.zip')}"


def test_the_environment_pins_the_uploaded_versions_read_at_deploy_time(any_synth):
    """Each version is read with HeadObject from the key the source stack uploads, by a custom resource
    whose properties carry the sha256 of the file it uploads: a changed file changes them, so CloudFormation
    reads the new version and MWAA updates the environment."""
    template = any_synth.templates["AIOps"]
    [environment] = any_synth.resources("AIOps", "AWS::MWAA::Environment").values()
    bundle = _staged_bundle(any_synth)
    source_bucket = environment["Properties"]["SourceBucketArn"]
    for key, prop in VERSION_PROPERTIES.items():
        reader_id, attribute = environment["Properties"][prop]["Fn::GetAtt"]
        assert attribute == "VersionId"
        reader = template["Resources"][reader_id]
        assert reader["Type"] == "Custom::AWS"
        digest = hashlib.sha256((bundle / key).read_bytes()).hexdigest()
        for phase in ("Create", "Update"):
            call = json.loads(_join(reader["Properties"][phase]))
            assert (call["service"], call["action"], call["outputPaths"]) == (
                "S3",
                "headObject",
                ["VersionId"],
            )
            assert call["parameters"]["Key"] == key
            assert call["physicalResourceId"] == {"id": f"{key}@sha256:{digest}"}
        # The bucket is the environment's source bucket (the name taken from its imported ARN).
        bucket_name = json.dumps(reader["Properties"]["Create"])
        assert json.dumps(source_bucket["Fn::ImportValue"]) in bucket_name
        # HeadObject of the current version needs s3:GetObject: on this key of that bucket only.
        [policy_id] = reader["DependsOn"]
        [statement] = template["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "s3:GetObject"
        assert statement["Resource"] == {"Fn::Join": ["", [source_bucket, f"/{key}"]]}


def _reader_calls(bundle_dir: Path) -> dict[str, str]:
    """Each key's HeadObject call as a small stack synthesizes it from ``bundle_dir``."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Template

    from aiops_infra.buckets import BundleObjectVersions

    stack = cdk.Stack(cdk.App(), "Versions")
    readers = BundleObjectVersions(
        stack,
        "BundleVersions",
        bucket=s3.Bucket.from_bucket_name(stack, "Source", "aiops-source"),
        bundle_dir=bundle_dir,
        keys=tuple(VERSION_PROPERTIES),
    )
    resources = Template.from_stack(stack).find_resources("Custom::AWS")
    calls = {
        json.loads(r["Properties"]["Update"])["parameters"]["Key"]: r["Properties"]["Update"]
        for r in resources.values()
    }
    assert set(calls) == set(readers.versions) == set(VERSION_PROPERTIES)
    return calls


def test_a_changed_file_is_read_again_and_the_others_are_not(tmp_path):
    for key in VERSION_PROPERTIES:
        (tmp_path / key).write_bytes(f"{key} v1".encode())
    before = _reader_calls(tmp_path)
    (tmp_path / PLUGINS_PATH).write_bytes(b"plugins.zip v2")
    after = _reader_calls(tmp_path)
    assert before[PLUGINS_PATH] != after[PLUGINS_PATH]
    assert {k: v for k, v in before.items() if k != PLUGINS_PATH} == {
        k: v for k, v in after.items() if k != PLUGINS_PATH
    }
    (tmp_path / STARTUP_PATH).unlink()
    with pytest.raises(FileNotFoundError, match="no startup.sh to pin a version of"):
        _reader_calls(tmp_path)
