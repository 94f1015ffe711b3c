"""No role in any template can write an IAM policy, except attaching the quarantine policy under an
``iam:PolicyARN`` condition; every remediation role carries the permissions boundary and requires a
SourceIdentity; a service-linked role is created only for its one service."""

from __future__ import annotations

import json

import pytest

from aiops_infra.guardrails import BOUNDARY_POLICY_NAME, POLICY_WRITES
from aiops_infra.iam_actions import POLICY_ATTACH_ACTIONS, unscoped_actions_json
from aiops_infra.remediation_roles import ROLE_NAME_PREFIX
from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.remediations.guardduty_high_finding import DENY_ALL, QUARANTINE_POLICY
from matcarv_aiops.session_policy import UNSCOPED_ACTIONS_FILE
from tests.infra.test_iam_policies import _as_list

IDENTITY_POLICIES = {
    "AWS::IAM::Role": "Policies",
    "AWS::IAM::Policy": "PolicyDocument",
    "AWS::IAM::ManagedPolicy": "PolicyDocument",
}
# Everything that writes a policy or a principal whose policy the caller picks, by name (IAM action
# names are case-insensitive).
ESCALATING = {action.lower() for action in (*POLICY_WRITES, *POLICY_ATTACH_ACTIONS)} | {
    "iam:putgrouppolicy",
    "iam:deletepolicyversion",
    "iam:createservicelinkedrole",
}


def _identity_allows(template: dict):
    for logical_id, resource in template["Resources"].items():
        key = IDENTITY_POLICIES.get(resource["Type"])
        if key is None:
            continue
        properties = resource["Properties"]
        documents = (
            [p["PolicyDocument"] for p in properties.get("Policies", [])]
            if key == "Policies"
            else [properties[key]]
        )
        if logical_id.startswith("RemediationRolesGuardrailsBoundary"):
            continue  # a permissions boundary grants nothing (checked on its own below)
        for document in documents:
            for statement in document.get("Statement", []):
                if statement["Effect"] == "Allow":
                    yield logical_id, statement


def _quarantine_arn(template_value) -> bool:
    rendered = json.dumps(template_value)
    return rendered.endswith(f':policy/{QUARANTINE_POLICY}"]]}}') or rendered.endswith(
        f':policy/{QUARANTINE_POLICY}"'
    )


def test_no_role_can_write_an_iam_policy_but_through_the_quarantine_condition(any_synth):
    attaches = 0
    for stack, template in any_synth.templates.items():
        for logical_id, statement in _identity_allows(template):
            for action in _as_list(statement["Action"]):
                where = f"{stack}/{logical_id}: {action}"
                if action.lower() not in ESCALATING:
                    continue
                condition = statement.get("Condition", {})
                if action in POLICY_ATTACH_ACTIONS:
                    assert set(condition) == {"ArnEquals"}, where
                    assert set(condition["ArnEquals"]) == {"iam:PolicyARN"}, where
                    assert _quarantine_arn(condition["ArnEquals"]["iam:PolicyARN"]), where
                    attaches += 1
                elif action == "iam:CreateServiceLinkedRole":
                    assert set(condition) == {"StringEquals"}, where
                    assert set(condition["StringEquals"]) == {"iam:AWSServiceName"}, where
                else:
                    raise AssertionError(f"{where} writes IAM policies")
    assert attaches  # guardduty_high_finding's roles were walked


def test_every_remediation_role_has_the_boundary_and_requires_a_source_identity(any_synth):
    for stack in ("AIOps", *any_synth.member_stacks):
        [boundary] = [
            logical_id
            for logical_id, policy in any_synth.resources(stack, "AWS::IAM::ManagedPolicy").items()
            if policy["Properties"].get("ManagedPolicyName") == BOUNDARY_POLICY_NAME
        ]
        roles = [
            role
            for role in any_synth.resources(stack, "AWS::IAM::Role").values()
            if role["Properties"].get("RoleName", "").startswith(ROLE_NAME_PREFIX)
        ]
        assert len(roles) == len(catalogue())
        for role in roles:
            name = role["Properties"]["RoleName"]
            assert role["Properties"]["PermissionsBoundary"] == {"Ref": boundary}, (stack, name)
            trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            assert sorted(s["Action"] for s in trust) == ["sts:AssumeRole", "sts:SetSourceIdentity"], name
            for statement in trust:
                assert statement["Condition"] == {"Null": {"sts:SourceIdentity": "false"}}, (stack, name)


