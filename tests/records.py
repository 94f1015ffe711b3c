"""An audit record for tests that need one, any field overridden."""

from __future__ import annotations

import uuid

from matcarv_aiops.models import AuditRecord, iso_utc


def audit_record(execution_id: str | None = None, **overrides) -> AuditRecord:
    values = dict(
        execution_id=execution_id or str(uuid.uuid4()),
        timestamp=iso_utc(),
        trigger="{}",
        runbook="sqs_dlq_depth_high",
        target_resource="arn:aws:sqs:us-east-1:123456789012:orders-dlq",
        action="redrove 12 messages",
        outcome="SUCCESS",
        operator="automated",
        rollback_plan="none needed",
    )
    values.update(overrides)
    return AuditRecord(**values)
