"""SQS lookups shared by the queue remediations."""

from __future__ import annotations

from botocore.exceptions import ClientError

from matcarv_aiops.remediations.base import RemediationContext


def queue_url(ctx: RemediationContext) -> str | None:
    """The target queue's URL, or None when the queue no longer exists."""
    try:
        return ctx.client("sqs").get_queue_url(
            QueueName=ctx.target.resource_id, QueueOwnerAWSAccountId=ctx.target.account
        )["QueueUrl"]
    except ClientError as exc:
        if "NonExistentQueue" in exc.response["Error"]["Code"] or "QueueDoesNotExist" in str(exc):
            return None
        raise
