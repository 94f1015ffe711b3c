"""Audit trail: one AutomationAuditLog item per execution, plus the RemediationExecuted metric and the
alert, each sent once per execution (``report_once``), by the audit step and by audit_reconciler alike.

Records are only ever added: every write is a conditional put (the first record of an execution stands),
made as the audit writer's own principal (``writer_client``), and copied to the Object Lock archive.

Two indexes answer the trail's questions without a scan (``AUDIT_INDEXES``, used by the CDK app and by
``provision``): one target's history (``targetResource`` + ``timestamp``) and one day's records (``day``
= YYYY-MM-DD of the timestamp, + ``timestamp``). ``query_audit`` reads them a page at a time."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from matcarv_aiops import METRIC_NAME, METRIC_NAMESPACE
from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.aws import AssumedSession, assumed_session, hub_client, session_client
from matcarv_aiops.dynamo import batch_get, is_condition_failed, put_new
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, AuditRecord, Outcome, iso_utc
from matcarv_aiops.notifications import Kind, notify
from matcarv_aiops.settings import Settings

REPORTED_PREFIX = "reported#"  # state table: which after-effects of an execution's record were sent
_REPORTED_TTL_DAYS = 30


# index name -> (partition key, sort key); every attribute is a string and every index projects ALL.
TARGET_INDEX = "byTarget"
DAY_INDEX = "byDay"
AUDIT_INDEXES: dict[str, tuple[str, str]] = {
    TARGET_INDEX: ("targetResource", "timestamp"),
    DAY_INDEX: ("day", "timestamp"),
}
DAY_ATTRIBUTE = "day"


# The audit writer's own principal (``audit_writer_role_arn``): the only one the table lets put, and the
# only one that adds copies to the archive. Everything else the platform does, reads included, stays on
# the worker's credentials. The session name is fixed: the trust policy admits this one only, and
# CloudTrail shows every audit write under it.
WRITER_SESSION_NAME = "aiops-audit-writer"
_writer_clients: dict[tuple[str, str], tuple[AssumedSession, Any]] = {}


def writer_client(service: str, settings: Settings):
    """A client acting as the audit writer: of its role's session when ``audit_writer_role_arn`` is set
    (reused until ``assumed_session`` hands out a fresh session), else the hub's own client."""
    role_arn = settings.platform.audit_writer_role_arn
    if not role_arn:
        return hub_client(service, settings)
    region = settings.platform.region
    session = assumed_session(role_arn, region=region, session_name=WRITER_SESSION_NAME, settings=settings)
    cached = _writer_clients.get((role_arn, service))
    if cached is None or cached[0] is not session:
        cached = (session, session_client(session, service, region))
        _writer_clients[(role_arn, service)] = cached
    return cached[1]


def record_item(record: AuditRecord) -> dict:
    """A record as an audit table item, with the derived index attribute ``day``."""
    item = {key: {"S": value} for key, value in record.to_item().items()}
    item[DAY_ATTRIBUTE] = {"S": record.timestamp[:10]}  # ISO 8601 UTC: the first ten characters are the day
    return item


def record_from_item(item: dict[str, Any]) -> AuditRecord:
    """An audit table item as a record; the index attribute ``day`` is derived, so it is dropped."""
    return AuditRecord.model_validate({k: v["S"] for k, v in item.items() if k != DAY_ATTRIBUTE})