def test_the_boundary_denies_policy_writes_and_every_policy_but_the_quarantine(any_synth):
    for stack in ("AIOps", *any_synth.member_stacks):
        policies = {
            p["Properties"].get("ManagedPolicyName"): p["Properties"]["PolicyDocument"]
            for p in any_synth.resources(stack, "AWS::IAM::ManagedPolicy").values()
        }
        denies = {s["Sid"]: s for s in policies[BOUNDARY_POLICY_NAME]["Statement"] if s["Effect"] == "Deny"}
        assert set(denies["NoPolicyWrites"]["Action"]) == set(POLICY_WRITES)
        assert denies["NoPolicyWrites"]["Resource"] == "*" and "Condition" not in denies["NoPolicyWrites"]
        others = denies["NoPolicyButTheQuarantine"]
        assert set(others["Action"]) == set(POLICY_ATTACH_ACTIONS) and others["Resource"] == "*"
        assert _quarantine_arn(others["Condition"]["ArnNotEquals"]["iam:PolicyARN"])
        # one ARN: the account's AIOps* roles (the account a token in the hub, a literal in a member)
        protected = denies["NeverThePlatformsRoles"]["Resource"]
        assert not isinstance(protected, list)
        assert json.dumps(protected).endswith((':role/AIOps*"]]}', ':role/AIOps*"'))
        allowed = {
            a
            for s in policies[BOUNDARY_POLICY_NAME]["Statement"]
            if s["Effect"] == "Allow"
            for a in _as_list(s["Action"])
        }
        assert allowed == {a for entry in catalogue().values() for a in entry.permissions}
        assert policies[QUARANTINE_POLICY] == DENY_ALL


def test_the_unscoped_actions_the_workers_read_are_the_references():
    actions = [action for entry in catalogue().values() for action in entry.permissions]
    assert UNSCOPED_ACTIONS_FILE.read_text(encoding="utf-8") == unscoped_actions_json(actions), (
        "stale: write it with `cd infra && python -m aiops_infra.iam_actions`"
    )


def test_a_service_linked_role_is_created_for_its_one_service_only():
    from aiops_infra.iam_actions import UnclassifiedActionError, scope_for

    entry = catalogue()["dynamodb_read_throttles"]
    related = [r.arn for r in entry.related_resources if r.arn]
    scope = scope_for(
        owner=entry.id,
        action="iam:CreateServiceLinkedRole",
        region="eu-west-1",
        account="123456789012",
        related_arn_templates=related,
    )
    service = "dynamodb.application-autoscaling.amazonaws.com"
    assert scope.resources == (
        f"arn:aws:iam::123456789012:role/aws-service-role/{service}/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable",
    )
    assert scope.condition_block() == {"StringEquals": {"iam:AWSServiceName": service}}
    with pytest.raises(
        UnclassifiedActionError, match="x: iam:CreateServiceLinkedRole needs a related resource"
    ):
        scope_for(owner="x", action="iam:CreateServiceLinkedRole", region="r", account="123456789012")


def test_attaching_a_policy_is_conditioned_on_the_quarantine_policy():
    from aiops_infra.iam_actions import scope_for

    scope = scope_for(
        owner="guardduty_high_finding",
        action="iam:AttachRolePolicy",
        target_arn_templates=["arn:aws:iam::{account}:role/{value}"],
        region="eu-west-1",
        account="123456789012",
    )
    assert scope.resources == ("arn:aws:iam::123456789012:role/*",)
    assert scope.condition_block() == {
        "ArnEquals": {"iam:PolicyARN": f"arn:aws:iam::123456789012:policy/{QUARANTINE_POLICY}"}
    }
