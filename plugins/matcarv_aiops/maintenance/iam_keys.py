"""iam_access_key_rotation: rotate non-production IAM users' access keys older than the maximum age.

Per user with an active key past the age: create a new key, store it in Secrets Manager
(``<access_key_secret_prefix><user>``, JSON with AccessKeyId and SecretAccessKey) where its consumers
read it, then deactivate the old key (undone by re-activating it). The time of deactivation is kept in
the state table; a key inactive for longer than the grace period is deleted only with a human's approval
of the deletion plan (``delete_keys``, which reads the plan recorded in the state table and the approval
store, never XCom), and only if a re-check just before finds it still inactive, of the same user, past
the grace period, and the user neither production nor exempt.

A user already holding two keys cannot get a third: when the newer one is the key in the user's secret
(a rotation whose deactivation did not happen) the old one is deactivated; otherwise the user is left
alone and the audit record says why.

Crash safety: users are handled 25 at a time; before a chunk, ``in-progress.json`` in S3 names each
user's old key. A run that dies leaves it behind, and the next run finishes those users: a new key that
is not in the secret was created by the run that died and never handed out, so it is deleted and the
rotation redone; a finished rotation whose audit record was lost gets it (same execution id).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from matcarv_aiops.dynamo import batch_get, batch_put
from matcarv_aiops.maintenance.common import (
    Clients,
    JobFailed,
    JobPermissions,
    PlanTampered,
    PlanWriter,
    RunInfo,
    audit,
    audit_writer,
    audited,
    authorise,
    delete_key,
    execution_id,
    get_json,
    put_json,
    read_verified_plan,
    record_plan,
    recorded_plan,
    refuse,
    request_plan_approval,
    without_approval,
)
from matcarv_aiops.models import Outcome, Target, iso_utc
from matcarv_aiops.safety import SafetyStore, is_production
from matcarv_aiops.settings import Settings

JOB = "iam_access_key_rotation"
# Rotates non-production users' access keys and stores the new ones in Secrets Manager; the journal,
# plans and approvals are the platform's (execution role).
PERMISSIONS = JobPermissions(
    actions=(
        "iam:ListUsers",
        "iam:GetUser",
        "iam:ListUserTags",
        "iam:ListAccessKeys",
        "iam:CreateAccessKey",
        "iam:UpdateAccessKey",
        "iam:DeleteAccessKey",
        "secretsmanager:GetSecretValue",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
    )
)
_CHUNK = 25
_ALL_USERS = "arn:aws:iam:::user/*"


def _journal_key(settings: Settings) -> str:
    return f"maintenance/{JOB}/in-progress.json"


def _deactivated_pk(key_id: str) -> str:
    return f"iam-key-deactivated#{key_id}"


def _secret_name(settings: Settings, user: str) -> str:
    return f"{settings.maintenance.access_key_secret_prefix}{user}"


def _deactivation_times(clients: Clients, settings: Settings, key_ids: list[str]) -> dict[str, str]:
    keys = [{"pk": {"S": _deactivated_pk(k)}} for k in key_ids]
    return {
        item["pk"]["S"].split("#", 1)[1]: item["deactivatedAt"]["S"]
        for item in batch_get(clients("dynamodb"), settings.platform.state_table, keys)
    }


def _deactivated_item(key_id: str, user: str, when: datetime, settings: Settings) -> dict:
    ttl = when + timedelta(days=settings.maintenance.access_key_grace_days + 365)
    return {
        "pk": {"S": _deactivated_pk(key_id)},
        "user": {"S": user},
        "deactivatedAt": {"S": iso_utc(when)},
        "ttl": {"N": str(int(ttl.timestamp()))},
    }


class _Rotator:
    def __init__(self, settings: Settings, clients: Clients, run: RunInfo, now: datetime, interrupted: dict):
        self.settings, self.clients, self.run, self.now = settings, clients, run, now
        self.iam, self.secrets = clients("iam"), clients("secretsmanager")
        self.safety = SafetyStore(settings)
        self.interrupted = interrupted  # user -> old key id, from a run that died
        self.records: list = []
        self.deactivations: list[dict] = []
        self.counts = {
            "rotated": 0,
            "production": 0,
            "exempt": 0,
            "two_keys": 0,
            "deactivated": 0,
            "grace_expired": 0,
            "orphans_deleted": 0,
            "finished_interrupted": 0,
        }
        self.failures: list[str] = []
        self.deletion_plan = PlanWriter({"job": JOB, "runId": run.run_id, "createdAt": iso_utc(now)})

    def record(self, user: dict, key: str, action: str, outcome: Outcome, rollback: str) -> None:
        self.records.append(
            audit(self.run, key=key, target=user["Arn"], action=action, outcome=outcome, rollback=rollback)
        )

    # --- one chunk of users that have work ---
    def chunk(self, users: list[tuple[dict, list[dict]]]) -> None:
        tags_by_user = {}
        for user, _ in users:
            tags = self.iam.list_user_tags(UserName=user["UserName"])["Tags"]  # < 50 tags: one page
            tags_by_user[user["UserName"]] = {t["Key"]: t["Value"] for t in tags}
        exempt = self.safety.table_exemptions([user["Arn"] for user, _ in users])
        eligible = []
        for user, keys in users:
            tags = tags_by_user[user["UserName"]]
            account = user["Arn"].split(":")[4]
            target = Target(arn=user["Arn"], resource_id=user["UserName"], region="", account=account)
            if is_production(target, tags, self.settings):
                self.counts["production"] += 1
            elif user["Arn"] in exempt or self.safety.tag_exemption(tags):
                self.counts["exempt"] += 1
            else:
                eligible.append((user, keys))
        inactive = [k["AccessKeyId"] for _, keys in eligible for k in keys if k["Status"] == "Inactive"]
        since = _deactivation_times(self.clients, self.settings, inactive) if inactive else {}
        put_json(
            self.clients,
            _journal_key(self.settings),
            {
                "runId": self.run.run_id,
                "users": {
                    **self.interrupted,
                    **{
                        u["UserName"]: old["AccessKeyId"]
                        for u, keys in eligible
                        if (old := self._old_active(keys))
                    },
                },
            },
        )
        for user, keys in eligible:
            try:
                self.user(user, keys, since)
            except ClientError as exc:
                error = exc.response["Error"]
                self.failures.append(user["UserName"])
                self.record(
                    user,
                    f"{user['UserName']}|failed|{self.run.run_id}",
                    f"rotation of {user['UserName']}'s access key failed: {error['Code']}: "
                    f"{error.get('Message', '')}",
                    Outcome.FAILURE,
                    "re-activate the old key if it was deactivated: aws iam update-access-key "
                    f"--user-name {user['UserName']} --status Active --access-key-id <old key>",
                )
        batch_put(self.clients("dynamodb"), self.settings.platform.state_table, self.deactivations)
        self.deactivations = []
        audit_writer(self.settings).write_all(self.records)
        self.records = []

    def _old_active(self, keys: list[dict]) -> dict | None:
        cutoff = self.now - timedelta(days=self.settings.maintenance.access_key_max_age_days)
        old = [k for k in keys if k["Status"] == "Active" and k["CreateDate"] < cutoff]
        return min(old, key=lambda k: k["CreateDate"]) if old else None

    def user(self, user: dict, keys: list[dict], since: dict[str, str]) -> None:
        name = user["UserName"]
        for key in keys:
            if key["Status"] != "Inactive":
                continue
            if key["AccessKeyId"] not in since:  # deactivated by someone else: the grace period starts now
                self.deactivations.append(
                    _deactivated_item(key["AccessKeyId"], name, self.now, self.settings)
                )
            elif datetime.fromisoformat(
                since[key["AccessKeyId"]].replace("Z", "+00:00")
            ) <= self.now - timedelta(days=self.settings.maintenance.access_key_grace_days):
                self.counts["grace_expired"] += 1
                self.deletion_plan.add(
                    {
                        "user": name,
                        "userId": user["UserId"],
                        "arn": user["Arn"],
                        "keyId": key["AccessKeyId"],
                        "deactivatedAt": since[key["AccessKeyId"]],
                    }
                )
        old = self._old_active(keys)
        interrupted_old = self.interrupted.get(name)
        if old is None:
            if interrupted_old and any(
                k["AccessKeyId"] == interrupted_old and k["Status"] == "Inactive" for k in keys
            ):
                self._finished(user, interrupted_old, self._secret_key_id(name))  # only its audit was lost
            return
        if len(keys) == 1:
            self._rotate(user, old)
            return
        other = next(k for k in keys if k["AccessKeyId"] != old["AccessKeyId"])
        in_secret = self._secret_key_id(name)
        if other["Status"] == "Active" and in_secret == other["AccessKeyId"]:
            self._deactivate(user, old, other["AccessKeyId"])
            self.counts["rotated"] += 1
        elif (
            other["Status"] == "Active"
            and interrupted_old == old["AccessKeyId"]
            and other["CreateDate"] > old["CreateDate"]
        ):
            self.iam.delete_access_key(UserName=name, AccessKeyId=other["AccessKeyId"])
            self.counts["orphans_deleted"] += 1
            self.record(
                user,
                f"{name}|{other['AccessKeyId']}|orphan",
                f"deleted access key {other['AccessKeyId']} of {name}: created by an interrupted rotation, "
                f"its secret was never stored, so no consumer has it",
                Outcome.SUCCESS,
                "none needed: the key was never handed out; the rotation is redone",
            )
            self._rotate(user, old)
        else:
            self.counts["two_keys"] += 1
            why = (
                "the other key is inactive and waits out its grace period before deletion"
                if other["Status"] == "Inactive"
                else f"both keys are active and neither is the one in {_secret_name(self.settings, name)}, "
                "so a human must retire one first"
            )
            self.record(
                user,
                f"{name}|{old['AccessKeyId']}|two-keys|{self.run.run_id}",
                f"did not rotate {name}'s key {old['AccessKeyId']} (older than "
                f"{self.settings.maintenance.access_key_max_age_days} days): the user already has two keys "
                f"(IAM allows no third); {why}",
                Outcome.SKIPPED,
                "nothing changed",
            )

    def _secret_key_id(self, user: str) -> str | None:
        try:
            value = self.secrets.get_secret_value(SecretId=_secret_name(self.settings, user))["SecretString"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise
        return json.loads(value).get("AccessKeyId")

    def _rotate(self, user: dict, old: dict) -> None:
        name = user["UserName"]
        new = self.iam.create_access_key(UserName=name)["AccessKey"]
        secret = json.dumps(
            {
                "UserName": name,
                "AccessKeyId": new["AccessKeyId"],
                "SecretAccessKey": new["SecretAccessKey"],
                "rotatedAt": iso_utc(self.now),
            }
        )
        secret_name = _secret_name(self.settings, name)
        try:
            self.secrets.create_secret(
                Name=secret_name,
                SecretString=secret,
                Description=f"Access key of IAM user {name}, rotated by AIOps",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceExistsException":
                raise
            self.secrets.put_secret_value(SecretId=secret_name, SecretString=secret)
        self.record(
            user,
            f"{name}|{new['AccessKeyId']}|create",
            f"created access key {new['AccessKeyId']} for {name} and stored it in secret {secret_name}",
            Outcome.SUCCESS,
            f"delete key {new['AccessKeyId']} and restore the previous secret version "
            f"(AWSPREVIOUS) of {secret_name}",
        )
        self._deactivate(user, old, new["AccessKeyId"])
        self.counts["rotated"] += 1

    def _deactivate(self, user: dict, old: dict, new_key_id: str) -> None:
        self.iam.update_access_key(
            UserName=user["UserName"], AccessKeyId=old["AccessKeyId"], Status="Inactive"
        )
        self.deactivations.append(
            _deactivated_item(old["AccessKeyId"], user["UserName"], self.now, self.settings)
        )
        self.counts["deactivated"] += 1
        self._finished(user, old["AccessKeyId"], new_key_id)

    def _finished(self, user: dict, old_key_id: str, new_key_id: str | None) -> None:
        name = user["UserName"]
        self.record(
            user,
            f"{name}|{old_key_id}|deactivate",
            f"deactivated access key {old_key_id} of {name} (replaced by {new_key_id or 'a new key'}, "
            f"in secret {_secret_name(self.settings, name)}); deleted after "
            f"{self.settings.maintenance.access_key_grace_days} days inactive, with approval",
            Outcome.SUCCESS,
            f"aws iam update-access-key --user-name {name} --access-key-id {old_key_id} --status Active",
        )
        if name in self.interrupted:
            self.counts["finished_interrupted"] += 1


def rotate(settings: Settings, clients: Clients, run: RunInfo, *, now: datetime) -> dict:
    """Rotate what is due, and plan the deletion of keys past their grace period. Returns a summary
    with the deletion plan (and its approval request, when there is something to delete)."""
    journal = get_json(clients, _journal_key(settings)) or {}
    rotator = _Rotator(settings, clients, run, now, journal.get("users", {}))
    iam = clients("iam")
    chunk: list[tuple[dict, list[dict]]] = []
    users_seen = 0
    for page in iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 1000}):
        for user in page["Users"]:
            users_seen += 1
            keys = iam.list_access_keys(UserName=user["UserName"])[
                "AccessKeyMetadata"
            ]  # two at most: one page
            if (
                rotator._old_active(keys)
                or any(k["Status"] == "Inactive" for k in keys)
                or user["UserName"] in rotator.interrupted
            ):
                chunk.append((user, keys))
            if len(chunk) == _CHUNK:
                rotator.chunk(chunk)
                chunk = []
    if chunk:
        rotator.chunk(chunk)
    if rotator.failures:
        raise JobFailed(
            f"rotation failed for {len(rotator.failures)} users (first: {rotator.failures[:5]}); "
            "the others are done and audited"
        )
    delete_key(clients, _journal_key(settings))
    recorded = recorded_plan(settings, JOB, run.run_id)
    if recorded is not None:  # a retried rotate: the deletion plan made first stands
        rotator.deletion_plan.discard()
    else:
        summary: dict[str, Any] = {
            "users": users_seen,
            **rotator.counts,
            "deletion_plan": None,
            "approval": None,
        }
        key = uri = None
        if rotator.deletion_plan.count:
            key = f"maintenance/{JOB}/deletion-plans/{run.safe_run_id}.jsonl"
            count, digest = rotator.deletion_plan.count, rotator.deletion_plan.digest
            uri = rotator.deletion_plan.upload(clients, key)
            summary["deletion_plan"] = {"key": key, "uri": uri, "count": count, "digest": digest}
        else:
            rotator.deletion_plan.discard()
        recorded = record_plan(
            settings,
            run,
            plan_key=key,
            plan_uri=uri,
            digest=rotator.deletion_plan.digest if key else None,
            needs_approval=key is not None,
            summary=without_approval(summary),
        )
    result = {**recorded.summary, "approval": None}
    if recorded.needs_approval:
        plan = result["deletion_plan"]
        result["approval"] = request_plan_approval(
            settings,
            run,
            target=_ALL_USERS,
            action=f"delete {plan['count']} IAM access keys inactive for more than "
            f"{settings.maintenance.access_key_grace_days} days "
            f"(plan: {plan['uri']}, sha256 {plan['digest']})",
            plan_uri=plan["uri"],
            plan_digest=plan["digest"],
            rollback="none: a deleted access key cannot be restored",
            why="deleting an access key cannot be undone",
        )
    return result


def _recheck(
    settings: Settings, clients: Clients, safety: SafetyStore, entry: dict, now: datetime
) -> tuple[str | None, dict | None]:
    """(why this planned key must not be deleted now, or None; the key as it stands, None when gone),
    from facts read just before its deletion."""
    iam = clients("iam")
    try:
        user = iam.get_user(UserName=entry["user"])["User"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchEntity":
            return "the user no longer exists", None
        raise
    if user["UserId"] != entry["userId"]:
        return f"{entry['user']} is another user now (id {user['UserId']}, planned {entry['userId']})", None
    keys = iam.list_access_keys(UserName=entry["user"])["AccessKeyMetadata"]
    current = next((k for k in keys if k["AccessKeyId"] == entry["keyId"]), None)
    if current is None:
        return None, None
    if current["Status"] != "Inactive":
        return "it was re-activated since the plan", current
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=entry["user"])["Tags"]}
    target = Target(arn=user["Arn"], resource_id=entry["user"], region="", account=user["Arn"].split(":")[4])
    if is_production(target, tags, settings):
        return "the user is production now", current
    if safety.tag_exemption(tags) or safety.table_exemptions([user["Arn"]]):
        return "the user is exempt now", current
    since = _deactivation_times(clients, settings, [entry["keyId"]]).get(entry["keyId"])
    grace_start = now - timedelta(days=settings.maintenance.access_key_grace_days)
    if since is None or datetime.fromisoformat(since.replace("Z", "+00:00")) > grace_start:
        return (
            f"it has not been inactive for {settings.maintenance.access_key_grace_days} days "
            f"(recorded deactivation: {since or 'none'})",
            current,
        )
    return None, current


def delete_keys(
    settings: Settings, clients: Clients, run: RunInfo, *, now: datetime, xcom: dict | None = None
) -> dict:
    """Delete the keys of this run's recorded deletion plan while its approval request is APPROVED for
    the plan's digest and unexpired, each only if it passes a re-check just before (same user, still
    inactive past the grace period by ``now``, not production, not exempt); the others are skipped, each
    with its record. The plan and the decision come from the state table, the approval store and S3
    (digest checked), never from XCom: ``xcom`` is only compared with them, and any difference refuses
    everything (``PlanRefused``)."""
    authority = authorise(settings, run, target=_ALL_USERS, xcom=xcom)
    plan = authority.plan
    planned = plan.summary.get("deletion_plan")
    if not plan.needs_approval or not planned:
        return {"deleted": 0}
    if plan.plan_key is None or plan.digest is None:
        refuse(settings, run, _ALL_USERS, f"the plan recorded for run {run.run_id} names no plan file")
    writer = audit_writer(settings)

    def not_deleted(how_many: int) -> None:
        writer.write(
            audit(
                run,
                key=f"{run.run_id}|delete-approval",
                target=_ALL_USERS,
                action=f"did not delete {how_many} inactive access keys: {authority.verdict()} "
                f"(plan {plan.plan_uri})",
                outcome=Outcome.SKIPPED,
                rollback="nothing changed",
                operator=authority.operator,
            )
        )

    if not authority.approved_now():
        not_deleted(planned["count"])
        return {"deleted": 0, "decision": authority.verdict()}
    try:
        _, entries = read_verified_plan(clients, plan.plan_key, plan.digest)
    except PlanTampered as exc:
        refuse(settings, run, _ALL_USERS, str(exc))
    iam = clients("iam")
    safety = SafetyStore(settings)
    counts = {"deleted": 0, "reactivated_since": 0, "skipped": 0, "not_authorised": 0}

    def records():
        for entry in entries:
            if not authority.approved_now():  # the approval lapsed during the run
                counts["not_authorised"] += 1
                continue
            reason, current = _recheck(settings, clients, safety, entry, now)
            if reason:
                counts["skipped"] += 1
                counts["reactivated_since"] += reason.startswith("it was re-activated")
                yield audit(
                    run,
                    key=f"{entry['user']}|{entry['keyId']}|delete-skipped|{run.run_id}",
                    target=entry["arn"],
                    action=f"did not delete access key {entry['keyId']} of {entry['user']}: {reason} "
                    "(re-checked just before deletion)",
                    outcome=Outcome.SKIPPED,
                    rollback="nothing changed",
                    operator=authority.operator,
                )
                continue
            note = ""
            key = f"{entry['user']}|{entry['keyId']}|delete"
            if current is not None:
                iam.delete_access_key(UserName=entry["user"], AccessKeyId=entry["keyId"])
            elif audited(settings, [execution_id(JOB, key)]):
                continue  # deleted and recorded before: a cleared, re-run task leaves the record as it is
            else:
                note = " (already gone on retry: deleted by an interrupted attempt of this run)"
            counts["deleted"] += 1
            yield audit(
                run,
                key=key,
                target=entry["arn"],
                action=f"deleted access key {entry['keyId']} of {entry['user']}, inactive since "
                f"{entry['deactivatedAt']}{note}",
                outcome=Outcome.SUCCESS,
                rollback="none: a deleted access key cannot be restored; create a new one",
                operator=authority.operator,
            )

    writer.write_all(records())
    if counts["not_authorised"]:
        not_deleted(counts["not_authorised"])
    return {**counts, "decision": "approved"}
