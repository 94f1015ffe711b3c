"""Audit trail: one AutomationAuditLog item per execution, plus the RemediationExecuted metric."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from matcarv_aiops import METRIC_NAME, METRIC_NAMESPACE
from matcarv_aiops.aws import hub_client
from matcarv_aiops.models import AuditRecord
from matcarv_aiops.settings import Settings, get_settings

_BATCH = 25  # BatchWriteItem's limit
_MAX_UNPROCESSED_ROUNDS = 8


def _item(record: AuditRecord) -> dict:
    return {key: {"S": value} for key, value in record.to_item().items()}


@dataclass
class AuditWriter:
    settings: Settings

    @classmethod
    def default(cls) -> "AuditWriter":
        return cls(get_settings())

    def write(self, record: AuditRecord) -> bool:
        """Write the execution's one record. False when it already exists (a retried audit task, or a
        duplicate run): the first record stands and is never overwritten."""
        try:
            hub_client("dynamodb", self.settings).put_item(
                TableName=self.settings.audit_table, Item=_item(record),
                ConditionExpression="attribute_not_exists(executionId)",
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False

    def write_batch(self, records: Iterable[AuditRecord]) -> int:
        """Batch-write records (25 per call), retrying UnprocessedItems with backoff. Keys are execution
        ids, so re-running a batch rewrites the same items instead of adding new ones."""
        ddb = hub_client("dynamodb", self.settings)
        written = 0
        batch: list[AuditRecord] = []

        def flush() -> None:
            nonlocal written
            requests = {self.settings.audit_table: [{"PutRequest": {"Item": _item(r)}} for r in batch]}
            for round_ in range(_MAX_UNPROCESSED_ROUNDS):
                requests = ddb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
                if not requests:
                    break
                time.sleep(min(2 ** round_ * 0.05, 2.0))
            else:
                raise RuntimeError(f"audit batch: {len(requests[self.settings.audit_table])} items still "
                                   f"unprocessed after {_MAX_UNPROCESSED_ROUNDS} rounds")
            written += len(batch)
            batch.clear()

        for record in records:
            batch.append(record)
            if len(batch) == _BATCH:
                flush()
        if batch:
            flush()
        return written

    def metric(self, remediation: str, outcome: str, count: int = 1) -> None:
        """RemediationExecuted in AIOps/Automation, per remediation and outcome, and per outcome alone
        (the FAILURE alarm watches the latter)."""
        hub_client("cloudwatch", self.settings).put_metric_data(
            Namespace=METRIC_NAMESPACE,
            MetricData=[
                {"MetricName": METRIC_NAME, "Unit": "Count", "Value": count,
                 "Dimensions": [{"Name": "Remediation", "Value": remediation},
                                {"Name": "Outcome", "Value": outcome}]},
                {"MetricName": METRIC_NAME, "Unit": "Count", "Value": count,
                 "Dimensions": [{"Name": "Outcome", "Value": outcome}]},
            ],
        )
