"""The member stack's AWS Config rules: one per Config rule the catalogue starts on, with SPEC's
parameters, named as the entries' patterns expect; the rules the organisation has are left out. And the
hub refuses to synth without being told which accounts are production."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from aiops_infra.config import ConfigError, DeploymentConfig
from aiops_infra.config_rules import ConfigRules
from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.ingress.patterns import mismatch
from tests.infra.conftest import MEMBER_STACKS

# SPEC's words, written here again so that a changed number in an entry fails this test.
SPEC_RULES = {
    "access-keys-rotated": ("ACCESS_KEYS_ROTATED", {"maxAccessKeyAge": "90"}),  # "key age > 90 days"
    "restricted-ssh": ("INCOMING_SSH_DISABLED", None),  # "Security Group with 0.0.0.0/0 SSH"
    "cloudtrail-enabled": ("CLOUD_TRAIL_ENABLED", None),  # "CloudTrail disabled"
}


def _rules(resources: dict[str, dict]) -> dict[str, dict]:
    return {
        r["Properties"]["ConfigRuleName"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Config::ConfigRule"
    }


def _all_rules() -> dict[str, dict]:
    """The rules of a member stack whose organisation has none of them yet."""
    stack = cdk.Stack(cdk.App(), "Member")
    ConfigRules(stack, "Rules", entries=catalogue().values(), existing=())
    return _rules(Template.from_stack(stack).to_json()["Resources"])


def test_each_config_entry_has_its_rule_with_specs_parameters():
    rules = _all_rules()
    assert set(rules) == set(SPEC_RULES)
    for name, (identifier, parameters) in SPEC_RULES.items():
        rule = rules[name]
        assert rule["Source"] == {"Owner": "AWS", "SourceIdentifier": identifier}, name
        assert rule.get("InputParameters") == parameters, name
    assert rules["restricted-ssh"]["Scope"] == {"ComplianceResourceTypes": ["AWS::EC2::SecurityGroup"]}
    assert rules["access-keys-rotated"]["MaximumExecutionFrequency"] == "TwentyFour_Hours"


def test_a_rule_going_non_compliant_starts_its_entry():
    starts = {
        "access-keys-rotated": ("iam_access_key_old", "AWS::IAM::User", "AIDAEXAMPLE"),
        "restricted-ssh": ("sg_open_ssh", "AWS::EC2::SecurityGroup", "sg-0123456789abcdef0"),
        "cloudtrail-enabled": ("cloudtrail_disabled", "AWS::::Account", "123456789012"),
    }
    entries = catalogue()
    for name in _all_rules():
        entry_id, resource_type, resource_id = starts[name]
        event = {
            "source": "aws.config",
            "detail-type": "Config Rules Compliance Change",
            "account": "123456789012",
            "region": "us-east-1",
            "detail": {
                "configRuleName": name,
                "messageType": "ComplianceChangeNotification",
                "resourceType": resource_type,
                "resourceId": resource_id,
                "awsAccountId": "123456789012",
                "awsRegion": "us-east-1",
                "newEvaluationResult": {"complianceType": "NON_COMPLIANT"},
            },
        }
        assert mismatch(entries[entry_id].trigger, event) is None, (
            name,
            mismatch(entries[entry_id].trigger, event),
        )


def test_rules_the_organisation_has_are_left_out(synth_variant):
    # The variant synth names cloudtrail-enabled as existing; each member stack leaves it out.
    for member in MEMBER_STACKS:
        rules = _rules(synth_variant.resources(member, "AWS::Config::ConfigRule"))
        assert set(rules) == set(SPEC_RULES) - {"cloudtrail-enabled"}, member


def test_an_unknown_existing_rule_is_refused():
    with pytest.raises(ValueError, match=r"existingConfigRules names \['cloudtrail-on'\]"):
        ConfigRules(cdk.Stack(cdk.App()), "Rules", entries=catalogue().values(), existing=["cloudtrail-on"])


def test_the_hub_refuses_to_synth_without_the_production_accounts():
    from aiops_infra.stacks import AIOpsStack

    config = DeploymentConfig.from_mapping({})
    with pytest.raises(ConfigError, match=r"^context productionAccountIds: required to deploy the hub"):
        AIOpsStack(cdk.App(), "AIOps", config=config, source=None, entries=[], trigger_code=Path("."))
    assert DeploymentConfig.from_mapping({"productionAccountIds": ""}).hub_production_accounts() == ()
    with pytest.raises(ConfigError, match=r"nonProductionAccountIds: \['111111111111'\] are also"):
        DeploymentConfig.from_mapping(
            {"productionAccountIds": "111111111111", "nonProductionAccountIds": "111111111111"}
        )


def test_the_account_classes_reach_the_dags(synth_variant):
    [environment] = synth_variant.resources("AIOps", "AWS::MWAA::Environment").values()
    options = environment["Properties"]["AirflowConfigurationOptions"]
    assert options["aiops.non_production_accounts"] == "111111111111"
    # Given empty: no option (MWAA refuses empty values), and the core's default, none, applies.
    assert "aiops.production_accounts" not in options
