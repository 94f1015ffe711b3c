"""Quarantine one IAM user or role that GuardDuty reported with a HIGH or CRITICAL finding: attach the
account's managed deny-all policy (an explicit Deny beats every Allow, including ones attached later),
detached again by the rollback.

The policy is created by the member stack under a fixed name, and the remediation role may attach that one
policy and no other (``iam:PolicyARN`` condition, and the roles' permissions boundary), never to an
``AIOps*`` role: the quarantine cannot be turned into a way to grant permissions.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

from botocore.exceptions import ClientError

from matcarv_aiops.pipeline.protocol import StepFailed
from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list

QUARANTINE_POLICY = "AIOpsQuarantineDenyAll"
DENY_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "AIOpsQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}],
}
# Never quarantine the platform's own roles (AIOpsRemediationLambdaRole, ...): that would stop the
# remediation, its rollback and the audit with it.
PROTECTED_PREFIX = "AIOps"


class QuarantinePolicyUnusable(StepFailed):
    """The account's quarantine policy is missing or does not deny everything: the run fails, audited with
    this reason, and nothing is attached."""


def quarantine_policy_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:policy/{QUARANTINE_POLICY}"


def _min_severity(ctx) -> float:
    """The least severity the entry acts on: its trigger condition's (SPEC: HIGH/CRITICAL, 7 and over)."""
    severity = ctx.entry.service_event().min_severity
    if severity is None:
        raise ValueError(f"catalogue entry {ctx.entry.id!r}: its service_event condition needs min_severity")
    return severity


def _is_deny_all(document) -> bool:
    if isinstance(document, str):
        document = json.loads(unquote(document))
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    return any(
        s.get("Effect") == "Deny"
        and s.get("Action") in ("*", ["*"])
        and s.get("Resource") in ("*", ["*"])
        and not s.get("Condition")
        for s in statements
    )


@register
class GuarddutyHighFinding(Remediation):
    remediation_id = "guardduty_high_finding"

    def _kind(self, ctx) -> str:
        return "role" if ":role/" in ctx.target.arn else "user"

    def _name(self, ctx) -> str:
        return ctx.target.resource_id.rsplit("/", 1)[-1]  # a role's path is not part of its name

    def _attached(self, ctx, kind: str, name: str) -> list[str]:
        """ARNs of the managed policies attached to the principal."""
        iam = ctx.client("iam")
        if kind == "user":
            pages = iam.get_paginator("list_attached_user_policies").paginate(UserName=name)
        else:
            pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
        return [policy["PolicyArn"] for page in pages for policy in page["AttachedPolicies"]]

    def _policy_denies_all(self, ctx, arn: str) -> bool:
        """Whether the quarantine policy exists and its default version denies every action."""
        iam = ctx.client("iam")
        try:
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchEntity":
                raise QuarantinePolicyUnusable(
                    f"the account has no quarantine policy {arn} (the member stack creates it): nothing "
                    "attached"
                ) from None
            raise
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        return _is_deny_all(document)

    def _active_findings(self, ctx, name: str) -> list[str]:
        """Unarchived findings of at least the minimum severity on this principal, from every detector."""
        guardduty, found = ctx.client("guardduty"), []
        criteria = {
            "Criterion": {
                "resource.accessKeyDetails.userName": {"Equals": [name]},
                # The API takes a whole number.
                "severity": {"GreaterThanOrEqual": int(_min_severity(ctx))},
                "service.archived": {"Equals": ["false"]},
            }
        }
        for detector in guardduty.list_detectors()["DetectorIds"]:
            found += guardduty.list_findings(DetectorId=detector, FindingCriteria=criteria, MaxResults=50)[
                "FindingIds"
            ]
        return found

    def collect_diagnostics(self, ctx):
        iam, kind, name = ctx.client("iam"), self._kind(ctx), self._name(ctx)
        try:
            if kind == "user":
                principal = iam.get_user(UserName=name)["User"]
                tags = iam.list_user_tags(UserName=name)["Tags"]
            else:
                principal = iam.get_role(RoleName=name)["Role"]
                tags = iam.list_role_tags(RoleName=name)["Tags"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchEntity":
                return None
            raise
        policy = quarantine_policy_arn(ctx.target.account)
        if not self._policy_denies_all(ctx, policy):
            raise QuarantinePolicyUnusable(
                f"{policy} does not deny every action on every resource: it would not quarantine anything; "
                "nothing attached"
            )
        return {
            "kind": kind,
            "name": name,
            "arn": principal["Arn"],
            "policy_arn": policy,
            "quarantined": policy in self._attached(ctx, kind, name),
            "active_findings": self._active_findings(ctx, name),
            "tags": tags_from_list(tags),
        }

    def check_eligibility(self, ctx, state):
        if state["name"].startswith(PROTECTED_PREFIX):
            return f"{state['arn']} is one of AIOps' own principals: quarantining it needs a human"
        if state["quarantined"]:
            return f"already fixed: {state['arn']} carries the {QUARANTINE_POLICY} deny-all policy"
        if not state["active_findings"]:
            return (
                f"no unarchived GuardDuty finding of severity >= {_min_severity(ctx):g} on "
                f"{state['name']} any more (archived or resolved)"
            )
        return None

    def plan(self, ctx, state):
        return (
            f"attach managed policy {QUARANTINE_POLICY} (Deny * on *) to {state['kind']} {state['arn']}, "
            f"for GuardDuty finding(s) {', '.join(state['active_findings'][:5])}"
        )

    def execute(self, ctx, state):
        iam, policy = ctx.client("iam"), state["policy_arn"]
        if state["kind"] == "user":  # attaching an attached policy changes nothing, so a retry is harmless
            iam.attach_user_policy(UserName=state["name"], PolicyArn=policy)
        else:
            iam.attach_role_policy(RoleName=state["name"], PolicyArn=policy)
        return {"policy_arn": policy, "principal": state["arn"]}

    def validate(self, ctx, state, result):
        policy = state["policy_arn"]
        if policy not in self._attached(ctx, state["kind"], state["name"]):
            return Validation(False, f"{state['arn']} has no {QUARANTINE_POLICY} policy attached")
        if not self._policy_denies_all(ctx, policy):
            return Validation(False, f"{policy} on {state['arn']} does not deny every action")
        return Validation(True, f"{state['arn']} is quarantined by {policy} (Deny * on *)")

    def rollback(self, ctx, state, result):
        iam, policy = ctx.client("iam"), state["policy_arn"]
        try:
            if state["kind"] == "user":
                iam.detach_user_policy(UserName=state["name"], PolicyArn=policy)
            else:
                iam.detach_role_policy(RoleName=state["name"], PolicyArn=policy)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchEntity":
                raise
            return f"{state['arn']} carries no {QUARANTINE_POLICY} policy: nothing to detach"
        return f"detached {QUARANTINE_POLICY} from {state['arn']}"
