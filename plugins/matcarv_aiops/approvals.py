"""Human approval, for remediations and maintenance plans alike: one request per execution in the
AIOpsApprovals table, decided once, before it expires.

The API: ``request`` (store a pending request and tell the approvers, once), ``decide`` (an approver's
decision; the ``approve_remediation`` DAG calls it) and ``decision`` (what the waiting side reads: None while
pending, else one shape for every caller).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from matcarv_aiops.aws import hub_client
from matcarv_aiops.dynamo import is_condition_failed
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, iso_utc, utc_now
from matcarv_aiops.notifications import Kind, notify
from matcarv_aiops.settings import Settings

log = logging.getLogger(__name__)

APPROVAL_DAG_ID = "approve_remediation"
_KEEP_DECIDED_DAYS = 90


class ApprovalError(ValueError):
    """A decision that cannot be recorded; the message says why."""


def _to_item(record: ApprovalRecord) -> dict:
    item = {
        k: {"S": str(v.value if hasattr(v, "value") else v)}
        for k, v in record.model_dump().items()
        if v is not None
    }
    expires = datetime.fromisoformat(record.expires_at.replace("Z", "+00:00"))
    item["ttl"] = {"N": str(int(expires.timestamp() + _KEEP_DECIDED_DAYS * 86400))}
    return item


def _from_item(item: dict) -> ApprovalRecord:
    return ApprovalRecord.model_validate({k: v["S"] for k, v in item.items() if k != "ttl"})


@dataclass
class ApprovalStore:
    settings: Settings

    @property
    def _ddb(self):
        return hub_client("dynamodb", self.settings)

    def get(self, execution_id: str) -> ApprovalRecord | None:
        item = self._ddb.get_item(
            TableName=self.settings.platform.approvals_table,
            Key={"executionId": {"S": execution_id}},
            ConsistentRead=True,
        ).get("Item")
        return _from_item(item) if item else None

    def create(self, record: ApprovalRecord) -> bool:
        """Store a new pending request. False when this execution already has one (a task retry)."""
        try:
            self._ddb.put_item(
                TableName=self.settings.platform.approvals_table,
                Item=_to_item(record),
                ConditionExpression="attribute_not_exists(executionId)",
            )
            return True
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
            return False

    def _update_status(
        self, execution_id: str, status: ApprovalStatus, now: str, condition: str, extra: dict[str, str]
    ) -> ApprovalRecord:
        names = {"#status": "status"}
        values = {
            ":pending": {"S": ApprovalStatus.PENDING.value},
            ":status": {"S": status.value},
            ":now": {"S": now},
        }
        sets = ["#status = :status", "decidedAt = :now"]
        for key, value in extra.items():
            sets.append(f"{key} = :{key}")
            values[f":{key}"] = {"S": value}
        response = self._ddb.update_item(
            TableName=self.settings.platform.approvals_table,
            Key={"executionId": {"S": execution_id}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
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
                execution_id,
                status,
                now,
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
            raise ApprovalError(
                f"execution {execution_id} was already {current.status.value}{by} at {current.decided_at}"
            )
        self.expire(execution_id)
        raise ApprovalError(
            f"the approval request for execution {execution_id} expired at {current.expires_at}"
        )

    def expire(self, execution_id: str) -> ApprovalRecord | None:
        """Mark a pending request whose time is up as EXPIRED; returns the record as it now stands."""
        try:
            return self._update_status(
                execution_id,
                ApprovalStatus.EXPIRED,
                iso_utc(),
                "#status = :pending AND expiresAt <= :now",
                {},
            )
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
        return self.get(execution_id)

    def cancel(self, execution_id: str, reason: str) -> ApprovalRecord | None:
        """Close a request that is still pending as CANCELLED (its run ended without a decision), so that
        no later decision can count; returns the record as it now stands (None when there is none)."""
        try:
            return self._update_status(
                execution_id,
                ApprovalStatus.CANCELLED,
                iso_utc(),
                "#status = :pending",
                {"decisionReason": reason},
            )
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
        return self.get(execution_id)


_webserver_urls: dict[tuple[str, str], str] = {}


def airflow_ui_url(settings: Settings) -> str:
    """Where approvers open the Airflow UI.

    On MWAA (``mwaa_environment_name`` set) it is the environment's own ``WebserverUrl``, read with
    ``mwaa:GetEnvironment`` once per process: the stack cannot pass it in, because the environment's
    configuration options cannot refer to the environment itself. Elsewhere ``airflow_base_url``. If the
    URL cannot be read, the text names the environment instead (never a made-up address).
    """
    name = settings.ingress.mwaa_environment_name
    if not name:
        return settings.airflow.airflow_base_url
    key = (name, settings.platform.region)
    if key not in _webserver_urls:
        try:
            url = hub_client("mwaa", settings).get_environment(Name=name)["Environment"]["WebserverUrl"]
        except (ClientError, BotoCoreError, KeyError) as exc:
            log.warning("cannot read the WebserverUrl of MWAA environment %s: %s", name, exc)
            return f"the Airflow UI of MWAA environment {name} (Amazon MWAA console, Open Airflow UI)"
        _webserver_urls[key] = url.rstrip("/") if url.startswith("https://") else f"https://{url.strip('/')}"
    return _webserver_urls[key]


def approval_instructions(record: ApprovalRecord, settings: Settings) -> str:
    conf = json.dumps({"execution_id": record.execution_id, "decision": "approve", "reason": "..."})
    ui = airflow_ui_url(settings)
    where = f"{ui}/dags/{APPROVAL_DAG_ID}" if ui.startswith("http") else ui
    return (
        f"In the Airflow UI ({where}), trigger DAG '{APPROVAL_DAG_ID}' with "
        f"execution_id={record.execution_id} and decision approve or reject, before {record.expires_at}. "
        f"CLI: airflow dags trigger {APPROVAL_DAG_ID} --conf '{conf}'"
    )


def request(
    settings: Settings,
    *,
    execution_id: str,
    remediation: str,
    dag_id: str,
    run_id: str,
    target: str,
    action: str,
    diagnostics_uri: str,
    rollback_plan: str,
    why: str,
) -> dict[str, Any]:
    """Ask a human to approve ``action`` on ``target`` for this one execution. The pending request is
    stored and the approvers are told over SNS once: a retried task finds its request already there."""
    now = utc_now()
    record = ApprovalRecord(
        execution_id=execution_id,
        remediation=remediation,
        dag_id=dag_id,
        run_id=run_id,
        target_resource=target,
        action=action,
        diagnostics_uri=diagnostics_uri,
        rollback_plan=rollback_plan,
        reason_for_approval=why,
        requested_at=iso_utc(now),
        expires_at=iso_utc(now + timedelta(minutes=settings.safety.approval_timeout_minutes)),
    )
    store = ApprovalStore(settings)
    if store.create(record):
        notify(
            settings,
            Kind.APPROVAL_REQUEST,
            f"AIOps approval needed: {remediation} on {target.rsplit('/', 1)[-1]}",
            {
                "executionId": execution_id,
                "remediation": remediation,
                "targetResource": target,
                "action": action,
                "whyApproval": why,
                "diagnostics": diagnostics_uri,
                "rollbackPlan": rollback_plan,
                "expiresAt": record.expires_at,
                "howToApprove": approval_instructions(record, settings),
            },
        )
    else:
        record = store.get(execution_id) or record
    return {"requested": True, "execution_id": record.execution_id, "expires_at": record.expires_at}


def decide(
    settings: Settings, execution_id: str, *, approve: bool, approver: str, reason: str
) -> ApprovalRecord:
    """An approver's decision on one pending, unexpired request.

    ``ApprovalError`` says why it cannot count."""
    return ApprovalStore(settings).decide(execution_id, approve=approve, approver=approver, reason=reason)


def current(settings: Settings, execution_id: str) -> ApprovalRecord | None:
    """This execution's request as it stands now (None when there is none): a pending request whose time
    is up is marked EXPIRED first."""
    store = ApprovalStore(settings)
    record = store.get(execution_id)
    if record is not None and record.status == ApprovalStatus.PENDING and record.expired():
        record = store.expire(execution_id) or record
    return record


def decision(settings: Settings, execution_id: str) -> dict[str, Any] | None:
    """The decision on this execution's request: None while it is pending (a request whose time is up
    is marked EXPIRED first), else ``{"decision": approved|rejected|expired, "operator", "reason",
    "decided_at", "expires_at"}``."""
    record = current(settings, execution_id)
    if record is None:
        raise ApprovalError(f"approval request for execution {execution_id} has disappeared")
    if record.status == ApprovalStatus.PENDING:
        return None
    return {
        "decision": record.status.value.lower(),
        "operator": record.approver or "automated",
        "reason": record.decision_reason or "",
        "decided_at": record.decided_at,
        "expires_at": record.expires_at,
    }
