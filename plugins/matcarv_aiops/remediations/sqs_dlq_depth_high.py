"""Redrive a dead-letter queue's messages to its one source queue."""

from __future__ import annotations

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.queues import queue_url
from matcarv_aiops.remediations.base import Remediation, Validation

_BATCH = 10  # SQS's maximum for ReceiveMessage, SendMessageBatch and DeleteMessageBatch
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
            return (f"dead-letter queue of {len(sources)} source queues; a redrive cannot tell which "
                    "message came from which, so it needs a human")
        depth = ctx.threshold("depth")
        if state["visible"] <= depth:
            return f"already fixed: {state['visible']} messages visible, not above {depth:g}"
        return None

    def plan(self, ctx, state):
        limit = int(ctx.threshold("max_messages_per_run"))
        return (f"move up to {limit} of {state['visible']} messages from {state['queue_url']} to "
                f"{state['source_queue_urls'][0]}, deleting each only after the source queue accepted it")

    def execute(self, ctx, state):
        sqs = ctx.client("sqs")
        dlq, source = state["queue_url"], state["source_queue_urls"][0]
        limit = int(ctx.threshold("max_messages_per_run"))
        moved = failed = empty = 0
        while moved < limit and empty < _EMPTY_RECEIVES_BEFORE_DONE:
            messages = sqs.receive_message(
                QueueUrl=dlq, MaxNumberOfMessages=min(_BATCH, limit - moved), VisibilityTimeout=120,
                WaitTimeSeconds=1, AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                empty += 1
                continue
            empty = 0
            entries = []
            for index, message in enumerate(messages):
                entry = {"Id": str(index), "MessageBody": message["Body"]}
                if message.get("MessageAttributes"):
                    entry["MessageAttributes"] = message["MessageAttributes"]
                if state["fifo"]:
                    attributes = message.get("Attributes", {})
                    entry["MessageGroupId"] = attributes["MessageGroupId"]
                    entry["MessageDeduplicationId"] = attributes.get("MessageDeduplicationId",
                                                                     message["MessageId"])
                entries.append(entry)
            sent = sqs.send_message_batch(QueueUrl=source, Entries=entries)
            accepted = [messages[int(ok["Id"])] for ok in sent.get("Successful", [])]
            failed += len(sent.get("Failed", []))
            if accepted:
                sqs.delete_message_batch(QueueUrl=dlq, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(accepted)])
            moved += len(accepted)
        return {"moved": moved, "send_failures": failed, "source_queue_url": source}

    def validate(self, ctx, state, result):
        attrs = ctx.client("sqs").get_queue_attributes(
            QueueUrl=state["queue_url"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        remaining = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        depth = ctx.threshold("depth")
        if remaining > depth:
            return Validation(False, f"dead-letter queue still holds {remaining} messages (> {depth:g}) "
                                     f"after moving {result['moved']}")
        return Validation(True, f"moved {result['moved']} messages; {remaining} remain")
