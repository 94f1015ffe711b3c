"""Redrive a dead-letter queue's messages to its one source queue."""

from __future__ import annotations

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, unrecorded
from matcarv_aiops.remediations.queues import queue_url

_BATCH = 10  # SQS's maximum for ReceiveMessage, SendMessageBatch and DeleteMessageBatch
# The redrive is done after an empty long-poll receive (a long poll asks every SQS server, so it does not
# answer empty while a message is visible) that the queue's own count confirms: no visible message.
# While that count still reports messages, it keeps receiving, up to this many empty receives in a row.
_EMPTY_RECEIVES_BEFORE_DONE = 3


@register
class SqsDlqDepthHigh(Remediation):
    remediation_id = "sqs_dlq_depth_high"

    def collect_diagnostics(self, ctx):
        sqs = ctx.client("sqs")
        url = queue_url(ctx)
        if url is None:
            return None
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        sources = sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        return {
            "queue_url": url,
            "queue_arn": attrs["QueueArn"],
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "fifo": attrs.get("FifoQueue") == "true",
            "source_queue_urls": sources,
            "tags": tags,
        }

    def check_eligibility(self, ctx, state):
        sources = state["source_queue_urls"]
        if not sources:
            return "not a dead-letter queue: no source queue names it in its redrive policy"
        if len(sources) > 1:
            return (
                f"dead-letter queue of {len(sources)} source queues; a redrive cannot tell which "
                "message came from which, so it needs a human"
            )
        alarm = ctx.entry.metric_alarm
        depth = alarm.threshold
        if not alarm.breached(state["visible"]):
            return f"already fixed: {state['visible']} messages visible, not above {depth:g}"
        return None

    def plan(self, ctx, state):
        limit = int(ctx.threshold("max_messages_per_run"))
        return (
            f"move up to {limit} of {state['visible']} messages from {state['queue_url']} to "
            f"{state['source_queue_urls'][0]}, deleting each only after the source queue accepted it, "
            "and stopping at the first message it cannot delete"
        )

    def execute(self, ctx, state):
        """Receive, send to the source, delete from the DLQ, 10 at a time.

        ``moved`` counts the messages deleted from the DLQ after the source accepted them. A message the
        source accepted but the DLQ would not delete (after one retry of a server-side failure) is now in
        both queues: the redrive stops there, since whatever broke the delete would duplicate every further
        message too, and reports those DLQ message ids in ``not_deleted``; validation then fails and the
        audit record names them. A message id already sent by this execution is never sent again (SQS may
        hand a message out twice): it is only deleted.
        """
        sqs = ctx.client("sqs")
        dlq, source = state["queue_url"], state["source_queue_urls"][0]
        limit = int(ctx.threshold("max_messages_per_run"))
        sent: set[str] = set()
        not_deleted: list[str] = []
        moved = send_failures = empty = 0
        while moved < limit and empty < _EMPTY_RECEIVES_BEFORE_DONE and not not_deleted:
            messages = sqs.receive_message(
                QueueUrl=dlq,
                MaxNumberOfMessages=min(_BATCH, limit - moved),
                VisibilityTimeout=120,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                empty += 1
                if _none_visible(sqs, dlq):
                    break
                continue
            empty = 0
            again = [m for m in messages if m["MessageId"] in sent]  # already in the source: delete only
            fresh = [m for m in messages if m["MessageId"] not in sent]
            accepted = []
            if fresh:
                response = sqs.send_message_batch(
                    QueueUrl=source,
                    Entries=[
                        _entry(str(index), message, state["fifo"]) for index, message in enumerate(fresh)
                    ],
                )
                accepted = [fresh[int(ok["Id"])] for ok in response.get("Successful", [])]
                send_failures += len(response.get("Failed", []))
                sent.update(m["MessageId"] for m in accepted)
            failed = _delete(sqs, dlq, accepted + again)
            not_deleted.extend(failed)
            moved += sum(1 for m in accepted if m["MessageId"] not in failed)
        return {
            "moved": moved,
            "send_failures": send_failures,
            "not_deleted": not_deleted,
            "source_queue_url": source,
        }

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("how many messages it moved")
        not_deleted = result.get("not_deleted", [])
        if not_deleted:
            shown = ", ".join(not_deleted[:20]) + (" ..." if len(not_deleted) > 20 else "")
            return Validation(
                False,
                (
                    f"moved {result['moved']} messages, then stopped: {len(not_deleted)} messages sent to "
                    f"{result['source_queue_url']} could not be deleted from the dead-letter queue, "
                    "so they are in both queues and a later redrive would deliver them again; "
                    "delete them from the "
                    f"dead-letter queue once the source has processed them (message ids: {shown})"
                ),
            )
        attrs = ctx.client("sqs").get_queue_attributes(
            QueueUrl=state["queue_url"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        remaining = int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )
        alarm = ctx.entry.metric_alarm
        depth = alarm.threshold
        if alarm.breached(remaining):
            return Validation(
                False,
                f"dead-letter queue still holds {remaining} messages (> {depth:g}) "
                f"after moving {result['moved']}",
            )
        return Validation(True, f"moved {result['moved']} messages; {remaining} remain")


def _none_visible(sqs, dlq: str) -> bool:
    """The DLQ's own count of visible messages is zero. The count is approximate and may lag a drain by a
    while on SQS: then it is not zero yet, and the redrive goes on receiving as it did before."""
    attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"].get("ApproximateNumberOfMessages", 0)) == 0


def _entry(entry_id: str, message: dict, fifo: bool) -> dict:
    """The SendMessageBatch entry that re-sends ``message`` as it was."""
    entry = {"Id": entry_id, "MessageBody": message["Body"]}
    if message.get("MessageAttributes"):
        entry["MessageAttributes"] = message["MessageAttributes"]
    if fifo:
        attributes = message.get("Attributes", {})
        entry["MessageGroupId"] = attributes["MessageGroupId"]
        entry["MessageDeduplicationId"] = attributes.get("MessageDeduplicationId", message["MessageId"])
    return entry


def _delete(sqs, dlq: str, messages: list[dict]) -> list[str]:
    """Delete ``messages`` from the DLQ; entries that failed on the server's side are tried once more.
    Returns the ids of the messages still not deleted."""
    pending = {str(index): message for index, message in enumerate(messages)}
    not_deleted: list[str] = []
    for attempt in (1, 2):
        if not pending:
            break
        entries = [
            {"Id": entry_id, "ReceiptHandle": message["ReceiptHandle"]}
            for entry_id, message in pending.items()
        ]
        response = sqs.delete_message_batch(QueueUrl=dlq, Entries=entries)
        retry = {}
        for failure in response.get("Failed", []):
            message = pending[failure["Id"]]
            if failure.get("SenderFault") or attempt == 2:
                not_deleted.append(message["MessageId"])
            else:
                retry[failure["Id"]] = message
        pending = retry
    return not_deleted
