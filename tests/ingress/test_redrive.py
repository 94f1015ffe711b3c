"""The redrive: kept events (Lambda on-failure records, EventBridge dead letters) replayed with the same run
ids, by hand (``aiops redrive``) and by the Lambda's scheduled pass; what cannot be replayed is kept."""

from __future__ import annotations

import json

import boto3
import pytest

from matcarv_aiops.cli import main
from matcarv_aiops.ingress import handler as lambda_module
from matcarv_aiops.ingress.redrive import REDRIVE_REQUEST, event_of, redrive
from matcarv_aiops.ingress.routing import InvalidEvent, route
from matcarv_aiops.ingress.trigger_client import LocalTriggerClient, RetryPolicy
from matcarv_aiops.settings import reload_settings
from tests.ingress import samples
from tests.ingress.airflow_api import FakeAirflowApi

REGION = "us-east-1"


def invocation_record(event: object, error: str = "TriggerUnavailable") -> str:
    """What Lambda sends to an on-failure destination after the last retry (AWS Lambda developer guide,
    "Capturing records of Lambda asynchronous invocations")."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-11-30T16:00:00.000Z",
            "requestContext": {
                "requestId": "c0a3b5f2-0000-4000-8000-000000000001",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:trigger:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": "mwaa: still failing", "errorType": error},
        }
    )


@pytest.fixture
def sqs():
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        yield client


@pytest.fixture
def queue(sqs):
    return sqs.create_queue(QueueName="failed-events")["QueueUrl"]


@pytest.fixture
def airflow():
    with FakeAirflowApi(password="pw") as api:
        yield api


def _client(api: FakeAirflowApi, **kwargs) -> LocalTriggerClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=2, base_delay=0.0))
    return LocalTriggerClient(api.url, "admin", "pw", **kwargs)


def _depth(sqs, queue: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _expected_runs(*events: dict) -> set[tuple[str, str]]:
    return {(m.dag_id, m.dag_run_id) for event in events for m in route(event).matches}


def test_both_kinds_of_kept_message_are_replayed_with_the_events_own_run_ids(sqs, queue, airflow):
    status_check = samples.load("cloudwatch_alarm_ec2_status_check.json")
    ssh = samples.load("cloudtrail_ec2_authorize_ssh_world.json")
    sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(status_check))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(ssh))  # a rule target's dead letter
    report = redrive([queue], _client(airflow), sqs=sqs)
    assert (report.read, report.replayed, report.runs_created, report.kept) == (2, 2, 2, [])
    assert set(airflow.runs) == _expected_runs(status_check, ssh)
    assert _depth(sqs, queue) == 0


def test_a_run_already_started_counts_as_started_and_the_message_goes(sqs, queue, airflow):
    event = samples.load("cloudwatch_alarm_ec2_status_check.json")
    _client(airflow).trigger(*next(iter(_expected_runs(event))), {"event": event})
    sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(event))
    sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(event))  # delivered twice
    report = redrive([queue], _client(airflow), sqs=sqs)
    assert (report.replayed, report.runs_created, report.runs_already_started) == (2, 0, 2)
    assert airflow.counts["created"] == 1 and _depth(sqs, queue) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "message: not JSON (JSONDecodeError)"),
        (invocation_record("text"), "message: requestPayload must be an event, got str"),
        (invocation_record({"id": "x"}), "invalid event: "),
        (json.dumps({**samples.load("cloudwatch_alarm_ok.json")}), "starts nothing now: nothing to start"),
    ],
    ids=["not-json", "payload-not-an-event", "not-an-envelope", "starts-nothing"],
)
def test_a_message_that_cannot_be_replayed_is_kept_with_the_reason(sqs, queue, airflow, body, reason):
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    report = redrive([queue], _client(airflow), sqs=sqs)
    assert report.replayed == 0 and airflow.counts["post"] == 0
    [kept] = report.kept
    assert reason in kept["reason"]
    assert _depth(sqs, queue) == 1  # kept, never deleted


def test_a_trigger_the_api_refuses_is_kept_and_the_pass_goes_on(sqs, queue):
    refused = samples.load("cloudwatch_alarm_ec2_status_check.json")
    fine = samples.load("cloudtrail_ec2_authorize_ssh_world.json")
    [(fine_dag, _run)] = _expected_runs(fine)
    with FakeAirflowApi(password="pw", dag_ids={fine_dag}) as api:
        sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(refused))
        sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(fine))
        report = redrive([queue], _client(api), sqs=sqs)
    assert report.replayed == 1 and set(api.runs) == _expected_runs(fine)
    [kept] = report.kept
    assert "answered 404" in kept["reason"] and _depth(sqs, queue) == 1


def test_while_the_api_is_unavailable_the_pass_stops_and_every_message_stays_visible(sqs, queue, airflow):
    events = [
        samples.load("cloudwatch_alarm_ec2_status_check.json"),
        samples.load("cloudtrail_stop_logging.json"),
    ]
    for event in events:
        sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(event))
    airflow.script(*[(503, {"detail": "down"})] * 2)
    report = redrive([queue], _client(airflow), sqs=sqs)
    assert report.replayed == 0 and "503" in report.unavailable and airflow.counts["post"] == 2
    # Given back: the next pass, once the API answers, replays both at once.
    report = redrive([queue], _client(airflow), sqs=sqs)
    assert (report.replayed, report.unavailable) == (2, None)
    assert set(airflow.runs) == _expected_runs(*events) and _depth(sqs, queue) == 0


def test_the_record_of_a_failed_redrive_pass_is_dropped_with_the_reason(sqs, queue, airflow):
    assert event_of(invocation_record(REDRIVE_REQUEST)) is None
    sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(REDRIVE_REQUEST))
    report = redrive([queue], _client(airflow), sqs=sqs)
    [dropped] = report.dropped
    assert "failed redrive pass" in dropped["reason"] and _depth(sqs, queue) == 0


def test_event_of_refuses_a_body_that_is_not_an_object():
    with pytest.raises(InvalidEvent, match="must be a JSON object, got list"):
        event_of("[1]")


@pytest.fixture
def configured(monkeypatch, sqs, queue, airflow):
    """AIOPS_* settings for the local backend and the queue, as the Lambda and the CLI read them."""
    for name, value in {
        "AIOPS_TRIGGER_BACKEND": "local",
        "AIOPS_AIRFLOW_BASE_URL": airflow.url,
        "AIOPS_AIRFLOW_API_USERNAME": "admin",
        "AIOPS_AIRFLOW_API_PASSWORD": "pw",
        "AIOPS_REDRIVE_QUEUE_URLS": queue,
        "AIOPS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    reload_settings()
    monkeypatch.setattr(lambda_module, "_client", None)
    yield
    monkeypatch.undo()
    reload_settings()


def test_the_lambdas_scheduled_pass_replays_the_configured_queues(configured, sqs, queue, airflow):
    event = samples.load("cloudwatch_alarm_ec2_status_check.json")
    sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(event))
    outcome = lambda_module.handler(dict(REDRIVE_REQUEST), None)
    assert outcome["redrive"]["replayed"] == 1 and set(airflow.runs) == _expected_runs(event)


def test_a_scheduled_pass_that_fails_reports_and_does_not_raise(configured, monkeypatch):
    monkeypatch.setenv("AIOPS_REDRIVE_QUEUE_URLS", "https://sqs.us-east-1.amazonaws.com/123456789012/none")
    reload_settings()
    outcome = lambda_module.handler(dict(REDRIVE_REQUEST), None)
    assert outcome["redrive"] == "failed" and "NonExistentQueue" in outcome["error"]


def test_aiops_redrive_reports_counts_and_exits_1_while_something_is_kept(
    configured, sqs, queue, airflow, capsys
):
    event = samples.load("cloudwatch_alarm_ec2_status_check.json")
    sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(event))
    sqs.send_message(QueueUrl=queue, MessageBody="garbage")
    assert main(["redrive"]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert (report["read"], report["replayed"], report["runs_created"], len(report["kept"])) == (2, 1, 1, 1)
    assert "aiops redrive: kept" in err and "not JSON" in err
    assert set(airflow.runs) == _expected_runs(event)


def test_aiops_redrive_on_an_empty_queue_exits_0(configured, capsys):
    assert main(["redrive", "--max-messages", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["read"] == 0


def test_aiops_redrive_without_a_queue_is_a_usage_error(configured, monkeypatch, capsys):
    monkeypatch.delenv("AIOPS_REDRIVE_QUEUE_URLS")
    reload_settings()
    assert main(["redrive"]) == 2
    assert capsys.readouterr().err.strip() == (
        "aiops redrive: no queue to replay: pass --queue URL or set AIOPS_REDRIVE_QUEUE_URLS"
    )


def test_aiops_redrive_of_a_missing_queue_says_so(configured, capsys):
    assert main(["redrive", "--queue", "https://sqs.us-east-1.amazonaws.com/123456789012/none"]) == 1
    assert "aiops redrive: cannot read the queue:" in capsys.readouterr().err


def test_an_unexpected_error_keeps_that_message_and_the_pass_goes_on(sqs, queue, airflow, monkeypatch):
    broken = samples.load("cloudwatch_alarm_ec2_status_check.json")
    fine = samples.load("cloudtrail_ec2_authorize_ssh_world.json")
    client = _client(airflow)
    real_trigger = client.trigger

    def trigger(dag_id, dag_run_id, conf, **kwargs):
        if conf["event"]["id"] == broken["id"]:
            raise KeyError("a bug")
        return real_trigger(dag_id, dag_run_id, conf, **kwargs)

    monkeypatch.setattr(client, "trigger", trigger)
    sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(broken))
    sqs.send_message(QueueUrl=queue, MessageBody=invocation_record(fine))
    report = redrive([queue], client, sqs=sqs)
    assert report.replayed == 1 and set(airflow.runs) == _expected_runs(fine)
    [kept] = report.kept
    assert "cannot trigger: KeyError" in kept["reason"] and _depth(sqs, queue) == 1
