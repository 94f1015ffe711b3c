import boto3
import pytest

from matcarv_aiops.remediations.base import RemediationContext
from tests.events import alarm_event


def _dlq(depth: int, *, tags=None):
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="orders-dlq", tags=tags or {})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName="orders",
        Attributes={"RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}'},
    )["QueueUrl"]
    for start in range(0, depth, 10):
        sqs.send_message_batch(
            QueueUrl=dlq,
            Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(min(10, depth - start))],
        )
    return sqs, dlq, source


def _depth(sqs, url):
    return int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )


EVENT = alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders-dlq"})


def test_redrives_to_source_queue(remediate):
    sqs, dlq, source = _dlq(130)
    run = remediate("sqs_dlq_depth_high", {"event": EVENT})
    assert run.outcome == "SUCCESS", run
    assert _depth(sqs, dlq) == 0 and _depth(sqs, source) == 130


def test_not_above_threshold_is_skipped(remediate):
    sqs, dlq, source = _dlq(40)
    run = remediate("sqs_dlq_depth_high", {"event": EVENT})
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action
    assert _depth(sqs, dlq) == 40 and _depth(sqs, source) == 0


def test_queue_that_is_no_dlq_is_skipped(remediate):
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    run = remediate("sqs_dlq_depth_high", {"event": EVENT})
    assert run.outcome == "SKIPPED" and "not a dead-letter queue" in run.audit.action
    assert _depth(sqs, url) == 0


class FlakySqs:
    """The moto SQS client, except in DeleteMessageBatch: the entries of messages whose body is in ``fail``
    fail on the server's side (as SQS reports them: in Failed, the message left in the queue), and those
    in ``redeliver`` are reported deleted but made visible again at once, the first time, as SQS's
    at-least-once delivery may hand out a message again."""

    def __init__(self, *, fail=(), redeliver=()):
        self._real = boto3.client("sqs", region_name="us-east-1")
        self.fail, self.redeliver = set(fail), set(redeliver)
        self.bodies: dict[str, str] = {}  # receipt handle -> body
        self.ids: dict[str, str] = {}  # body -> DLQ message id
        self.sent: list[str] = []  # bodies sent to the source, in order
        self.delete_attempts: dict[str, int] = {}

    def __getattr__(self, name):
        return getattr(self._real, name)

    def receive_message(self, **kwargs):
        response = self._real.receive_message(**kwargs)
        for message in response.get("Messages", []):
            self.bodies[message["ReceiptHandle"]] = message["Body"]
            self.ids[message["Body"]] = message["MessageId"]
        return response

    def send_message_batch(self, **kwargs):
        self.sent.extend(entry["MessageBody"] for entry in kwargs["Entries"])
        return self._real.send_message_batch(**kwargs)

    def delete_message_batch(self, QueueUrl, Entries):  # noqa: N803 (boto3's parameter names)
        real, successful, failed = [], [], []
        for entry in Entries:
            body = self.bodies[entry["ReceiptHandle"]]
            self.delete_attempts[body] = self.delete_attempts.get(body, 0) + 1
            if body in self.fail:
                failed.append(
                    {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "simulated"}
                )
            elif body in self.redeliver:
                self.redeliver.discard(body)
                self._real.change_message_visibility(
                    QueueUrl=QueueUrl, ReceiptHandle=entry["ReceiptHandle"], VisibilityTimeout=0
                )
                successful.append({"Id": entry["Id"]})
            else:
                real.append(entry)
        response = self._real.delete_message_batch(QueueUrl=QueueUrl, Entries=real) if real else {}
        return {
            "Successful": response.get("Successful", []) + successful,
            "Failed": response.get("Failed", []) + failed,
        }


@pytest.fixture
def flaky_sqs(monkeypatch):
    def install(**kwargs) -> FlakySqs:
        flaky = FlakySqs(**kwargs)
        real_client = RemediationContext.client
        monkeypatch.setattr(
            RemediationContext,
            "client",
            lambda self, service: flaky if service == "sqs" else real_client(self, service),
        )
        return flaky

    return install


