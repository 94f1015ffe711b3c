"""Read what the platform published to its SNS topic, through a real SQS subscription in moto."""

from __future__ import annotations

import json

import boto3

from matcarv_aiops.aws import topic_arn


class TopicInbox:
    def __init__(self, settings):
        sqs = boto3.client("sqs", region_name=settings.platform.region)
        self._sqs = sqs
        self._url = sqs.create_queue(QueueName="aiops-test-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        boto3.client("sns", region_name=settings.platform.region).subscribe(
            TopicArn=topic_arn(settings), Protocol="sqs", Endpoint=queue_arn
        )

    def messages(self, kind: str | None = None) -> list[dict]:
        """SNS notifications (Subject, Message, MessageAttributes), oldest first, optionally of one kind."""
        found = []
        while True:
            batch = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            for message in batch:
                found.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return [m for m in found if kind is None or m["MessageAttributes"]["kind"]["Value"] == kind]
