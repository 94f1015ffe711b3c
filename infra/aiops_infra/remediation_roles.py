"""One IAM role per catalogue entry, holding exactly the actions the entry declares, each scoped to the
resources ``iam_actions.scope_for`` allows. The DAG's tasks assume it (in the event's account) for
the action: ``AIOPS_REMEDIATION_ROLE_ARN_TEMPLATE`` = ``REMEDIATION_ROLE_ARN_TEMPLATE``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from aiops_infra.iam_actions import Scope, scope_for, supports_no_resource_level_permissions
from aiops_infra.nag import acknowledge
from matcarv_aiops.catalogue import CatalogueEntry

ROLE_NAME_PREFIX = "AIOpsRemediation-"
REMEDIATION_ROLE_ARN_TEMPLATE = "arn:aws:iam::{account}:role/" + ROLE_NAME_PREFIX + "{remediation}"


def remediation_role_name(remediation_id: str) -> str:
    return ROLE_NAME_PREFIX + remediation_id


def entry_statements(
    entry: CatalogueEntry, *, region: str, account: str, hub_account: str | None = None
) -> list[iam.PolicyStatement]:
    """The entry's actions, grouped by how they are scoped, in the catalogue's order."""
    by_scope: dict[Scope, list[str]] = defaultdict(list)
    for action in entry.permissions:
        scope = scope_for(
            owner=f"catalogue entry {entry.id!r}",
            action=action,
            target_arn_templates=[t.arn for t in entry.targets],
            region=region,
            account=account,
            hub_account=hub_account,
            sibling_actions=entry.permissions,
            ssm_document=entry.ssm_document,
        )
        by_scope[scope].append(action)
    return [
        iam.PolicyStatement(
            actions=actions, resources=list(scope.resources), conditions=scope.condition_block()
        )
        for scope, actions in by_scope.items()
    ]


def nag_finding(resource: str, stack: cdk.Stack) -> str:
    """cdk-nag's granular IAM5 finding id for a resource: intrinsics render as <AWS::Region>,
    <Logical.Arn>."""
    return "Resource::" + _render(stack.resolve(resource))


def _render(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return _render(value["Fn::ImportValue"])
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    raise ValueError(f"cannot name a cdk-nag finding for {value!r}")


def acknowledge_scoped_wildcards(
    policy: Construct,
    statements: Iterable[iam.PolicyStatement],
    why: str,
    *,
    reasons: dict[str, str] | None = None,
) -> None:
    """Acknowledge each wildcard resource of ``statements`` on ``policy`` (a role or policy), one granular
    IAM5 finding each; ``reasons`` may give a resource its own reason instead of ``why``. ``"*"`` is
    acknowledged once, naming every action that uses it (all without resource-level permissions)."""
    stack = cdk.Stack.of(policy)
    reasons = reasons or {}
    star_actions: list[str] = []
    for statement in statements:
        for resource in statement.resources:
            if resource == "*":
                star_actions += [a for a in statement.actions if supports_no_resource_level_permissions(a)]
            elif "*" in resource:
                acknowledge(policy, "IAM5", reasons.get(resource, why), finding=nag_finding(resource, stack))
    if star_actions:
        acknowledge(
            policy,
            "IAM5",
            "only actions that support no resource-level permissions use *: " + ", ".join(star_actions),
            finding="Resource::*",
        )


class RemediationRoles(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entries: Iterable[CatalogueEntry],
        trusted_role_arn: str,
        hub_account: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.roles: dict[str, iam.Role] = {}
        for entry in entries:
            statements = entry_statements(
                entry, region=stack.region, account=stack.account, hub_account=hub_account
            )
            role = iam.Role(
                self,
                entry.id,
                role_name=remediation_role_name(entry.id),
                assumed_by=iam.ArnPrincipal(trusted_role_arn),
                description=f"MatCarv AIOps remediation {entry.id}: {entry.action}"[:1000],
                max_session_duration=cdk.Duration.hours(1),
                inline_policies={"Remediation": iam.PolicyDocument(statements=statements)},
            )
            targets = {
                t.arn.format(value="*", region=stack.region, account=stack.account) for t in entry.targets
            }
            acknowledge_scoped_wildcards(
                role,
                statements,
                "resource type of the action, as the Service Authorization Reference gives its ARN, in this "
                "account (and region); the name is not known before the run",
                reasons={
                    arn: f"the event names the {entry.resource_type} at run time: the role may act on that "
                    f"one resource type in this account and region, nothing else"
                    for arn in targets
                },
            )
            self.roles[entry.id] = role
