"""Which resources an IAM action can be scoped to: the one place the policy generators and the policy
test look this up.

Source: the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html),
as the machine-readable copy cfn-lint ships (``cfnlint/data/AdditionalSpecs/Policies.json``, per service:
each action's resource types, each resource type's ARN formats). That is the documented list:

- an action with no resource types supports no resource-level permissions: IAM only accepts
  ``"Resource": "*"`` for it, and only such actions may use ``*`` in our templates (the policy test
  enforces it);
- any other action is scoped to ARNs. For a catalogue entry, the resource types that match the entry's
  target ARN templates use those templates with the name wildcarded (``{value}`` -> ``*``): the event
  names the resource only at run time, so the role may act on any resource of that one type in its
  account and region. The action's other resource types of its own service use their ARN formats,
  wildcarded only where the format has a variable; other services' (optional) types are left out;
- ``_overrides`` narrows actions where the reference alone would be too broad (``iam:PassRole``,
  ``ec2:CreateTags``, ``ssm:StartAutomationExecution``, ``iam:CreateServiceLinkedRole`` to the one service
  of the service-linked role the entry declares as a related resource) or where the resource is one of
  ours (``sns:Publish`` on the AIOps topic, the runbooks' role passed to SSM);
- attaching or detaching a managed policy (``POLICY_ATTACH_ACTIONS``) is conditioned on ``iam:PolicyARN``
  being exactly the quarantine policy: no role can attach another one.

An action the reference does not know (a typo, or a newer action than this cfn-lint) fails the synth
with a message naming the entry and the action.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cfnlint.data.AdditionalSpecs

from matcarv_aiops.remediations.guardduty_high_finding import QUARANTINE_POLICY

POLICIES_JSON = Path(cfnlint.data.AdditionalSpecs.__file__).with_name("Policies.json")
TOPIC_NAME = "AIOpsNotifications"
SSM_AUTOMATION_ROLE_NAME = "AIOpsSSMAutomationRole"
# Actions whose only resource type is optional and does not apply to how we call them, so they are
# authorised on "*"; each with why, and each narrowed by a condition where the action has one.
STAR_ONLY_AS_CALLED = {
    "cloudwatch:PutMetricData": "the 'dataset' resource type is optional; metrics outside a dataset are "
    "authorised on *; every grant is limited by the cloudwatch:namespace condition",
    "cloudwatch:GetMetricData": "the 'dataset' resource type is optional; queries of metrics outside a "
    "dataset are authorised on * (read only; CloudWatch has no condition key to narrow it)",
}


# Attaching or detaching a managed policy: allowed for the quarantine policy only (aiops_infra.guardrails).
POLICY_ATTACH_ACTIONS = (
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:DetachUserPolicy",
    "iam:DetachRolePolicy",
)
SERVICE_LINKED_ROLE_PATH = ":role/aws-service-role/"


def quarantine_policy_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:policy/{QUARANTINE_POLICY}"


class UnclassifiedActionError(ValueError):
    """An action cannot be scoped; the message names the entry (or document) and the action."""


@dataclass(frozen=True)
class Scope:
    resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (operator, key, values)

    def condition_block(self) -> dict | None:
        block: dict = {}
        for operator, key, values in self.conditions:
            block.setdefault(operator, {})[key] = values[0] if len(values) == 1 else list(values)
        return block or None


@lru_cache(maxsize=1)
def _reference() -> dict:
    return json.loads(POLICIES_JSON.read_text(encoding="utf-8"))


def _service(action: str) -> tuple[str, str]:
    service, _, name = action.partition(":")
    return service, name


def resource_types(action: str) -> list[str] | None:
    """The action's resource types; [] if it supports no resource-level permissions; None if unknown."""
    service, name = _service(action)
    entry = _reference().get(service, {}).get("Actions", {}).get(name.lower())
    if entry is None:
        return None
    return [t.rstrip("*") for t in entry.get("Resources", [])]


def supports_no_resource_level_permissions(action: str) -> bool:
    """True where IAM accepts only ``"Resource": "*"`` for the action as we call it."""
    return resource_types(action) == [] or action in STAR_ONLY_AS_CALLED


