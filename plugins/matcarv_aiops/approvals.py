"""Approval requests in the AIOpsApprovals table: one per execution, decided once, before it expires."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from matcarv_aiops.aws import hub_client, topic_arn
from matcarv_aiops.dynamo import is_condition_failed
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, iso_utc
from matcarv_aiops.settings import Settings, get_settings

APPROVAL_DAG_ID = "approve_remediation"
_KEEP_DECIDED_DAYS = 90


class ApprovalError(ValueError):
    """A decision that cannot be recorded; the message says why."""


def _to_item(record: ApprovalRecord) -> dict:
    item = {k: {"S": str(v.value if hasattr(v, "value") else v)}
            for k, v in record.model_dump().items() if v is not None}
    expires = datetime.fromisoformat(record.expiresAt.replace("Z", "+00:00"))
    item["ttl"] = {"N": str(int(expires.timestamp() + _KEEP_DECIDED_DAYS * 86400))}
    return item


def _from_item(item: dict) -> ApprovalRecord:
    return ApprovalRecord.model_validate({k: v["S"] for k, v in item.items() if k != "ttl"})


@dataclass
class ApprovalStore:
    settings: Settings

    @classmethod
    def default(cls) -> "ApprovalStore":
        return cls(get_settings())

    @property
    def _ddb(self):
        return hub_client("dynamodb", self.settings)

    def get(self, execution_id: str) -> ApprovalRecord | None:
        item = self._ddb.get_item(TableName=self.settings.approvals_table,
                                  Key={"executionId": {"S": execution_id}}, ConsistentRead=True).get("Item")
        return _from_item(item) if item else None

    def create(self, record: ApprovalRecord) -> bool:
        """Store a new pending request. False when this execution already has one (a task retry)."""
        try:
            self._ddb.put_item(TableName=self.settings.approvals_table, Item=_to_item(record),
                               ConditionExpression="attribute_not_exists(executionId)")
            return True
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
            return False

    def _update_status(self, execution_id: str, status: ApprovalStatus, now: str, condition: str,
                       extra: dict[str, str]) -> ApprovalRecord:
        names = {"#status": "status"}
        values = {":pending": {"S": ApprovalStatus.PENDING.value}, ":status": {"S": status.value},
                  ":now": {"S": now}}
        sets = ["#status = :status", "decidedAt = :now"]
        for key, value in extra.items():
            sets.append(f"{key} = :{key}")
            values[f":{key}"] = {"S": value}
        response = self._ddb.update_item(
            TableName=self.settings.approvals_table, Key={"executionId": {"S": execution_id}},
            UpdateExpression="SET " + ", ".join(sets), ConditionExpression=condition,
            ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
        )
        return _from_item(response["Attributes"])

    def decide(self, execution_id: str, *, approve: bool, approver: str, reason: str) -> ApprovalRecord:
        """Record a human decision. Only a pending, unexpired request of this exact execution counts."""
        if not approver.strip():
            raise ApprovalError("the decision has no approver identity")
        now = iso_utc()
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        try:
            return self._update_status(
                execution_id, status, now,
                "attribute_exists(executionId) AND #status = :pending AND expiresAt > :now",
                {"approver": approver, "decisionReason": reason or "(no reason given)"},
            )
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
        current = self.get(execution_id)
        if current is None:
            raise ApprovalError(f"no approval request for execution {execution_id}")
        if current.status != ApprovalStatus.PENDING:
            by = f" by {current.approver}" if current.approver else ""
            raise ApprovalError(f"execution {execution_id} was already {current.status.value}{by} "
                                f"at {current.decidedAt}")
        self.expire(execution_id)
        raise ApprovalError(f"the approval request for execution {execution_id} expired at {current.expiresAt}")

    def expire(self, execution_id: str) -> ApprovalRecord | None:
        """Mark a pending request whose time is up as EXPIRED; returns the record as it now stands."""
        try:
            return self._update_status(execution_id, ApprovalStatus.EXPIRED, iso_utc(),
                                       "#status = :pending AND expiresAt <= :now", {})
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
        return self.get(execution_id)


def publish(subject: str, message: dict, settings: Settings | None = None, *, kind: str) -> str:
    """Publish to the AIOps topic: a readable text body plus message attributes for filtering."""
    settings = settings or get_settings()
    text = "\n".join(f"{key}: {value}" for key, value in message.items())
    response = hub_client("sns", settings).publish(
        TopicArn=topic_arn(settings), Subject=subject[:100], Message=text,
        MessageAttributes={"kind": {"DataType": "String", "StringValue": kind},
                           "payload": {"DataType": "String", "StringValue": json.dumps(message)[:2000]}},
    )
    return response["MessageId"]


def approval_instructions(record: ApprovalRecord, settings: Settings) -> str:
    conf = json.dumps({"execution_id": record.executionId, "decision": "approve", "reason": "..."})
    return (f"In the Airflow UI ({settings.airflow_base_url}), trigger DAG '{APPROVAL_DAG_ID}' with "
            f"execution_id={record.executionId} and decision approve or reject, before {record.expiresAt}. "
            f"CLI: airflow dags trigger {APPROVAL_DAG_ID} --conf '{conf}'")