@dataclass
class AuditWriter:
    settings: Settings

    def outcome_of(self, execution_id: str) -> str | None:
        """The outcome of this execution's audit record, or None while it has none."""
        item = (
            hub_client("dynamodb", self.settings)
            .get_item(
                TableName=self.settings.platform.audit_table,
                Key={"executionId": {"S": execution_id}},
                ConsistentRead=True,
                ProjectionExpression="#outcome",
                ExpressionAttributeNames={"#outcome": "outcome"},
            )
            .get("Item")
        )
        return item["outcome"]["S"] if item else None

    def read(self, execution_id: str) -> AuditRecord | None:
        """This execution's audit record as stored (the first one written stands), or None."""
        item = (
            hub_client("dynamodb", self.settings)
            .get_item(
                TableName=self.settings.platform.audit_table,
                Key={"executionId": {"S": execution_id}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        return record_from_item(item) if item else None

    def write(self, record: AuditRecord) -> bool:
        """Write the execution's one record. False when it already exists (a retried audit task, or a
        duplicate run): the first record stands and is never overwritten."""
        try:
            writer_client("dynamodb", self.settings).put_item(
                TableName=self.settings.platform.audit_table,
                Item=record_item(record),
                ConditionExpression="attribute_not_exists(executionId)",
            )
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
            # A retried write: the first record stands; make sure its copy exists (a crash may have
            # come between the put and the copy).
            stored = self.read(record.execution_id)
            if stored is not None:
                archive_record(self.settings, stored, only_if_missing=True)
            return False
        archive_record(self.settings, record)
        return True

    def write_all(self, records: Iterable[AuditRecord]) -> int:
        """``write`` for many records (the maintenance jobs'), 100 to a call (``dynamo.put_new``: one
        TransactWriteItems of conditional puts): a record whose execution already has one is not
        written, the stored one stands. ``records`` is consumed a call at a time (a generator of any
        length keeps memory flat), and each call's records are copied to the archive before the next
        is sent. Returns how many records were new."""
        table, written = self.settings.platform.audit_table, 0
        items = (record_item(record) for record in records)
        for new, taken in put_new(writer_client("dynamodb", self.settings), table, items, key="executionId"):
            for item in new:
                archive_record(self.settings, record_from_item(item))
            written += len(new)
            if taken:  # a re-run's records: the stored ones stand; make sure their copies exist
                ids = dict.fromkeys(item["executionId"]["S"] for item in taken)  # BatchGetItem: no repeats
                keys = [{"executionId": {"S": execution_id}} for execution_id in ids]
                for stored in batch_get(hub_client("dynamodb", self.settings), table, keys):
                    archive_record(self.settings, record_from_item(stored), only_if_missing=True)
        return written

    def metric(self, remediation: str, outcome: str, count: int = 1) -> None:
        """RemediationExecuted in AIOps/Automation, per remediation and outcome, and per outcome alone
        (the FAILURE alarm watches the latter)."""
        hub_client("cloudwatch", self.settings).put_metric_data(
            Namespace=METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": METRIC_NAME,
                    "Unit": "Count",
                    "Value": count,
                    "Dimensions": [
                        {"Name": "Remediation", "Value": remediation},
                        {"Name": "Outcome", "Value": outcome},
                    ],
                },
                {
                    "MetricName": METRIC_NAME,
                    "Unit": "Count",
                    "Value": count,
                    "Dimensions": [{"Name": "Outcome", "Value": outcome}],
                },
            ],
        )


ARCHIVE_PREFIX = "audit/"


def archive_key(execution_id: str) -> str:
    return f"{ARCHIVE_PREFIX}{execution_id}.json"


def archive_record(settings: Settings, record: AuditRecord, *, only_if_missing: bool = False) -> None:
    """Copy the record to the Object Lock bucket (``audit_archive_bucket``), where compliance-mode
    retention keeps the version from deletion by anyone. Made by the writer, right after its put, so
    the copy needs no second pipeline; ``only_if_missing`` skips a copy that is already there."""
    s3 = writer_client("s3", settings)
    bucket, key = settings.platform.audit_archive_bucket, archive_key(record.execution_id)
    if only_if_missing:
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(record.to_item(), sort_keys=True).encode(),
        ContentType="application/json",
    )


def expired_approval(settings: Settings, record: AuditRecord) -> ApprovalRecord | None:
    """The approval request that ran out with no decision, for a SKIPPED record whose run waited on one
    (read from the approval store, not from task state); None otherwise."""
    if record.outcome is not Outcome.SKIPPED:
        return None
    approval = ApprovalStore(settings).get(record.execution_id)
    return approval if approval is not None and approval.status is ApprovalStatus.EXPIRED else None


def alert_for(
    record: AuditRecord, *, diagnostics_uri: str, expired: ApprovalRecord | None
) -> tuple[Kind, str, dict[str, Any]] | None:
    """The alert a record calls for (kind, subject, message): a FAILURE, or an approval that expired with
    the problem still there; None when nobody needs to be told."""
    if record.outcome is Outcome.FAILURE:
        return (
            Kind.FAILURE,
            f"AIOps remediation FAILED: {record.runbook}",
            {
                "executionId": record.execution_id,
                "targetResource": record.target_resource,
                "action": record.action,
                "rollbackPlan": record.rollback_plan,
                "diagnostics": diagnostics_uri,
            },
        )
    if expired is not None:
        return (
            Kind.APPROVAL_EXPIRED,
            f"AIOps approval EXPIRED, nothing fixed: {record.runbook} on "
            f"{record.target_resource.rsplit('/', 1)[-1].rsplit(':', 1)[-1]}",
            {
                "executionId": record.execution_id,
                "targetResource": record.target_resource,
                "problem": "still there: nobody decided on the fix in time, so nothing was changed",
                "proposedAction": expired.action,
                "whyApproval": expired.reason_for_approval,
                "requestedAt": expired.requested_at,
                "expiredAt": expired.expires_at,
                "diagnostics": diagnostics_uri,
                "whatNow": f"fix it by hand, or trigger {record.runbook} with its target",
            },
        )
    return None


