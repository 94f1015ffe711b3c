"""What moto's enforcement does not evaluate, checked on the synthesized policies instead (see
``tests/iam/policies.py`` for what it does evaluate):

- resource ARNs (moto checks them for S3 and sts:AssumeRole only): every resource of a generated role
  (remediation, maintenance, SSM Automation) is an ARN of one of the action's own resource types, in the
  stack's account and region, or ``*`` for an action with no resource-level permissions;
- conditions (moto ignores them in identity policies): the narrowing conditions the generators promise
  are on every grant that needs one;
- trust principals (moto compares a session's ARN verbatim, so the tests trust the session): the
  generated roles trust the execution role and nothing else.
"""

from __future__ import annotations

import re

from aiops_infra.iam_actions import arn_formats, resource_types, supports_no_resource_level_permissions
from aiops_infra.maintenance_roles import ROLE_NAME_PREFIX as MAINTENANCE_PREFIX
from aiops_infra.remediation_roles import ROLE_NAME_PREFIX as REMEDIATION_PREFIX
from aiops_infra.ssm_documents import SSM_AUTOMATION_ROLE_NAME
from matcarv_aiops.maintenance import job_permissions
from tests.iam.policies import execution_role
from tests.infra.conftest import OTHER_REGION

GENERATED = (REMEDIATION_PREFIX, MAINTENANCE_PREFIX, SSM_AUTOMATION_ROLE_NAME)
PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Region": "us-east-1", "AWS::Partition": "aws"}
# Conditions the generators put on every grant of these actions.
REQUIRED_CONDITIONS = {
    "cloudwatch:PutMetricData": "cloudwatch:namespace",
    "iam:PassRole": "iam:PassedToService",
}


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _render(value) -> str:
    """A resource with the pseudo parameters filled in; anything else stays a visible placeholder."""
    if isinstance(value, str):
        return value
    if "Ref" in value:  # a parameter (the hub's account id) stands for another account
        return PSEUDO.get(value["Ref"], "210987654321" if "Account" in value["Ref"] else f"<{value['Ref']}>")
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(p) for p in parts)
    return f"<{value}>"


def generated_roles(templates: dict) -> list[tuple[str, str, dict]]:
    """(stack, role name, role resource) of every generated role in the templates."""
    found = []
    for stack, template in templates.items():
        for resource in template["Resources"].values():
            name = resource.get("Properties", {}).get("RoleName")
            if resource["Type"] == "AWS::IAM::Role" and isinstance(name, str) and name.startswith(GENERATED):
                found.append((stack, name, resource))
    return found


def _statements(role: dict):
    for policy in role["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def _within(resource: str, arn_format: str, region: str = "us-east-1") -> bool:
    """Is every ARN ``resource`` names (its ``*`` standing for any text) one of ``arn_format``'s, in
    ``region``?"""
    sample = resource.replace("*", "VALUE")
    pattern = re.escape(arn_format.format(region=region, account="ACCOUNT"))
    pattern = pattern.replace(r"\*", ".+").replace("ACCOUNT", r"[0-9]{12}")
    return re.fullmatch(pattern, sample) is not None


def test_the_generated_roles_are_all_there(templates):
    names = {name for _, name, _ in generated_roles(templates)}
    assert {MAINTENANCE_PREFIX + job for job in job_permissions()} <= names
    assert any(n.startswith(REMEDIATION_PREFIX) for n in names) and SSM_AUTOMATION_ROLE_NAME in names


def test_the_members_hold_the_roles_of_the_jobs_that_act_in_every_account(member_templates):
    cross_account = {
        MAINTENANCE_PREFIX + j for j, p in job_permissions().items() if p.every_account_and_region
    }
    assert cross_account, "alarm_sync acts in every account"
    for stack, template in member_templates.items():
        names = {name for _, name, _ in generated_roles({stack: template})}
        assert {n for n in names if n.startswith(MAINTENANCE_PREFIX)} == cross_account, stack


def test_every_resource_of_a_generated_role_is_of_the_actions_own_type(templates, member_templates):
    for stack, name, role in generated_roles({**templates, **member_templates}):
        # The variant's members cover a second Region: their roles name it too, and no other.
        regions = ("us-east-1", OTHER_REGION) if stack in member_templates else ("us-east-1",)
        for statement in _statements(role):
            resources = [_render(r) for r in _as_list(statement["Resource"])]
            for action in _as_list(statement["Action"]):
                if resources == ["*"]:
                    assert supports_no_resource_level_permissions(action), (stack, name, action)
                    continue
                service = action.split(":")[0]
                formats = [f for t in resource_types(action) or [] for f in arn_formats(service, t)]
                for resource in resources:
                    if resource.startswith("<"):
                        continue  # a resource of the stack itself (GetAtt, a parameter): exactly that one
                    assert "<" not in resource, (stack, name, action, resource)
                    assert any(_within(resource, f, r) for f in formats for r in regions), (
                        f"{stack}/{name}: {action} on {resource} is not one of its resource types {formats}"
                    )


def test_conditions_moto_ignores_are_on_every_grant(templates):
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            documents = [p["PolicyDocument"] for p in resource.get("Properties", {}).get("Policies", [])]
            if resource["Type"] == "AWS::IAM::Policy":
                documents.append(resource["Properties"]["PolicyDocument"])
            for statement in (s for d in documents for s in d["Statement"] if s["Effect"] == "Allow"):
                for action in _as_list(statement["Action"]):
                    key = REQUIRED_CONDITIONS.get(action)
                    if key:
                        keys = {k for block in statement.get("Condition", {}).values() for k in block}
                        assert key in keys, f"{stack}/{logical_id}: {action} without a {key} condition"


def test_generated_hub_roles_trust_the_execution_role_only(templates):
    hub = templates["AIOps"]
    execution_id, _ = execution_role(hub)
    for stack, name, role in generated_roles({"AIOps": hub}):
        if name == SSM_AUTOMATION_ROLE_NAME:
            continue  # assumed by SSM Automation (its conditions: tests/infra/test_trust_conditions.py)
        principals = [s["Principal"] for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]]
        # one statement, or two for a remediation role (AssumeRole, SetSourceIdentity): each the role
        assert principals and all(p == {"AWS": {"Fn::GetAtt": [execution_id, "Arn"]}} for p in principals), (
            stack,
            name,
            principals,
        )


def test_the_stack_passes_the_maintenance_role_template_naming_its_roles(templates):
    from aiops_infra.maintenance_roles import MAINTENANCE_ROLE_ARN_TEMPLATE, maintenance_role_name

    hub = templates["AIOps"]
    [environment] = [r for r in hub["Resources"].values() if r["Type"] == "AWS::MWAA::Environment"]
    template = environment["Properties"]["AirflowConfigurationOptions"]["aiops.maintenance_role_arn_template"]
    assert template == MAINTENANCE_ROLE_ARN_TEMPLATE
    roles = {name for _, name, _ in generated_roles({"AIOps": hub})}
    for job in job_permissions():
        arn = template.format(account="123456789012", job=job)
        assert arn.endswith(":role/" + maintenance_role_name(job)) and maintenance_role_name(job) in roles