def arn_formats(service: str, resource_type: str) -> list[str]:
    """ARN templates of a resource type, with {region} and {account}, and ``*`` for every variable part."""
    types = _reference().get(service, {}).get("Resources", {})
    found = types.get(resource_type) or next(
        (v for k, v in types.items() if k.lower() == resource_type.lower()), {}
    )
    formats = []
    for arn in found.get("ARNFormats", []):
        arn = (
            arn.replace("${Partition}", "aws")
            .replace("${Region}", "{region}")
            .replace("${Account}", "{account}")
        )
        formats.append(re.sub(r"\$\{[^}]+\}", "*", arn).replace(".*", "*"))
    return formats


def _matches(target_template: str, arn_format: str) -> bool:
    """Does a catalogue target ARN template name a resource of this ARN format?"""
    sample = target_template.format(value="VALUE", region="REGION", account="123456789012")
    pattern = re.escape(arn_format.format(region="REGION", account="123456789012")).replace(r"\*", ".+")
    return re.fullmatch(pattern, sample) is not None


def _overrides(
    action: str,
    *,
    owner: str,
    related_arn_templates: list[str],
    target_services: set[str],
    siblings: set[str],
    ssm_document: str | None,
    region: str,
    account: str,
    hub_account: str,
) -> Scope | None:
    if action == "sns:Publish":
        # Remediations notify through the AIOps topic in the hub, nothing else.
        return Scope((f"arn:aws:sns:{region}:{hub_account}:{TOPIC_NAME}",))
    if action == "iam:PassRole" and "ssm:StartAutomationExecution" in siblings:
        # An entry that runs its runbook passes the runbooks' role to SSM, and no other role.
        return Scope(
            (f"arn:aws:iam::{account}:role/{SSM_AUTOMATION_ROLE_NAME}",),
            (("StringEquals", "iam:PassedToService", ("ssm.amazonaws.com",)),),
        )
    if action == "iam:PassRole":
        # Only to the service the entry remediates (e.g. a trail's CloudWatch Logs role, back to CloudTrail).
        services = sorted(target_services - {"iam"}) or sorted(target_services)
        return Scope(
            (f"arn:aws:iam::{account}:role/*",),
            (("StringEquals", "iam:PassedToService", tuple(f"{s}.amazonaws.com" for s in services)),),
        )
    if action == "ssm:StartAutomationExecution":
        # The entry's own runbook (any version), or the AIOps runbooks; and the execution it starts.
        document = ssm_document or "AIOps-*"
        return Scope(
            (
                f"arn:aws:ssm:{region}:{account}:automation-definition/{document}:*",
                f"arn:aws:ssm:{region}:{account}:automation-execution/*",
            )
        )
    if action == "iam:CreateServiceLinkedRole":
        # Only the service-linked role the entry declares, and only for its service.
        linked = [t for t in related_arn_templates if SERVICE_LINKED_ROLE_PATH in t]
        if not linked:
            raise UnclassifiedActionError(
                f"{owner}: iam:CreateServiceLinkedRole needs a related resource naming the service-linked "
                f"role (arn:aws:iam::{{account}}{SERVICE_LINKED_ROLE_PATH}<service>/<role name>)"
            )
        services = sorted({t.split(SERVICE_LINKED_ROLE_PATH, 1)[1].split("/", 1)[0] for t in linked})
        return Scope(
            tuple(sorted(t.replace("{account}", account) for t in linked)),
            (("StringEquals", "iam:AWSServiceName", tuple(services)),),
        )
    if action == "ec2:CreateTags":
        # Remediations tag only the snapshots they create.
        return Scope((f"arn:aws:ec2:{region}::snapshot/*",))
    return None


