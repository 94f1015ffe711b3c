"""Every IAM policy in every template fits IAM's size quotas once deployed: a managed policy (the
permissions boundary grows with the catalogue) at most 6,144 characters, a role's inline policies together
at most 10,240. IAM counts the policy as JSON without whitespace; the account, partition and region are
rendered at their longest, and any other reference (an ARN or a name of another resource) as a 128-character
value, so the figures here are upper bounds. A template that fails here would fail `cdk deploy`."""

from __future__ import annotations

import json
from typing import Any

MANAGED_POLICY_MAX_CHARS = 6_144  # IAM quota: managed policy size
ROLE_INLINE_POLICIES_MAX_CHARS = 10_240  # IAM quota: aggregate inline policy size per role
PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws-us-gov",  # the longest partition name a deployment could have
    "AWS::Region": "ap-southeast-2",  # as long as any commercial region's name
    "AWS::URLSuffix": "amazonaws.com",
}
OTHER_REFERENCE = "x" * 128  # an attribute or name of another resource: longer than any of ours


def _rendered(value: Any) -> Any:
    """``value`` with its intrinsics replaced by the text they become at deploy time (at most)."""
    if isinstance(value, list):
        return [_rendered(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.keys() == {"Ref"}:
        return PSEUDO_PARAMETERS.get(value["Ref"], OTHER_REFERENCE)
    if value.keys() == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_rendered(part)) for part in parts)
    if len(value) == 1 and next(iter(value)).startswith("Fn::"):
        return OTHER_REFERENCE
    return {key: _rendered(item) for key, item in value.items()}


def size(document: dict[str, Any]) -> int:
    """A policy document's size as IAM counts it: its JSON without whitespace."""
    return len(json.dumps(_rendered(document), separators=(",", ":")))


def test_the_renderer_counts_what_iam_counts():
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::b/*"]]},
            }
        ],
    }
    expected = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject",'
        '"Resource":"arn:aws-us-gov:s3:::b/*"}]}'
    )
    assert size(document) == len(expected)
    assert size({"Resource": {"Fn::GetAtt": ["Table", "Arn"]}}) == len(f'{{"Resource":"{OTHER_REFERENCE}"}}')


def test_every_managed_policy_fits_iams_quota(any_synth):
    built = any_synth
    sizes = {
        (stack, resource["Properties"].get("ManagedPolicyName", logical_id)): size(
            resource["Properties"]["PolicyDocument"]
        )
        for stack in built.templates
        for logical_id, resource in built.resources(stack, "AWS::IAM::ManagedPolicy").items()
    }
    assert sizes, "no managed policy found"
    too_big = {name: chars for name, chars in sizes.items() if chars > MANAGED_POLICY_MAX_CHARS}
    assert not too_big, f"over IAM's {MANAGED_POLICY_MAX_CHARS} characters: {too_big}"


def test_every_roles_inline_policies_fit_iams_quota(any_synth):
    built = any_synth
    too_big = {}
    for stack in built.templates:
        roles = built.resources(stack, "AWS::IAM::Role")
        inline = {
            logical_id: sum(size(p["PolicyDocument"]) for p in role["Properties"].get("Policies", []))
            for logical_id, role in roles.items()
        }
        # AWS::IAM::Policy resources are inline policies of the roles they name.
        for policy in built.resources(stack, "AWS::IAM::Policy").values():
            for role in policy["Properties"].get("Roles", []):
                if isinstance(role, dict) and role.get("Ref") in inline:
                    inline[role["Ref"]] += size(policy["Properties"]["PolicyDocument"])
        too_big.update(
            {(stack, role): chars for role, chars in inline.items() if chars > ROLE_INLINE_POLICIES_MAX_CHARS}
        )
    assert not too_big, f"inline policies over IAM's {ROLE_INLINE_POLICIES_MAX_CHARS} characters: {too_big}"
