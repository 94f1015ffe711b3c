"""What keeps a remediation role from granting permissions, to itself or anyone: the managed deny-all
quarantine policy, the one policy a remediation may attach, and the permissions boundary every
remediation role carries.

- ``AIOpsQuarantineDenyAll`` (fixed name): ``guardduty_high_finding`` attaches it to a compromised user
  or role. The role's attach and detach are conditioned on ``iam:PolicyARN`` being exactly this policy
  (``iam_actions.scope_for``) and denied on the ``AIOps*`` roles.
- ``AIOpsRemediationBoundary``: allows at most the union of the catalogue's actions, and denies every IAM
  policy write (``POLICY_WRITES``) and every attach or detach of another policy than the quarantine, so
  even a wrong role policy cannot write or attach one.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_iam as iam
from constructs import Construct

from aiops_infra.iam_actions import POLICY_ATTACH_ACTIONS, quarantine_policy_arn
from matcarv_aiops.remediations.guardduty_high_finding import DENY_ALL, PROTECTED_PREFIX, QUARANTINE_POLICY

BOUNDARY_POLICY_NAME = "AIOpsRemediationBoundary"
ROLE_ATTACH_ACTIONS = ("iam:AttachRolePolicy", "iam:DetachRolePolicy")
# IAM actions that write a policy, or make a principal whose policy the caller chooses: no remediation
# role may call them (the boundary denies them; the template test refuses them in any role).
POLICY_WRITES = (
    "iam:AttachGroupPolicy",
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:CreateRole",
    "iam:CreateUser",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:PutGroupPolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:PutUserPermissionsBoundary",
    "iam:PutUserPolicy",
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy",
)


def protected_roles_arn(account: str) -> str:
    """The platform's own roles, never a quarantine's target (``guardduty_high_finding`` skips them too)."""
    return f"arn:aws:iam::{account}:role/{PROTECTED_PREFIX}*"


def boundary_statements(allowed: Iterable[iam.PolicyStatement], *, account: str) -> list[iam.PolicyStatement]:
    """At most ``allowed`` (the catalogue's actions, as the roles scope them), never a policy write, never
    another policy attached, and no attach or detach on the platform's own roles."""
    return [
        *allowed,
        iam.PolicyStatement(
            sid="NoPolicyWrites", effect=iam.Effect.DENY, actions=list(POLICY_WRITES), resources=["*"]
        ),
        iam.PolicyStatement(
            sid="NoPolicyButTheQuarantine",
            effect=iam.Effect.DENY,
            actions=list(POLICY_ATTACH_ACTIONS),
            resources=["*"],
            conditions={"ArnNotEquals": {"iam:PolicyARN": quarantine_policy_arn(account)}},
        ),
        iam.PolicyStatement(
            sid="NeverThePlatformsRoles",
            effect=iam.Effect.DENY,
            actions=list(ROLE_ATTACH_ACTIONS),
            resources=[protected_roles_arn(account)],
        ),
    ]


class RemediationGuardrails(Construct):
    """The quarantine policy and the remediation roles' permissions boundary, in one account."""

    def __init__(
        self, scope: Construct, construct_id: str, *, allowed: list[iam.PolicyStatement], account: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.quarantine = iam.ManagedPolicy(
            self,
            "Quarantine",
            managed_policy_name=QUARANTINE_POLICY,
            description="MatCarv AIOps quarantine: denies every action; attached by guardduty_high_finding",
            document=iam.PolicyDocument.from_json(DENY_ALL),
        )
        self.boundary = iam.ManagedPolicy(
            self,
            "Boundary",
            managed_policy_name=BOUNDARY_POLICY_NAME,
            description="MatCarv AIOps remediation roles' permissions boundary: the catalogue's actions at "
            "most, no IAM policy writes, no policy attached but the quarantine",
            statements=boundary_statements(allowed, account=account),
        )
