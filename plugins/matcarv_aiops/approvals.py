"""Human approval, for remediations and maintenance plans alike: one request per execution in the
AIOpsApprovals table, decided once, before it expires.

The API: ``request`` (store a pending request and tell the approvers, once), ``decide`` (an approver's
decision; the ``approve_remediation`` DAG calls it) and ``decision`` (what the waiting side reads: None while
pending, else one shape for every caller).

Who may decide (``decider_refusal`` and ``ApprovalStore.decide``): a member of the approver group
(``settings.safety.approvers``), never ``automated``, never the user who started the run, and only behind an
authenticated trigger unless ``allow_unauthenticated_decisions``; a production request may need more
than one distinct approver (``production_approvals``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from matcarv_aiops.aws import hub_client
from matcarv_aiops.dynamo import is_condition_failed
from matcarv_aiops.models import AUTOMATED, ApprovalRecord, ApprovalStatus, iso_utc, utc_now
from matcarv_aiops.notifications import Kind, notify
from matcarv_aiops.settings import Settings

log = logging.getLogger(__name__)

APPROVAL_DAG_ID = "approve_remediation"
_KEEP_DECIDED_DAYS = 90


class ApprovalError(ValueError):
    """A decision that cannot be recorded; the message says why."""


def decider_refusal(settings: Settings, decider: str, *, authenticated: bool) -> str | None:
    """Why ``decider`` may not decide any request (one line), or None. The requester check needs the
    request, so ``ApprovalStore.decide`` makes it."""
    group = settings.safety.approvers
    if not decider:
        return "the decision has no approver identity"
    if decider == AUTOMATED:
        return f"'{AUTOMATED}' is the platform's own name and cannot decide an approval request"
    if not authenticated and not settings.safety.allow_unauthenticated_decisions:
        return (
            f"no authenticated user is behind this decision (a CLI trigger records the OS user, here "
            f"{decider!r}): decide from the Airflow UI or REST API"
        )
    if not group:
        return "no approver group is configured (AIOPS_APPROVERS is empty), so nobody may decide"
    if decider not in group:
        return f"{decider} is not in the approver group (AIOPS_APPROVERS) and cannot decide"
    return None


def approval_refusal(settings: Settings, record: ApprovalRecord) -> str | None:
    """Why an APPROVED record does not count at this moment, or None. The decision was checked when it
    was made; this checks it again as it stands now (the group may have changed, and a record written
    around ``decide`` must not count): every decider still allowed and not the requester, and as many
    distinct approvers as the request needs."""
    for decider in record.approvers:
        refusal = decider_refusal(settings, decider, authenticated=True)
        if refusal is None and decider == record.requested_by:
            refusal = f"{decider} requested this run and cannot approve it"
        if refusal:
            return refusal
    distinct = len(set(record.approvers))
    if distinct < record.approvals_required:
        return f"it needs {record.approvals_required} distinct approvers, has {distinct}"
    return None


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

    def decide(
        self,
        execution_id: str,
        *,
        approve: bool,
        approver: str,
        reason: str,
        authenticated: bool = True,
    ) -> ApprovalRecord:
        """Record one decider's decision. It counts only from a member of the approver group who is not
        the run's requester, behind an authenticated trigger (``authenticated``: False for a CLI
        trigger), on a pending, unexpired request of this exact execution. A request that needs more
        than one approver stays PENDING until that many distinct members approved; a rejection ends it.

        The write is conditional on the record as it was read (status, expiry, requester, approvers so
        far), so a concurrent decision or a changed record makes it fail rather than count twice."""
        approver = approver.strip()
        refusal = decider_refusal(self.settings, approver, authenticated=authenticated)
        if refusal:
            raise ApprovalError(refusal)
        record = self.get(execution_id)
        if record is None:
            raise ApprovalError(f"no approval request for execution {execution_id}")
        if approver == record.requested_by:
            raise ApprovalError(
                f"{approver} requested the run of execution {execution_id} and cannot decide it: "
                "another approver must"
            )
        if record.status == ApprovalStatus.PENDING and not record.expired():
            if approver in record.approvers:
                raise ApprovalError(
                    f"{approver} already approved execution {execution_id}; it needs "
                    f"{record.approvals_required} distinct approvers"
                )
            try:
                return self._record_decision(record, approve=approve, approver=approver, reason=reason)
            except ClientError as exc:
                if not is_condition_failed(exc):
                    raise
        return self._refuse_not_pending(execution_id)

    def _record_decision(
        self, record: ApprovalRecord, *, approve: bool, approver: str, reason: str
    ) -> ApprovalRecord:
        before = record.approvers
        reason = reason.strip() or "(no reason given)"
        if not approve:
            status, deciders = ApprovalStatus.REJECTED, [approver]
            if before:
                reason = f"{reason} (rejected after approval by {', '.join(before)})"
        else:
            deciders = [*before, approver]
            enough = len(deciders) >= record.approvals_required
            status = ApprovalStatus.APPROVED if enough else ApprovalStatus.PENDING
        now = iso_utc()
        sets = ["#status = :status", "approver = :approver", "decisionReason = :reason"]
        values: dict[str, dict[str, str]] = {
            ":pending": {"S": ApprovalStatus.PENDING.value},
            ":status": {"S": status.value},
            ":approver": {"S": ",".join(deciders)},
            ":reason": {"S": reason},
            ":now": {"S": now},
            ":requester": {"S": record.requested_by},
        }
        if status != ApprovalStatus.PENDING:
            sets.append("decidedAt = :now")
        # The requester is compared in the item itself (absent on requests stored before it was recorded,
        # which the ingress started), and the approvers so far must be the ones read above.
        condition = [
            "attribute_exists(executionId)",
            "#status = :pending",
            "expiresAt > :now",
            "(requestedBy = :requester OR attribute_not_exists(requestedBy))",
        ]
        if before:
            condition.append("approver = :before")
            values[":before"] = {"S": record.approver or ""}
        else:
            condition.append("attribute_not_exists(approver)")
        response = self._ddb.update_item(
            TableName=self.settings.platform.approvals_table,
            Key={"executionId": {"S": record.execution_id}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=" AND ".join(condition),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return _from_item(response["Attributes"])

    def _refuse_not_pending(self, execution_id: str) -> NoReturn:
        """Why a decision on this request cannot count now: gone, decided, expired, or changed meanwhile."""
        current = self.get(execution_id)
        if current is None:
            raise ApprovalError(f"no approval request for execution {execution_id}")
        if current.status != ApprovalStatus.PENDING:
            by = f" by {current.approver}" if current.approver else ""
            raise ApprovalError(
                f"execution {execution_id} was already {current.status.value}{by} at {current.decided_at}"
            )
        if current.expired():
            self.expire(execution_id)
            raise ApprovalError(
                f"the approval request for execution {execution_id} expired at {current.expires_at}"
            )
        raise ApprovalError(
            f"the approval request for execution {execution_id} changed while deciding "
            "(another decision landed first): look at it again and retry"
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
    """How to decide this request, for the SNS (and Slack) message: the AIOps view's link, which opens
    the request with its approve and reject buttons (one click plus a reason), and the REST call."""
    from matcarv_aiops.console import view_url

    conf = json.dumps({"execution_id": record.execution_id, "decision": "approve", "reason": "..."})
    ui = airflow_ui_url(settings)
    needs = (
        f"{record.approvals_required} distinct approvers" if record.approvals_required > 1 else "one approver"
    )
    if ui.startswith("http"):
        where = (
            f"Approve or reject it in the AIOps view of the Airflow UI: {view_url(ui, record.execution_id)} "
            f"- or in the Airflow UI ({ui}/dags/{APPROVAL_DAG_ID}) trigger DAG '{APPROVAL_DAG_ID}' with "
            f"execution_id={record.execution_id} and decision approve or reject"
        )
    else:
        where = (
            f"In {ui}, open the AIOps view (or trigger DAG '{APPROVAL_DAG_ID}' with "
            f"execution_id={record.execution_id}) and approve or reject it"
        )
    # No CLI line: a CLI trigger has no authenticated user behind it, and its decision is refused.
    return (
        f"{where}, before {record.expires_at}. "
        f"Needs {needs} of the approver group, other than {record.requested_by} who requested it. "
        f"REST API: POST /api/v2/dags/{APPROVAL_DAG_ID}/dagRuns with conf {conf}"
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
    plan_digest: str | None = None,
    requested_by: str = AUTOMATED,
    approvals_required: int = 1,
    account: str | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """Ask a human to approve ``action`` on ``target`` for this one execution. The pending request is
    stored and the approvers are told over SNS once: a retried task finds its request already there.
    ``plan_digest`` binds a maintenance plan's approval to the exact plan bytes the approver saw;
    ``requested_by`` (who started the run) may not decide it; ``approvals_required`` distinct approvers
    must. ``account`` and ``region``: the target's, for the approver (an S3 ARN names neither)."""
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
        plan_digest=plan_digest,
        requested_by=requested_by,
        approvals_required=approvals_required,
        account=account or None,
        region=region or None,
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
                "requestedBy": record.requested_by,
                "approvalsRequired": record.approvals_required,
                "howToApprove": approval_instructions(record, settings),
            },
        )
    else:
        record = store.get(execution_id) or record
    return {"requested": True, "execution_id": record.execution_id, "expires_at": record.expires_at}


def decide(
    settings: Settings,
    execution_id: str,
    *,
    approve: bool,
    approver: str,
    reason: str,
    authenticated: bool = True,
) -> ApprovalRecord:
    """An approver's decision on one pending, unexpired request (``ApprovalStore.decide``: who may decide).

    ``ApprovalError`` says why it cannot count."""
    return ApprovalStore(settings).decide(
        execution_id, approve=approve, approver=approver, reason=reason, authenticated=authenticated
    )


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
        "operator": record.approver or AUTOMATED,
        "reason": record.decision_reason or "",
        "decided_at": record.decided_at,
        "expires_at": record.expires_at,
    }
