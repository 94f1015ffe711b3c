"""Quarantine one IAM user or role that GuardDuty reported with a HIGH or CRITICAL finding: an inline
policy that explicitly denies everything (an explicit Deny beats every Allow, including ones attached
later), removed again by the rollback."""

from __future__ import annotations

import json
from urllib.parse import unquote

from botocore.exceptions import ClientError

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

    def _quarantine_policy(self, ctx, kind: str, name: str) -> dict | None:
        iam = ctx.client("iam")
        try:
            if kind == "user":
                return iam.get_user_policy(UserName=name, PolicyName=QUARANTINE_POLICY)
            return iam.get_role_policy(RoleName=name, PolicyName=QUARANTINE_POLICY)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchEntity":
                return None
            raise

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
        existing = self._quarantine_policy(ctx, kind, name)
        return {
            "kind": kind,
            "name": name,
            "arn": principal["Arn"],
            "quarantined": bool(existing and _is_deny_all(existing["PolicyDocument"])),
            "had_policy_named_quarantine": existing is not None,
            "active_findings": self._active_findings(ctx, name),
            "tags": tags_from_list(tags),
        }

    def check_eligibility(self, ctx, state):
        if state["name"].startswith(PROTECTED_PREFIX):
            return f"{state['arn']} is one of AIOps' own principals: quarantining it needs a human"
        if state["quarantined"]:
            return f"already fixed: {state['arn']} carries the {QUARANTINE_POLICY} deny-all policy"
        if state["had_policy_named_quarantine"]:
            return (
                f"{state['arn']} has a policy named {QUARANTINE_POLICY} that is not deny-all: a human looks"
            )
        if not state["active_findings"]:
            return (
                f"no unarchived GuardDuty finding of severity >= {_min_severity(ctx):g} on "
                f"{state['name']} any more (archived or resolved)"
            )
        return None

    def plan(self, ctx, state):
        return (
            f"attach inline policy {QUARANTINE_POLICY} (Deny * on *) to {state['kind']} {state['arn']}, "
            f"for GuardDuty finding(s) {', '.join(state['active_findings'][:5])}"
        )

    def execute(self, ctx, state):
        iam, document = ctx.client("iam"), json.dumps(DENY_ALL)
        if state["kind"] == "user":  # Put*Policy replaces a same-named policy, so a retry is harmless
            iam.put_user_policy(UserName=state["name"], PolicyName=QUARANTINE_POLICY, PolicyDocument=document)
        else:
            iam.put_role_policy(RoleName=state["name"], PolicyName=QUARANTINE_POLICY, PolicyDocument=document)
        return {"policy_name": QUARANTINE_POLICY, "principal": state["arn"]}

    def validate(self, ctx, state, result):
        policy = self._quarantine_policy(ctx, state["kind"], state["name"])
        if policy is None:
            return Validation(False, f"{state['arn']} has no {QUARANTINE_POLICY} policy")
        if not _is_deny_all(policy["PolicyDocument"]):
            return Validation(False, f"{QUARANTINE_POLICY} on {state['arn']} does not deny every action")
        return Validation(True, f"{state['arn']} is quarantined by {QUARANTINE_POLICY} (Deny * on *)")

    def rollback(self, ctx, state, result):
        iam = ctx.client("iam")
        try:
            if state["kind"] == "user":
                iam.delete_user_policy(UserName=state["name"], PolicyName=QUARANTINE_POLICY)
            else:
                iam.delete_role_policy(RoleName=state["name"], PolicyName=QUARANTINE_POLICY)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchEntity":
                raise
            return f"{state['arn']} carries no {QUARANTINE_POLICY} policy: nothing to remove"
        return f"removed {QUARANTINE_POLICY} from {state['arn']}"
