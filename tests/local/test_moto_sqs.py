"""``aiops_local.moto_sqs``: the local moto_server's SQS answers ReceiveMessage as moto does, without
computing every attribute of the queue for each message it hands out."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Queue, SQSBackend, sqs_backends

from aiops_local.moto_sqs import retention_check_reads_one_attribute


@pytest.fixture
def patched(monkeypatch):
    monkeypatch.setattr(
        SQSBackend,
        "is_message_valid_based_on_retention_period",
        SQSBackend.is_message_valid_based_on_retention_period,
    )  # restored after the test
    retention_check_reads_one_attribute()


@pytest.fixture
def attribute_reads(monkeypatch):
    """How often a queue's attributes (all of them, each count a pass over its messages) are computed."""
    reads = []
    computed = Queue.attributes

    monkeypatch.setattr(Queue, "attributes", property(lambda self: reads.append(1) or computed.fget(self)))
    return reads


def _queue(sqs, messages: int, retention: int = 345600) -> str:
    url = sqs.create_queue(QueueName="dlq", Attributes={"MessageRetentionPeriod": str(retention)})["QueueUrl"]
    for n in range(0, messages, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{n + i}"} for i in range(10)]
        )
    return url


@mock_aws
def test_a_receive_computes_no_queue_attributes(patched, attribute_reads):
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = _queue(sqs, 100)
    attribute_reads.clear()
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 10
    assert attribute_reads == []


@mock_aws
def test_without_the_patch_each_message_received_computes_them(attribute_reads):
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = _queue(sqs, 100)
    attribute_reads.clear()
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert len(attribute_reads) >= 10  # what the patch removes: moto 5.2.5 computes them per message


@mock_aws
@pytest.mark.parametrize(("age", "received"), [(120, 0), (30, 10)])
def test_the_retention_period_still_decides(patched, age, received):
    """Messages older than the queue's 60 s retention are not handed out; younger ones are."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = _queue(sqs, 10, retention=60)
    for message in sqs_backends["123456789012"]["us-east-1"].get_queue("dlq")._messages:
        message.sent_timestamp = int((time.time() - age) * 1000)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(got) == received