def _held(sqs, url):
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_a_message_that_cannot_be_deleted_stops_the_redrive_and_is_reported(remediate, flaky_sqs):
    sqs, dlq, source = _dlq(130)
    flaky = flaky_sqs(fail={"m15"})
    run = remediate("sqs_dlq_depth_high", {"event": EVENT})
    result = run.records["execute"].done["result"]
    assert run.outcome == "FAILURE"
    assert flaky.delete_attempts["m15"] == 2  # a server-side failure is tried once more, then given up
    assert result["not_deleted"] == [flaky.ids["m15"]]
    assert "could not be deleted from the dead-letter queue" in run.audit.action
    assert flaky.ids["m15"] in run.audit.action
    # each message was sent once; "moved" counts only those also deleted from the DLQ
    assert len(flaky.sent) == len(set(flaky.sent)) == _depth(sqs, source) and "m15" in flaky.sent
    assert result["moved"] == len(flaky.sent) - 1 == 130 - _held(sqs, dlq)
    assert result["moved"] < 120  # it stopped after the batch holding m15 instead of draining the rest


def test_a_message_handed_out_again_is_deleted_not_sent_twice(remediate, flaky_sqs):
    sqs, dlq, source = _dlq(130)
    flaky = flaky_sqs(redeliver={"m15"})
    run = remediate("sqs_dlq_depth_high", {"event": EVENT})
    assert run.outcome == "SUCCESS", run.audit.action
    assert flaky.delete_attempts["m15"] == 2  # seen twice, sent once, deleted the second time too
    assert sorted(flaky.sent) == sorted(f"m{n}" for n in range(130))
    assert run.records["execute"].done["result"]["moved"] == 130
    assert _held(sqs, dlq) == 0 and _depth(sqs, source) == 130


class CountingSqs(FlakySqs):
    """Counts ReceiveMessage calls; with ``visible_count`` set, the drain's read of the count of visible
    messages says that many whatever the queue holds (as SQS's approximate count may, for a while after a
    drain)."""

    def __init__(self, *, visible_count=None):
        super().__init__()
        self.receives, self.visible_count = 0, visible_count

    def receive_message(self, **kwargs):
        self.receives += 1
        return super().receive_message(**kwargs)

    def get_queue_attributes(self, **kwargs):
        response = self._real.get_queue_attributes(**kwargs)
        if self.visible_count is not None and kwargs["AttributeNames"] == ["ApproximateNumberOfMessages"]:
            response["Attributes"]["ApproximateNumberOfMessages"] = str(self.visible_count)
        return response


@pytest.fixture
def counting_sqs(monkeypatch):
    def install(**kwargs) -> CountingSqs:
        counting = CountingSqs(**kwargs)
        real_client = RemediationContext.client

        def client(self, service):
            return counting if service == "sqs" else real_client(self, service)

        monkeypatch.setattr(RemediationContext, "client", client)
        return counting

    return install


def test_the_drain_ends_at_an_empty_receive_the_queue_count_confirms(remediate, counting_sqs):
    sqs, dlq, source = _dlq(130)
    counting = counting_sqs()
    run = remediate("sqs_dlq_depth_high", {"event": EVENT})
    assert run.outcome == "SUCCESS", run.audit.action
    assert counting.receives == 13 + 1  # 13 batches of 10, then one empty long poll, confirmed by the count
    assert _held(sqs, dlq) == 0 and _depth(sqs, source) == 130


def test_while_the_queue_count_still_reports_messages_the_drain_keeps_receiving(remediate, counting_sqs):
    sqs, dlq, source = _dlq(130)
    counting = counting_sqs(visible_count=7)
    run = remediate("sqs_dlq_depth_high", {"event": EVENT})
    assert counting.receives == 13 + 3  # three empty long polls in a row before it stops
    assert run.records["execute"].done["result"]["moved"] == 130
    assert _held(sqs, dlq) == 0 and _depth(sqs, source) == 130
