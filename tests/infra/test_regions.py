"""Every Region: the variant synth covers a second one. Each account gets a regional stack there with what
is regional (forwarding rules to the hub's bus in the hub's Region, runbooks, Config rules), naming the
global roles of its home stack; those roles' trusts and policies cover the second Region."""

from __future__ import annotations

import json

from aiops_infra.event_rules import EVENTBRIDGE_ROLE_NAME
from aiops_infra.remediation_roles import remediation_role_name
from aiops_infra.ssm_documents import SSM_AUTOMATION_ROLE_NAME, document_files
from matcarv_aiops.catalogue import catalogue
from tests.infra.conftest import HUB_ACCOUNT, HUB_REGION, MEMBER_STACKS, OTHER_REGION, REGIONAL_STACKS

HOME_BUS = f"arn:aws:events:{HUB_REGION}:{HUB_ACCOUNT}:event-bus/default"


def _by_name(synth, stack: str, kind: str, name_property: str) -> dict[str, dict]:
    return {r["Properties"][name_property]: r["Properties"] for r in synth.resources(stack, kind).values()}


def test_regional_stacks_forward_every_entry_to_the_home_bus_as_the_home_role(synth_variant):
    for stack in REGIONAL_STACKS:
        account = synth_variant.own_account(stack)
        rules = _by_name(synth_variant, stack, "AWS::Events::Rule", "Name")
        assert set(rules) == {f"aiops-{entry.id}" for entry in catalogue().values()}, stack
        for entry in catalogue().values():
            rule = rules[f"aiops-{entry.id}"]
            assert rule["EventPattern"] == entry.trigger
            assert rule["Targets"] == [
                {
                    "Arn": HOME_BUS,
                    "Id": "hub",
                    "RoleArn": f"arn:aws:iam::{account}:role/{EVENTBRIDGE_ROLE_NAME}",
                }
            ]
        # Regional only: no role, policy or anything else IAM (global; the home stack holds them).
        kinds = {r["Type"] for r in synth_variant.templates[stack]["Resources"].values()}
        assert kinds == {"AWS::Events::Rule", "AWS::SSM::Document", "AWS::Config::ConfigRule"}, stack
        documents = _by_name(synth_variant, stack, "AWS::SSM::Document", "Name")
        assert set(documents) == {path.stem for path in document_files()}
        # The organisation's existing rules are left out here as in the home Region.
        assert "cloudtrail-enabled" not in _by_name(
            synth_variant, stack, "AWS::Config::ConfigRule", "ConfigRuleName"
        )


def _roles(synth, stack: str) -> dict[str, dict]:
    return {
        r["Properties"]["RoleName"]: r["Properties"]
        for r in synth.resources(stack, "AWS::IAM::Role").values()
        if "RoleName" in r["Properties"]
    }


def _source_arns(role: dict) -> str:
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    return json.dumps(statement["Condition"]["ArnLike"]["aws:SourceArn"])


def test_the_home_roles_are_trusted_by_and_act_in_the_other_region(synth_variant):
    for stack in ("AIOps", *MEMBER_STACKS):
        roles = _roles(synth_variant, stack)
        # EventBridge assumes the forwarding role for the other Region's rules, SSM the runbooks' role for
        # the other Region's automation executions.
        assert f'"arn:aws:events:{OTHER_REGION}:' in _source_arns(roles[EVENTBRIDGE_ROLE_NAME]), stack
        assert f'"arn:aws:ssm:{OTHER_REGION}:' in _source_arns(roles[SSM_AUTOMATION_ROLE_NAME]), stack
        # A remediation acts on its resource type in either Region, and only in those.
        [policy] = roles[remediation_role_name("sg_open_ssh")]["Policies"]
        resources = json.dumps(policy["PolicyDocument"])
        assert f"arn:aws:ec2:{OTHER_REGION}:" in resources and '"arn:aws:ec2:",' in resources, stack
        assert "arn:aws:ec2:*:" not in resources


def test_the_hub_forwards_its_other_regions_to_its_own_bus(synth_variant, synth):
    hub_role = _roles(synth_variant, "AIOps")[EVENTBRIDGE_ROLE_NAME]
    forward = [p for p in hub_role["Policies"] if p["PolicyName"] == "ForwardToHub"]
    assert [s["Action"] for p in forward for s in p["PolicyDocument"]["Statement"]] == ["events:PutEvents"]
    [statement] = forward[0]["PolicyDocument"]["Statement"]
    assert json.dumps(statement["Resource"]).endswith(':event-bus/default"]]}')
    # One Region: the role only invokes the trigger, as before.
    assert [p["PolicyName"] for p in _roles(synth, "AIOps")[EVENTBRIDGE_ROLE_NAME]["Policies"]] == [
        "InvokeTrigger"
    ]
