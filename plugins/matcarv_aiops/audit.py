"""Audit trail: one AutomationAuditLog item per execution, plus the RemediationExecuted metric."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from matcarv_aiops import METRIC_NAME, METRIC_NAMESPACE
from matcarv_aiops.aws import hub_client
from matcarv_aiops.dynamo import batch_put, is_condition_failed
from matcarv_aiops.models import AuditRecord
from matcarv_aiops.settings import Settings


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

    def write(self, record: AuditRecord) -> bool:
        """Write the execution's one record. False when it already exists (a retried audit task, or a
        duplicate run): the first record stands and is never overwritten."""
        try:
            hub_client("dynamodb", self.settings).put_item(
                TableName=self.settings.platform.audit_table,
                Item=_item(record),
                ConditionExpression="attribute_not_exists(executionId)",
            )
            return True
        except ClientError as exc:
            if not is_condition_failed(exc):
                raise
            return False

    def write_batch(self, records: Iterable[AuditRecord]) -> int:
        """Batch-write records (``dynamo.batch_put``: 25 per call, UnprocessedItems retried with backoff).
        Keys are execution ids, so re-running a batch rewrites the same items instead of adding new ones."""
        return batch_put(
            hub_client("dynamodb", self.settings),
            self.settings.platform.audit_table,
            (_item(record) for record in records),
        )

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
