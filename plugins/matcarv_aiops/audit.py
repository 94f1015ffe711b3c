"""Audit trail: one AutomationAuditLog item per execution, plus the RemediationExecuted metric and the
alert, each sent once per execution (``report_once``), by the audit step and by audit_reconciler alike."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from matcarv_aiops import METRIC_NAME, METRIC_NAMESPACE
from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.aws import hub_client
from matcarv_aiops.dynamo import batch_put, is_condition_failed
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, AuditRecord, Outcome, iso_utc
from matcarv_aiops.notifications import Kind, notify
from matcarv_aiops.settings import Settings

REPORTED_PREFIX = "reported#"  # state table: which after-effects of an execution's record were sent
_REPORTED_TTL_DAYS = 30


def _item(record: AuditRecord) -> dict:
    return {key: {"S": value} for key, value in record.to_item().items()}


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
        return AuditRecord.model_validate({k: v["S"] for k, v in item.items()}) if item else None

    def write(self, record: AuditRecord) -> bool:
        """Write the execution's one record. False when it already exists (a retried audit task, or a
        duplicate run): the first record stands and is never overwritten."""
        try:
            hub_client("dynamodb", self.settings).put_item(
                TableName=self.settings.platform.audit_table,
                Item=_item(record),
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

    def write_batch(self, records: Iterable[AuditRecord]) -> int:
        """Batch-write records (``dynamo.batch_put``: 25 per call, UnprocessedItems retried with backoff).
        Keys are execution ids, so re-running a batch rewrites the same items instead of adding new ones
        (the maintenance jobs rely on it: a re-run's record replaces the crashed run's). Each record is
        then copied (``archive_record``): a rewrite adds a version there, the first one stays locked."""
        written = list(records)
        count = batch_put(
            hub_client("dynamodb", self.settings),
            self.settings.platform.audit_table,
            (_item(record) for record in written),
        )
        for record in written:
            archive_record(self.settings, record)
        return count

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
    s3 = hub_client("s3", settings)
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