def report_once(
    settings: Settings,
    record: AuditRecord,
    *,
    remediation: str,
    diagnostics_uri: str,
    expired: ApprovalRecord | None = None,
) -> list[str]:
    """Send the record's RemediationExecuted metric and its alert (``alert_for``), each at most once per
    execution however often this is called: a marker item ``reported#<executionId>`` in the state table
    is read first and stamped after each one is sent. Returns what this call sent.

    The window: a crash between sending and stamping sends that one again on the next call. That is the
    side to err on: a second alert or one extra count is noise, a lost FAILURE alert is a problem nobody
    hears of. When the marker cannot be read, nothing is sent (the caller fails and is retried, and the
    reconciler finishes the job once the table answers): sending blind would repeat on every retry."""
    ddb = hub_client("dynamodb", settings)
    key = {"pk": {"S": f"{REPORTED_PREFIX}{record.execution_id}"}}
    table = settings.platform.state_table
    marker = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
    sent: list[str] = []

    def stamp(field: str) -> None:
        ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression=f"SET {field} = :now, outcome = :outcome, #ttl = :ttl",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={
                ":now": {"S": iso_utc()},
                ":outcome": {"S": record.outcome.value},
                ":ttl": {"N": str(int(time.time() + _REPORTED_TTL_DAYS * 86400))},
            },
        )
        sent.append(field.removesuffix("SentAt"))

    if "metricSentAt" not in marker:
        AuditWriter(settings).metric(remediation, record.outcome.value)
        stamp("metricSentAt")
    alert = alert_for(record, diagnostics_uri=diagnostics_uri, expired=expired)
    if alert is not None and "alertSentAt" not in marker:
        notify(settings, *alert)
        stamp("alertSentAt")
    return sent


class BadAuditQuery(ValueError):
    """A query the audit indexes cannot answer as asked; the message says what is wrong."""


@dataclass(frozen=True)
class AuditQuery:
    """Which records: one target's (the target index), or those between ``since`` and ``until`` (the
    day index, one day at a time, newest first); ``runbooks`` and ``outcome`` filter either."""

    since: datetime
    until: datetime
    target: str | None = None
    runbooks: tuple[str, ...] = ()
    outcome: Outcome | None = None

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise BadAuditQuery("since and until must carry a time zone")
        if self.since > self.until:
            raise BadAuditQuery(f"since {iso_utc(self.since)} is after until {iso_utc(self.until)}")

    def days(self) -> list[str]:
        """The days the range covers, newest first."""
        first, last = self.since.astimezone(UTC).date(), self.until.astimezone(UTC).date()
        return [(last - timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


@dataclass
class AuditPage:
    records: list[AuditRecord] = field(default_factory=list)
    next_token: str | None = None  # pass back as ``start`` for the next page; None when there is no more
    items_read: int = 0  # items DynamoDB read (ScannedCount), the cost of the page


def _encode_token(day: str | None, key: dict[str, Any] | None) -> str:
    return base64.urlsafe_b64encode(json.dumps({"day": day, "key": key}).encode()).decode()


def _decode_token(token: str) -> tuple[str | None, dict[str, Any] | None]:
    try:
        parsed = json.loads(base64.urlsafe_b64decode(token.encode()))
        return parsed["day"], parsed["key"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadAuditQuery("the page token is not one this command printed") from None


def query_audit(
    settings: Settings, query: AuditQuery, *, limit: int = 50, start: str | None = None
) -> AuditPage:
    """Up to ``limit`` records matching ``query``, newest first, by Query on an index (never a Scan).
    ``start`` is the ``next_token`` of the previous page."""
    if limit < 1:
        raise BadAuditQuery(f"limit must be at least 1, not {limit}")
    ddb = hub_client("dynamodb", settings)
    names: dict[str, str] = {"#ts": "timestamp"}
    values: dict[str, Any] = {
        ":since": {"S": iso_utc(query.since)},
        ":until": {"S": iso_utc(query.until)},
    }
    filters = []
    if query.runbooks:
        names["#runbook"] = "runbook"
        placeholders = [f":runbook{n}" for n in range(len(query.runbooks))]
        values.update({p: {"S": r} for p, r in zip(placeholders, query.runbooks, strict=True)})
        filters.append(f"#runbook IN ({', '.join(placeholders)})")
    if query.outcome is not None:
        names["#outcome"] = "outcome"
        values[":outcome"] = {"S": query.outcome.value}
        filters.append("#outcome = :outcome")
    day, key = _decode_token(start) if start else (None, None)
    if query.target is not None:
        days: list[str | None] = [None]
        names["#pk"] = "targetResource"
        values[":pk"] = {"S": query.target}
    else:
        days = list(query.days())
        names["#pk"] = DAY_ATTRIBUTE
        if day is not None:
            if day not in days:
                raise BadAuditQuery("the page token belongs to another time range")
            days = days[days.index(day) :]
    page = AuditPage()
    for n, current in enumerate(days):
        if current is not None:
            values[":pk"] = {"S": current}
        while True:
            request: dict[str, Any] = {
                "TableName": settings.platform.audit_table,
                "IndexName": TARGET_INDEX if query.target is not None else DAY_INDEX,
                "KeyConditionExpression": "#pk = :pk AND #ts BETWEEN :since AND :until",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ScanIndexForward": False,
                "Limit": limit - len(page.records),
            }
            if filters:
                request["FilterExpression"] = " AND ".join(filters)
            if key:
                request["ExclusiveStartKey"] = key
            answer = ddb.query(**request)
            page.items_read += answer.get("ScannedCount", 0)
            page.records += [record_from_item(item) for item in answer.get("Items", [])]
            key = answer.get("LastEvaluatedKey")
            if len(page.records) >= limit:
                if key:
                    page.next_token = _encode_token(current, key)
                elif n + 1 < len(days):
                    page.next_token = _encode_token(days[n + 1], None)
                return page
            if not key:
                break
    return page
