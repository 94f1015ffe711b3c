"""One IAM role per catalogue entry, holding exactly the actions the entry declares, each scoped to the
resources ``iam_actions.scope_for`` allows. The DAG's tasks assume it (in the event's account) for
the action: ``AIOPS_REMEDIATION_ROLE_ARN_TEMPLATE`` = ``REMEDIATION_ROLE_ARN_TEMPLATE``.

Each role's permissions boundary is ``guardrails``' (the catalogue's actions at most, no IAM policy
writes), and its trust requires ``sts:SourceIdentity``: every session names the human behind it (the
approver, or ``automated``) in CloudTrail, as ``matcarv_aiops.aws.target_session`` sets it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from aiops_infra.guardrails import RemediationGuardrails
from aiops_infra.iam_actions import Scope, scope_in_regions, supports_no_resource_level_permissions
from aiops_infra.nag import acknowledge
from matcarv_aiops.catalogue import CatalogueEntry

ROLE_NAME_PREFIX = "AIOpsRemediation-"
REMEDIATION_ROLE_ARN_TEMPLATE = "arn:aws:iam::{account}:role/" + ROLE_NAME_PREFIX + "{remediation}"


def remediation_role_name(remediation_id: str) -> str:
    return ROLE_NAME_PREFIX + remediation_id


def entry_scopes(
    entry: CatalogueEntry,
    *,
    region: str,
    account: str,
    hub_account: str | None = None,
    other_regions: Iterable[str] = (),
) -> dict[Scope, list[str]]:
    """The entry's actions, grouped by how they are scoped, in the catalogue's order; in ``region`` and
    each of ``other_regions`` (the Regions AIOps covers besides the stack's own)."""
    by_scope: dict[Scope, list[str]] = defaultdict(list)
    for action in entry.permissions:
        scope = scope_in_regions(
            owner=f"catalogue entry {entry.id!r}",
            action=action,
            target_arn_templates=[t.arn for t in entry.targets],
            regions=(region, *other_regions),
            account=account,
            hub_account=hub_account,
            sibling_actions=entry.permissions,
            ssm_document=entry.ssm_document,
            related_arn_templates=[r.arn for r in entry.related_resources if r.arn],
        )
        by_scope[scope].append(action)
    return by_scope


def _statements(by_scope: dict[Scope, list[str]]) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            actions=actions, resources=list(scope.resources), conditions=scope.condition_block()
        )
        for scope, actions in by_scope.items()
    ]


def entry_statements(
    entry: CatalogueEntry,
    *,
    region: str,
    account: str,
    hub_account: str | None = None,
    other_regions: Iterable[str] = (),
) -> list[iam.PolicyStatement]:
    return _statements(
        entry_scopes(
            entry, region=region, account=account, hub_account=hub_account, other_regions=other_regions
        )
    )


def catalogue_statements(
    entries: Iterable[CatalogueEntry],
    *,
    region: str,
    account: str,
    hub_account: str | None = None,
    other_regions: Iterable[str] = (),
) -> list[iam.PolicyStatement]:
    """What the permissions boundary allows: every entry's actions, on the resources of their services in
    this account and region (the hub's, for its topic), with the conditions their roles carry. Each role
    scopes its own actions to resource types; the boundary caps the set of actions, and within IAM's
    6,144 characters for a managed policy only at this grain."""
    # With other Regions, the boundary names each service's resources in any Region: listing every Region's
    # ARNs would outgrow IAM's 6,144 characters for a managed policy with two. The roles themselves name
    # each Region covered.
    any_region = bool(tuple(other_regions))
    merged: dict[tuple, tuple[list[str], set[str]]] = {}
    for entry in entries:
        for scope, actions in entry_scopes(
            entry, region=region, account=account, hub_account=hub_account
        ).items():
            unscoped = scope.resources == ("*",)
            actions_of, resources = merged.setdefault((scope.conditions, unscoped), ([], set()))
            actions_of += [action for action in actions if action not in actions_of]
            resources |= (
                {"*"} if unscoped else {_service_wide(r, any_region=any_region) for r in scope.resources}
            )
    return [
        iam.PolicyStatement(
            actions=sorted(actions),
            resources=sorted(resources),
            conditions=Scope(("*",), conditions).condition_block(),
        )
        for (conditions, _), (actions, resources) in merged.items()
    ]


def _service_wide(resource: str, *, any_region: bool = False) -> str:
    """arn:aws:<service>:<region>:<account>:<resource> -> the service's resources in that account (and,
    ``any_region``, in every Region; a global resource's empty Region stays empty). IAM checks the resource
    path of two services, so theirs keep its type: ``arn:aws:iam::<account>:*`` is refused (an IAM path
    starts with ``role/``, ``user/``, ...), and so is an S3 ARN with a region that is not an access
    point's (``arn:aws:s3:<region>:<account>:accesspoint/*``)."""
    parts = resource.split(":", 5)
    if any_region and len(parts) == 6 and parts[3]:
        parts[3] = "*"
    if parts[2] in ("iam", "s3") and len(parts) == 6 and "/" in parts[5]:
        return ":".join(parts[:5]) + ":" + parts[5].split("/", 1)[0] + "/*"
    return ":".join(parts[:5]) + ":*"


def hub_principal(trusted_role_arn: str) -> iam.IPrincipal:
    """The hub's execution role, only with a SourceIdentity: a session without the human behind it is
    refused."""
    return iam.ArnPrincipal(trusted_role_arn).with_conditions({"Null": {"sts:SourceIdentity": "false"}})


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
        other_regions: Iterable[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        entries = list(entries)
        # IAM is global: the roles of the home Region's stack act in every Region AIOps covers.
        other_regions = tuple(other_regions)
        boundary_allows = catalogue_statements(
            entries,
            region=stack.region,
            account=stack.account,
            hub_account=hub_account,
            other_regions=other_regions,
        )
        self.guardrails = RemediationGuardrails(
            self, "Guardrails", allowed=boundary_allows, account=stack.account
        )
        acknowledge_scoped_wildcards(
            self.guardrails.boundary,
            boundary_allows,
            "a permissions boundary grants nothing: it caps every remediation role at the catalogue's "
            "actions on the resource types their roles name (the resource is named at run time)",
        )
        self.roles: dict[str, iam.Role] = {}
        for entry in entries:
            statements = entry_statements(
                entry,
                region=stack.region,
                account=stack.account,
                hub_account=hub_account,
                other_regions=other_regions,
            )
            role = iam.Role(
                self,
                entry.id,
                role_name=remediation_role_name(entry.id),
                assumed_by=hub_principal(trusted_role_arn),
                description=f"MatCarv AIOps remediation {entry.id}: {entry.action}"[:1000],
                max_session_duration=cdk.Duration.hours(1),
                inline_policies={"Remediation": iam.PolicyDocument(statements=statements)},
                permissions_boundary=self.guardrails.boundary,
            )
            # AssumeRole with a SourceIdentity needs sts:SetSourceIdentity in the trust as well.
            role.assume_role_policy.add_statements(  # type: ignore[union-attr]
                iam.PolicyStatement(
                    actions=["sts:SetSourceIdentity"], principals=[hub_principal(trusted_role_arn)]
                )
            )
            targets = {
                t.arn.format(value="*", region=region, account=stack.account)
                for t in entry.targets
                for region in (stack.region, *other_regions)
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