def scope_for(
    *,
    owner: str,
    action: str,
    target_arn_templates: Iterable[str] = (),
    region: str,
    account: str,
    hub_account: str | None = None,
    sibling_actions: Iterable[str] = (),
    ssm_document: str | None = None,
    related_arn_templates: Iterable[str] = (),
) -> Scope:
    """How one action of ``owner`` (a catalogue entry or an SSM document) is granted."""
    templates = [t for t in target_arn_templates if t.startswith("arn:")]
    types = resource_types(action)
    if types is None:
        raise UnclassifiedActionError(
            f"{owner}: action {action!r} is not in the Service Authorization Reference "
            f"({POLICIES_JSON.name} of cfn-lint); check its spelling"
        )
    services = {t.split(":")[2] for t in templates}
    override = _overrides(
        action,
        owner=owner,
        related_arn_templates=list(related_arn_templates),
        target_services=services,
        siblings=set(sibling_actions),
        ssm_document=ssm_document,
        region=region,
        account=account,
        hub_account=hub_account or account,
    )
    if override:
        return override
    if supports_no_resource_level_permissions(action):
        return Scope(("*",))
    service, _ = _service(action)
    resources: set[str] = set()
    for resource_type in types:
        formats = arn_formats(service, resource_type)
        targeted = {t for t in templates for f in formats if _matches(t, f)}
        if targeted:
            resources |= {t.format(value="*", region=region, account=account) for t in targeted}
        else:
            # Other resource types of the action's own service (a snapshot a volume's CreateSnapshot makes);
            # other services' types (license configurations, resource groups) are optional and left out.
            resources |= {
                f.format(region=region, account=account) for f in formats if f.split(":")[2] == service
            }
    if not resources:
        raise UnclassifiedActionError(
            f"{owner}: action {action!r} names resource types {types} without ARN formats"
        )
    if action in POLICY_ATTACH_ACTIONS:
        return Scope(
            tuple(sorted(resources)), (("ArnEquals", "iam:PolicyARN", (quarantine_policy_arn(account),)),)
        )
    return Scope(tuple(sorted(resources)))


def scope_in_regions(*, regions: Iterable[str], **arguments) -> Scope:
    """``scope_for`` in each of ``regions``, their resources together: an IAM role is global, so the role
    that acts in every Region AIOps covers names the resource type in each of them (and no other)."""
    scopes = [scope_for(region=region, **arguments) for region in regions]
    if not scopes:
        raise ValueError(f"{arguments.get('owner')}: {arguments.get('action')} scoped to no Region")
    conditions = {scope.conditions for scope in scopes}
    if len(conditions) != 1:  # conditions name accounts and services, never a Region
        raise ValueError(f"{arguments.get('owner')}: {arguments.get('action')}'s conditions differ by Region")
    resources = sorted({resource for scope in scopes for resource in scope.resources})
    return Scope(tuple(resources), scopes[0].conditions)


def actions_like(prefix: str, resource_type: str) -> list[str]:
    """Every action of the reference whose name starts with ``prefix`` (``"s3:GetObject"``) and that applies
    to ``resource_type`` (``"object"``): what a documented wildcard such as ``s3:GetObject*`` grants on
    that type, as explicit actions (IAM action names are case-insensitive; the reference's are lower
    case)."""
    service, name = _service(prefix)
    actions = _reference().get(service, {}).get("Actions", {})
    return sorted(
        f"{service}:{action}"
        for action, entry in actions.items()
        if action.startswith(name.lower())
        and resource_type in (t.rstrip("*") for t in entry.get("Resources", []))
    )


def unscoped_actions_json(actions: Iterable[str]) -> str:
    """``matcarv_aiops/catalogue/unscoped_actions.json``: which of ``actions`` (the catalogue's) IAM
    authorises only on ``*``. The workers narrow each remediation session with it and have no cfn-lint,
    so the CDK app writes it from this module's knowledge, and a test fails while it is stale."""
    unscoped = sorted({action for action in actions if supports_no_resource_level_permissions(action)})
    document = {
        "written_by": "python -m aiops_infra.iam_actions (from the Service Authorization Reference)",
        "actions": unscoped,
    }
    return json.dumps(document, indent=2) + "\n"


def main() -> None:
    from matcarv_aiops.catalogue import catalogue
    from matcarv_aiops.session_policy import UNSCOPED_ACTIONS_FILE

    actions = [action for entry in catalogue().values() for action in entry.permissions]
    UNSCOPED_ACTIONS_FILE.write_text(unscoped_actions_json(actions), encoding="utf-8")
    print(f"wrote {UNSCOPED_ACTIONS_FILE}")


if __name__ == "__main__":
    main()
