import boto3
import pytest

from matcarv_aiops.catalogue import get_entry
from matcarv_aiops.remediations.sqs_queue_depth_high import SqsQueueDepthHigh
from tests.events import alarm_event
from tests.remediations.iam_calls import declared_permissions_only  # noqa: F401 (a fixture)
from tests.remediations.lambda_fixtures import create_function, reserved, stub_account_settings

pytestmark = pytest.mark.usefixtures("declared_permissions_only")

REGION = "us-east-1"
EVENT = alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders"})
DEPTH = 25  # stands in for the catalogue's 10,000: moto takes minutes to hold that many messages


@pytest.fixture(autouse=True)
def small_depth(aws, monkeypatch):
    entry = get_entry("sqs_queue_depth_high")
    assert entry.metric_alarm.threshold == 10000
    catalogued = entry.trigger_conditions[0]
    entry.trigger_conditions[0] = catalogued.model_copy(update={"threshold": DEPTH})
    stub_account_settings(monkeypatch, quota=1000)
    yield
    entry.trigger_conditions[0] = catalogued


def _queue(name: str, messages: int, *, dead_letter_of: str | None = None):
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if dead_letter_of:
        sqs.create_queue(
            QueueName=dead_letter_of,
            Attributes={"RedrivePolicy": f'{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"3"}}'},
        )
    for start in range(0, messages, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(min(10, messages - start))
            ],
        )
    return arn


def _consumer(queue_arn: str, *, mapping_cap: int | None = None, reserved_cap: int | None = None) -> str:
    create_function("order-worker", reserved=reserved_cap)
    extra = {"ScalingConfig": {"MaximumConcurrency": mapping_cap}} if mapping_cap else {}
    return boto3.client("lambda", region_name=REGION).create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName="order-worker", BatchSize=10, **extra
    )["UUID"]


def _mapping_cap(uuid: str):
    mapping = boto3.client("lambda", region_name=REGION).get_event_source_mapping(UUID=uuid)
    return (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")


def test_raises_the_mappings_maximum_concurrency_and_the_dlq_entry_stands_aside(remediate):
    uuid = _consumer(_queue("orders", 30), mapping_cap=20, reserved_cap=100)
    # the alarm starts only this entry; were the DLQ entry started on it anyway, it would not act
    assert remediate("sqs_dlq_depth_high", {"event": EVENT}).outcome == "SKIPPED"
    run = remediate("sqs_queue_depth_high", {"event": EVENT})
    assert run.outcome == "SUCCESS", run.audit.action
    assert _mapping_cap(uuid) == 25 and reserved("order-worker") == 100


def test_raises_reserved_concurrency_when_that_binds(remediate):
    uuid = _consumer(_queue("orders", 30), reserved_cap=40)
    run = remediate("sqs_queue_depth_high", {"event": EVENT})
    assert run.outcome == "SUCCESS", run.audit.action
    assert reserved("order-worker") == 50 and _mapping_cap(uuid) is None


def test_failed_validation_restores_the_recorded_maximum_concurrency(remediate, monkeypatch):
    uuid = _consumer(_queue("orders", 30), mapping_cap=20)
    real_execute = SqsQueueDepthHigh.execute

    def partial(self, ctx, state):  # the mapping took less than planned
        plan = real_execute(self, ctx, state)
        return plan | {"planned": plan["planned"] + 5}

    monkeypatch.setattr(SqsQueueDepthHigh, "execute", partial)
    run = remediate("sqs_queue_depth_high", {"event": EVENT})
    assert run.outcome == "FAILURE" and "restored the maximum concurrency" in run.audit.action, (
        run.audit.action
    )
    assert _mapping_cap(uuid) == 20


def test_dead_letter_queue_is_skipped_and_left_to_the_dlq_entry(remediate):
    uuid = _consumer(_queue("orders", 130, dead_letter_of="orders-source"), mapping_cap=20)
    run = remediate("sqs_queue_depth_high", {"event": EVENT})
    assert run.outcome == "SKIPPED" and "a dead-letter queue" in run.audit.action, run.audit.action
    assert _mapping_cap(uuid) == 20
    # a dead-letter queue named without "-dlq": its alarm comes here (see the entry's trigger), and the
    # DLQ entry, started by hand on the same event, would redrive it
    assert remediate("sqs_dlq_depth_high", {"event": EVENT}).outcome == "SUCCESS"


def test_shallow_queue_is_skipped_and_nothing_changes(remediate):
    uuid = _consumer(_queue("orders", 10), mapping_cap=20)
    run = remediate("sqs_queue_depth_high", {"event": EVENT})
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action, run.audit.action
    assert _mapping_cap(uuid) == 20
