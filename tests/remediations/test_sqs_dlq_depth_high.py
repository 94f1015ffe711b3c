import boto3

from tests.events import alarm_event


def _dlq(depth: int, *, tags=None):
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="orders-dlq", tags=tags or {})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(QueueName="orders", Attributes={
        "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}'})["QueueUrl"]
    for start in range(0, depth, 10):
        sqs.send_message_batch(QueueUrl=dlq, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"}
                                                      for i in range(min(10, depth - start))])
    return sqs, dlq, source


def _depth(sqs, url):
    return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])


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
