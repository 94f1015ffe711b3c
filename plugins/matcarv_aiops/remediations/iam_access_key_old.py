"""Disable one IAM user's access keys that are older than the maximum age, and tell the key's owner."""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.exceptions import ClientError

from matcarv_aiops.notifications import notify_owner
from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list, unrecorded

# The user's tags naming who to tell, first found wins (keys compared without case).
OWNER_TAGS = ("aiops:owner", "owner", "email", "contact")


def max_age_days(ctx) -> float:
    """The key age past which the entry acts: the access-keys-rotated rule's maxAccessKeyAge (SPEC: 90)."""
    return float(ctx.entry.config_rule("ACCESS_KEYS_ROTATED").parameter("maxAccessKeyAge"))


def _age_days(created) -> float:
    if isinstance(created, str):
        created = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return (datetime.now(UTC) - created).total_seconds() / 86400


@register
class IamAccessKeyOld(Remediation):
    remediation_id = "iam_access_key_old"

    def _user(self, ctx) -> dict | None:
        """The user named by the target: a user name, or the unique id AWS Config uses."""
        iam, name = ctx.client("iam"), ctx.target.resource_id
        try:
            return iam.get_user(UserName=name)["User"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchEntity":
                raise
        for page in iam.get_paginator("list_users").paginate():  # no user by that name: try it as the id
            for user in page["Users"]:
                if user["UserId"] == name:
                    return user
        return None

    def _keys(self, ctx, user_name: str) -> list[dict]:
        pages = ctx.client("iam").get_paginator("list_access_keys").paginate(UserName=user_name)
        return [
            {
                "access_key_id": k["AccessKeyId"],
                "status": k["Status"],
                "created": k["CreateDate"].isoformat(),
                "age_days": round(_age_days(k["CreateDate"]), 1),
            }
            for page in pages
            for k in page["AccessKeyMetadata"]
        ]

    def collect_diagnostics(self, ctx):
        user = self._user(ctx)
        if user is None:
            return None
        tags = ctx.client("iam").list_user_tags(UserName=user["UserName"])["Tags"]
        return {
            "user_name": user["UserName"],
            "user_arn": user["Arn"],
            "user_id": user["UserId"],
            "keys": self._keys(ctx, user["UserName"]),
            "tags": tags_from_list(tags),
        }

    def _old_active(self, ctx, keys: list[dict]) -> list[dict]:
        limit = max_age_days(ctx)
        return [k for k in keys if k["status"] == "Active" and k["age_days"] > limit]

    def check_eligibility(self, ctx, state):
        if not self._old_active(ctx, state["keys"]):
            ages = (
                ", ".join(f"{k['access_key_id']} {k['status']} {k['age_days']:g} d" for k in state["keys"])
                or "none"
            )
            return f"already fixed: no active access key older than {max_age_days(ctx):g} days (keys: {ages})"
        return None

    def plan(self, ctx, state):
        keys = ", ".join(
            f"{k['access_key_id']} ({k['age_days']:g} days)" for k in self._old_active(ctx, state["keys"])
        )
        return f"disable access key(s) {keys} of IAM user {state['user_name']} and notify the owner"

    def _owner(self, state) -> str:
        tags = {key.lower(): value for key, value in state["tags"].items() if value}
        return next((tags[t] for t in OWNER_TAGS if t in tags), state["user_name"])

    def execute(self, ctx, state):
        iam = ctx.client("iam")
        old = {k["access_key_id"] for k in self._old_active(ctx, state["keys"])}
        live = {k["access_key_id"]: k for k in self._keys(ctx, state["user_name"])}
        disabled = []
        for key_id in sorted(old):
            if live.get(key_id, {}).get("status") == "Active":
                iam.update_access_key(UserName=state["user_name"], AccessKeyId=key_id, Status="Inactive")
            if key_id in live:
                disabled.append(key_id)  # also the ones a retried task already disabled
        owner = self._owner(state)
        # By email when the owner tag holds an address (and a sender is set up), else the topic.
        notified = notify_owner(
            ctx.settings,
            owner,
            f"Your IAM access key was disabled: {state['user_name']}",
            {
                "owner": owner,
                "user": state["user_arn"],
                "disabledAccessKeys": ", ".join(disabled),
                "why": (f"older than {max_age_days(ctx):g} days; create a new key and delete the old one"),
                "executionId": ctx.execution_id,
            },
        )
        return {"disabled": disabled, "owner": owner, "notified": notified}

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("which access keys it disabled")
        live = {k["access_key_id"]: k["status"] for k in self._keys(ctx, state["user_name"])}
        still_active = [key for key in result["disabled"] if live.get(key) == "Active"]
        if still_active:
            return Validation(False, f"access key(s) still Active: {', '.join(still_active)}")
        return Validation(
            True,
            f"access key(s) {', '.join(result['disabled'])} of {state['user_name']} are "
            f"Inactive; owner {result['owner']} notified ({result.get('notified', 'topic')})",
        )

    def rollback(self, ctx, state, result):
        # Only keys recorded as Active before the change, and (if execute finished) that it disabled.
        recorded_active = {k["access_key_id"] for k in self._old_active(ctx, state["keys"])}
        keys = [
            k for k in (result["disabled"] if result else sorted(recorded_active)) if k in recorded_active
        ]
        live = {k["access_key_id"]: k["status"] for k in self._keys(ctx, state["user_name"])}
        restored = []
        for key_id in keys:
            if live.get(key_id) == "Inactive":
                ctx.client("iam").update_access_key(
                    UserName=state["user_name"], AccessKeyId=key_id, Status="Active"
                )
                restored.append(key_id)
        return f"re-enabled access key(s) {', '.join(restored) or 'none needed'} of {state['user_name']}"
