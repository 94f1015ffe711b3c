"""Safety state in the AIOpsRemediationState table: execution claims (a second run for one event does
nothing), per-resource locks, cooldown and flapping history, and exemptions with owner and expiry.

Every item has key ``pk`` and, where it can lapse, ``ttl`` (epoch seconds, DynamoDB TTL).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from matcarv_aiops.aws import hub_client
from matcarv_aiops.dynamo import batch_get, is_condition_failed
from matcarv_aiops.models import Target, iso_utc
from matcarv_aiops.settings import Settings

_CLAIM_TTL_DAYS = 30
EXEMPT_PREFIX = "exempt#"  # state table key of a resource's exemption: exempt#<target ARN>
_HISTORY_WRITE_ATTEMPTS = 5


def is_production(target: Target, tags: dict[str, str], settings: Settings) -> bool:
    """Production unless shown otherwise (fail closed): a production account's resources always are; a
    resource's environment tag decides elsewhere; an untagged resource is production unless its account
    is listed as non-production."""
    safety = settings.safety
    if target.account and target.account in safety.production_accounts:
        return True
    value = next((v for k, v in tags.items() if k.lower() == safety.production_tag_key.lower()), None)
    if value is not None and value.strip():
        return value.strip().lower() in safety.production_tag_values
    return not (target.account and target.account in safety.non_production_accounts)


@dataclass
class SafetyStore:
    settings: Settings

    @property
    def _ddb(self):
        return hub_client("dynamodb", self.settings)

    def _get(self, pk: str) -> dict | None:
        item = self._ddb.get_item(
            TableName=self.settings.platform.state_table, Key={"pk": {"S": pk}}, ConsistentRead=True
        ).get("Item")
        return item

    # --- one execution per event -------------------------------------------------------------
    def claim_execution(
        self, execution_id: str, run_id: str, dag_id: str, *, details: dict[str, str] | None = None
    ) -> str | None:
        """Claim the execution for this DAG run. Returns None when this run owns it (first claim, or a
        retry of the same run), else the run id that claimed it first. ``details`` (``remediation``,
        ``targetArn``, ``trigger``, ``requestedBy``) are kept on the claim, so that audit_reconciler can
        write the execution's record even when the run never did."""
        now = time.time()
        extra = {key: {"S": value} for key, value in (details or {}).items() if value}
        try:
            self._ddb.put_item(
                TableName=self.settings.platform.state_table,
                Item={
                    "pk": {"S": f"execution#{execution_id}"},
                    "runId": {"S": run_id},
                    "dagId": {"S": dag_id},
                    "claimedAt": {"S": iso_utc()},
                    "ttl": {"N": str(int(now + _CLAIM_TTL_DAYS * 86400))},
                    **extra,
                },
                ConditionExpression="attribute_not_exists(pk) OR runId = :run",
                ExpressionAttributeValues={":run": {"S": run_id}},
            )
            return None
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
        item = self._get(f"execution#{execution_id}") or {}
        return item.get("runId", {}).get("S", "unknown")

    # --- intent: a change may have been made ---------------------------------------------------
    def mark_intent(
        self, execution_id: str, run_id: str, action: str, *, operator: str = "automated"
    ) -> dict[str, str] | None:
        """Before the first change to the target, a durable marker that this execution may have changed
        it: a task retry (whose XComs Airflow wiped), a later step and the reconciler read it here.
        ``operator``: who allowed the change, so that a retry which finds the marker audits the right
        person. Returns None when this call wrote it, else the marker an earlier attempt left."""
        try:
            self._ddb.put_item(
                TableName=self.settings.platform.state_table,
                Item={
                    "pk": {"S": f"intent#{execution_id}"},
                    "runId": {"S": run_id},
                    "action": {"S": action},
                    "operator": {"S": operator},
                    "startedAt": {"S": iso_utc()},
                    "ttl": {"N": str(int(time.time() + _CLAIM_TTL_DAYS * 86400))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return None
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
        return self.intent(execution_id) or {}

    def record_intent_result(self, execution_id: str, result: Any) -> None:
        """Right after the change: what it returned (JSON), on the execution's intent marker, so that a
        retry whose XComs Airflow wiped can still validate and roll back with it."""
        self._ddb.update_item(
            TableName=self.settings.platform.state_table,
            Key={"pk": {"S": f"intent#{execution_id}"}},
            UpdateExpression="SET #result = :result, changedAt = :at",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#result": "result"},
            ExpressionAttributeValues={
                ":result": {"S": json.dumps(result, sort_keys=True, default=str)},
                ":at": {"S": iso_utc()},
            },
        )

    def intent(self, execution_id: str) -> dict[str, str] | None:
        """The intent marker of this execution ({runId, action, operator, startedAt}, and once the change
        returned: result (JSON) and changedAt), or None: nothing was started, so nothing can have
        changed."""
        item = self._get(f"intent#{execution_id}")
        if not item:
            return None
        return {k: v["S"] for k, v in item.items() if "S" in v and k != "pk"}

    # --- per-resource lock -------------------------------------------------------------------
    def acquire_lock(self, target_arn: str, execution_id: str) -> str | None:
        """Take the resource's lock. Returns None on success, else the execution holding it."""
        now = time.time()
        expires = now + self.settings.safety.lock_ttl_minutes * 60
        try:
            self._ddb.put_item(
                TableName=self.settings.platform.state_table,
                Item={
                    "pk": {"S": f"lock#{target_arn}"},
                    "executionId": {"S": execution_id},
                    "ttl": {"N": str(int(expires))},
                },
                ConditionExpression="attribute_not_exists(pk) OR executionId = :me OR #ttl < :now",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":me": {"S": execution_id}, ":now": {"N": str(int(now))}},
            )
            return None
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
        item = self._get(f"lock#{target_arn}") or {}
        return item.get("executionId", {}).get("S", "unknown")

    def release_lock(self, target_arn: str, execution_id: str) -> None:
        try:
            self._ddb.delete_item(
                TableName=self.settings.platform.state_table,
                Key={"pk": {"S": f"lock#{target_arn}"}},
                ConditionExpression="executionId = :me",
                ExpressionAttributeValues={":me": {"S": execution_id}},
            )
        except ClientError as exc:
            if not is_condition_failed(exc):  # not ours (or already gone): leave it
                raise

    # --- cooldown and flapping ---------------------------------------------------------------
    def recent_actions(self, remediation_id: str, target_arn: str) -> list[float]:
        return sorted(_history_times(self._get(f"history#{remediation_id}#{target_arn}")).values())

    def last_action(self, remediation_id: str, target_arn: str) -> tuple[str, float] | None:
        """The execution that last changed the resource for this remediation, and when (epoch seconds),
        within the flap window the history keeps; None if none did."""
        times = _history_times(self._get(f"history#{remediation_id}#{target_arn}"))
        if not times:
            return None
        execution_id = max(times, key=lambda key: times[key])
        return execution_id, times[execution_id]

    def record_action(self, remediation_id: str, target_arn: str, execution_id: str) -> bool:
        """Count this execution's action on the resource for cooldown and flapping, once: the history
        keeps execution ids, so a retried audit step or the reconciler calling again changes nothing.
        Returns whether this call added it. Optimistic: a concurrent writer makes us read and try again."""
        window = self.settings.safety.flap_window_hours * 3600
        pk = f"history#{remediation_id}#{target_arn}"
        for _ in range(_HISTORY_WRITE_ATTEMPTS):
            item = self._get(pk)
            times = _history_times(item)
            if execution_id in times:
                return False
            now = time.time()
            kept = {key: t for key, t in times.items() if t > now - window}
            kept[execution_id] = now
            version = int(item["version"]["N"]) if item and "version" in item else 0
            try:
                self._ddb.put_item(
                    TableName=self.settings.platform.state_table,
                    Item={
                        "pk": {"S": pk},
                        "executions": {"M": {key: {"N": repr(t)} for key, t in kept.items()}},
                        "lastExecutionId": {"S": execution_id},
                        "version": {"N": str(version + 1)},
                        "ttl": {"N": str(int(now + window))},
                    },
                    ConditionExpression=(
                        "attribute_not_exists(pk) OR attribute_not_exists(version) OR version = :v"
                    ),
                    ExpressionAttributeValues={":v": {"N": str(version)}},
                )
                return True
            except ClientError as exc:
                if not is_condition_failed(exc):
                    raise
        raise RuntimeError(
            f"cooldown history of {target_arn} ({remediation_id}) kept changing under us: "
            f"execution {execution_id} not recorded after {_HISTORY_WRITE_ATTEMPTS} attempts"
        )

    def cooldown_or_flapping(self, remediation_id: str, target_arn: str) -> tuple[str, bool] | None:
        """(reason, escalate) when the resource must not be remediated now, else None. The cooldown's
        reason names the execution that last acted, so a second report of the same problem (another
        source, an alarm firing again) says which change it is a duplicate of."""
        now = time.time()
        window = self.settings.safety.flap_window_hours * 3600
        times = _history_times(self._get(f"history#{remediation_id}#{target_arn}"))
        recent = {key: t for key, t in times.items() if t > now - window}
        if len(recent) >= self.settings.safety.max_actions_per_window:
            return (
                f"flapping: remediated {len(recent)} times in the last "
                f"{self.settings.safety.flap_window_hours:g} h; escalated to a human instead",
                True,
            )
        if recent:
            last_id = max(recent, key=lambda key: recent[key])
            minutes = (now - recent[last_id]) / 60
            if minutes * 60 < self.settings.safety.cooldown_minutes * 60:
                return (
                    f"in cooldown: last remediated {minutes:.1f} min ago by execution {last_id} "
                    f"(cooldown {self.settings.safety.cooldown_minutes:g} min)",
                    False,
                )
        return None

    # --- exemptions --------------------------------------------------------------------------
    def add_exemption(self, target_arn: str, *, owner: str, reason: str, expires_at: datetime) -> None:
        self._ddb.put_item(
            TableName=self.settings.platform.state_table,
            Item={
                "pk": {"S": f"exempt#{target_arn}"},
                "owner": {"S": owner},
                "reason": {"S": reason},
                "expiresAt": {"S": iso_utc(expires_at)},
                "ttl": {"N": str(int(expires_at.timestamp()))},
            },
        )

    def exemptions(self, *, include_expired: bool = False) -> list[Exemption]:
        """The exemptions in the table, soonest expiry first; expired ones (which no longer apply, and
        which DynamoDB's TTL deletes within days) only when asked. A Scan of the state table: exemptions
        share it with short-lived claims and locks, so it stays small."""
        found: list[Exemption] = []
        request: dict[str, Any] = {
            "TableName": self.settings.platform.state_table,
            "FilterExpression": "begins_with(pk, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": EXEMPT_PREFIX}},
        }
        while True:
            page = self._ddb.scan(**request)
            found += [Exemption.from_item(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        now = datetime.now(UTC)
        return sorted(
            (e for e in found if include_expired or e.expires_at > now),
            key=lambda e: (e.expires_at, e.target_arn),
        )

    def exemption_of(self, target_arn: str) -> Exemption | None:
        """The resource's exemption in the table as stored, expired or not; None when it has none."""
        item = self._get(f"{EXEMPT_PREFIX}{target_arn}")
        return Exemption.from_item(item) if item else None

    def remove_exemption(self, target_arn: str) -> Exemption | None:
        """Delete the resource's exemption; the one removed, or None when it had none."""
        old = self._ddb.delete_item(
            TableName=self.settings.platform.state_table,
            Key={"pk": {"S": f"{EXEMPT_PREFIX}{target_arn}"}},
            ReturnValues="ALL_OLD",
        ).get("Attributes")
        return Exemption.from_item(old) if old else None

    def exemption(self, target: Target, tags: dict[str, str]) -> str | None:
        """Why the resource is exempt, or None."""
        return self.tag_exemption(tags) or _table_exemption(self._get(f"exempt#{target.arn}"))

    def tag_exemption(self, tags: dict[str, str]) -> str | None:
        if tags.get(self.settings.safety.exempt_tag_key, "").strip().lower() == "true":
            return f"exempt: tagged {self.settings.safety.exempt_tag_key}=true"
        return None

    def table_exemptions(self, arns: list[str]) -> dict[str, str]:
        """Exemptions in the table for many resources at once (BatchGetItem, 100 keys per call), for the
        scheduled jobs that check thousands. Returns {arn: why} for the exempt ones only."""
        found: dict[str, str] = {}
        keys = [{"pk": {"S": f"exempt#{arn}"}} for arn in dict.fromkeys(arns)]
        for item in batch_get(self._ddb, self.settings.platform.state_table, keys):
            reason = _table_exemption(item)
            if reason:
                found[item["pk"]["S"].removeprefix("exempt#")] = reason
        return found


def _history_times(item: dict | None) -> dict[str, float]:
    """{execution id: epoch seconds} of a history item. Items written before the history kept execution
    ids hold bare times (``actions``); each counts as its own execution."""
    if not item:
        return {}
    times = {key: float(value["N"]) for key, value in item.get("executions", {}).get("M", {}).items()}
    for n, value in enumerate(item.get("actions", {}).get("NS", [])):
        times[f"legacy-{n}"] = float(value)
    return times


@dataclass(frozen=True)
class Exemption:
    target_arn: str
    owner: str
    reason: str
    expires_at: datetime

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Exemption:
        return cls(
            target_arn=item["pk"]["S"].removeprefix(EXEMPT_PREFIX),
            owner=item["owner"]["S"],
            reason=item["reason"]["S"],
            expires_at=datetime.fromisoformat(item["expiresAt"]["S"].replace("Z", "+00:00")),
        )

    def to_json(self) -> dict[str, str]:
        return {
            "targetResource": self.target_arn,
            "owner": self.owner,
            "reason": self.reason,
            "expiresAt": iso_utc(self.expires_at),
        }


def _table_exemption(item: dict | None) -> str | None:
    if not item:
        return None
    expires = datetime.fromisoformat(item["expiresAt"]["S"].replace("Z", "+00:00"))
    if expires <= datetime.now(UTC):
        return None
    return f"exempt until {item['expiresAt']['S']} (owner {item['owner']['S']}: {item['reason']['S']})"
