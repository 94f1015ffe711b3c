"""Faults at the front door: MWAA answering 5xx or throttling for an outage longer than everything the
trigger Lambda and Lambda's own retries can wait. Every distinct event must start its run exactly once
after recovery, none lost: the failed invocations are kept in the on-failure queue, and the redrive (the
Lambda's scheduled pass, or ``aiops redrive`` by hand) replays them with the same run ids.

Lambda's side is emulated as documented ("How Lambda handles errors and retries with asynchronous
invocation"): the first attempt, a retry a minute later, another two minutes after that, then the
invocation record to the on-failure destination. Time is simulated: the trigger client's sleeps and the
handler's clock advance it, so a 45-minute outage takes a second. The queue is moto's SQS.
"""

from __future__ import annotations

import json
import types
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from matcarv_aiops.cli import main
from matcarv_aiops.ingress import handler as lambda_module
from matcarv_aiops.ingress.redrive import REDRIVE_REQUEST
from matcarv_aiops.ingress.routing import route
from matcarv_aiops.ingress.trigger_client import LocalTriggerClient, MwaaTriggerClient
from matcarv_aiops.settings import reload_settings
from tests.faults.invariants import check
from tests.ingress import samples
from tests.ingress.airflow_api import FakeAirflowApi

LAMBDA_TIMEOUT_MS = 45_000  # aiops_infra.trigger_function.TIMEOUT_SECONDS
LAMBDA_RETRY_WAITS = (60.0, 120.0)  # Lambda's two retries of a failed asynchronous invocation
REDRIVE_EVERY = 300.0  # aiops_infra.trigger_function.REDRIVE_SCHEDULE
OUTAGE = 45 * 60.0  # an MWAA maintenance window / environment update
SAMPLES = (
    "cloudwatch_alarm_ec2_status_check.json",
    "cloudtrail_ec2_authorize_ssh_world.json",
    "cloudtrail_stop_logging.json",
    "cloudtrail_s3_delete_public_access_block.json",
    "guardduty_finding_credential_exfiltration.json",
)


class SimulatedTime:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class OutageMwaa:
    """``mwaa.invoke_rest_api`` as MWAA answers it: during the outage every call fails the chosen way
    (Airflow's 503 passed through as RestApiServerException, or MWAA's own ThrottlingException); after
    it, a run is created once and a repeated run id is answered 409, as Airflow does."""

    def __init__(self, clock: SimulatedTime, *, failing: str, until: float) -> None:
        self.clock, self.failing, self.until = clock, failing, until
        self.created: Counter[tuple[str, str]] = Counter()
        self.calls = Counter[str]()

    def invoke_rest_api(self, *, Name: str, Path: str, Method: str, Body: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        dag_id = Path.removeprefix("/dags/").removesuffix("/dagRuns")
        key = (dag_id, Body["dag_run_id"])
        if self.clock.monotonic() < self.until:
            self.calls["failed"] += 1
            if self.failing == "throttling":
                raise ClientError(
                    {
                        "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                        "ResponseMetadata": {"HTTPStatusCode": 429},
                    },
                    "InvokeRestApi",
                )
            raise ClientError(
                {
                    "Error": {"Code": "RestApiServerException", "Message": "Airflow error"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                    "RestApiStatusCode": 503,
                    "RestApiResponse": {"detail": "Service Unavailable"},
                },
                "InvokeRestApi",
            )
        if key in self.created:
            self.calls["duplicate"] += 1
            raise ClientError(
                {
                    "Error": {"Code": "RestApiClientException", "Message": "Airflow error"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                    "RestApiStatusCode": 409,
                    "RestApiResponse": {"detail": f"DAG Run with id {key[1]} already exists"},
                },
                "InvokeRestApi",
            )
        self.created[key] += 1
        self.calls["created"] += 1
        return {"RestApiStatusCode": 200, "RestApiResponse": {"dag_id": dag_id, "dag_run_id": key[1]}}


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def invoke_asynchronously(event: dict[str, Any], clock: SimulatedTime, sqs: Any, queue_url: str) -> str:
    """Lambda's asynchronous invocation: an attempt, two retries, then the on-failure destination."""
    error: Exception | None = None
    waits = (0.0, *LAMBDA_RETRY_WAITS)
    for wait in waits:
        clock.sleep(wait)
        try:
            lambda_module.handler(event, Context(LAMBDA_TIMEOUT_MS))
            return "started"
        except Exception as exc:  # noqa: BLE001 - a function error, as Lambda sees it
            error = exc
    assert error is not None
    record = {
        "version": "1.0",
        "timestamp": "2026-11-30T16:00:00.000Z",
        "requestContext": {
            "requestId": f"invocation-{event['id']}",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:trigger:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": len(waits),
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
    }
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
    return "kept"


def _events() -> list[dict[str, Any]]:
    events = [samples.load(name) for name in SAMPLES]
    assert all(route(event).matches for event in events), "every sample must start a run"
    return [*events, events[0]]  # EventBridge delivers at least once: the first event comes twice


def _expected(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(m.dag_id, m.dag_run_id) for event in events for m in route(event).matches}


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.fixture
def front_door(aws, monkeypatch):
    """The kept-events queue (moto), the settings the Lambda reads, and simulated time in the handler."""
    sqs = boto3.client("sqs", region_name=aws.platform.region)
    queue_url = sqs.create_queue(QueueName="aiops-failed-events")["QueueUrl"]
    monkeypatch.setenv("AIOPS_REDRIVE_QUEUE_URLS", queue_url)
    monkeypatch.setenv("AIOPS_REGION", aws.platform.region)
    reload_settings()
    clock = SimulatedTime()
    monkeypatch.setattr(lambda_module, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    yield sqs, queue_url, clock
    monkeypatch.undo()
    reload_settings()


@pytest.mark.parametrize(
    ("failing", "case", "injected"),
    [
        ("5xx", "MWAA 5xx for an outage", "InvokeRestApi answers 503 (RestApiServerException) for 45 min"),
        (
            "throttling",
            "MWAA throttling for an outage",
            "InvokeRestApi throttled (ThrottlingException) for 45 min",
        ),
    ],
)
def test_an_outage_longer_than_lambdas_retries_loses_nothing_and_starts_each_run_once(
    front_door, aws, monkeypatch, fault_report, failing, case, injected
):
    sqs, queue_url, clock = front_door
    mwaa = OutageMwaa(clock, failing=failing, until=clock.monotonic() + OUTAGE)
    monkeypatch.setattr(
        lambda_module,
        "_client",
        MwaaTriggerClient("aiops-prod", client=mwaa, sleep=clock.sleep, clock=clock.monotonic),
    )
    events = _events()
    expected = _expected(events)

    delivered = [invoke_asynchronously(event, clock, sqs, queue_url) for event in events]
    assert delivered == ["kept"] * len(events)  # the outage outlasted every attempt
    assert clock.monotonic() < mwaa.until and mwaa.calls["failed"] > 3 * len(events)
    assert _depth(sqs, queue_url) == len(events)

    passes = []
    while clock.monotonic() < mwaa.until + 2 * REDRIVE_EVERY:
        clock.sleep(REDRIVE_EVERY)
        passes.append(lambda_module.handler(dict(REDRIVE_REQUEST), Context(LAMBDA_TIMEOUT_MS))["redrive"])
    during = [p for p in passes if p["unavailable"]]
    assert during and all(p["replayed"] == 0 for p in during)  # passes inside the outage replay nothing
    first_after = next(p for p in passes if not p["unavailable"])
    assert first_after["replayed"] == len(events)  # the first pass once MWAA answers replays them all

    lost = len(expected - set(mwaa.created))
    assert set(mwaa.created) == expected and set(mwaa.created.values()) == {1}
    assert sum(p["replayed"] for p in passes) == len(events) and _depth(sqs, queue_url) == 0
    invariants = check(aws, events_lost=lost)
    invariants.assert_hold()
    fault_report.add(
        case,
        injected,
        f"{len(events)} deliveries ({len(expected)} distinct runs) kept after 3 attempts each; "
        f"{len(during)} redrive passes during the outage replayed none; the first after it started each "
        "run once (the duplicate delivery answered 409)",
        "none during the outage (no run started); each started run audits itself",
        invariants,
    )


def test_aiops_redrive_by_hand_after_an_outage(front_door, aws, monkeypatch, fault_report, capsys):
    sqs, queue_url, clock = front_door
    with FakeAirflowApi(password="pw") as api:
        for name, value in {
            "AIOPS_TRIGGER_BACKEND": "local",
            "AIOPS_AIRFLOW_BASE_URL": api.url,
            "AIOPS_AIRFLOW_API_USERNAME": "admin",
            "AIOPS_AIRFLOW_API_PASSWORD": "pw",
        }.items():
            monkeypatch.setenv(name, value)
        reload_settings()
        monkeypatch.setattr(
            lambda_module,
            "_client",
            LocalTriggerClient(api.url, "admin", "pw", sleep=clock.sleep, clock=clock.monotonic),
        )
        events = _events()
        expected = _expected(events)
        # The outage: every dagRuns POST answers 503 until the environment is back.
        api.script(*[(503, {"detail": "Service Unavailable"})] * 100_000)
        delivered = [invoke_asynchronously(event, clock, sqs, queue_url) for event in events]
        assert delivered == ["kept"] * len(events) and api.counts["created"] == 0
        # A pass by hand while it is still down keeps everything and says why.
        assert main(["redrive"]) == 1
        during = json.loads(capsys.readouterr().out)
        assert during["replayed"] == 0 and "503" in during["unavailable"]
        api.scripted.clear()  # recovered
        assert main(["redrive"]) == 0
        after = json.loads(capsys.readouterr().out)
        created = Counter(api.runs)  # one entry per run id the backend created
    assert after["replayed"] == len(events) and after["runs_created"] == len(expected)
    assert after["runs_already_started"] == len(events) - len(expected)  # the duplicate delivery
    assert set(created) == expected and api.counts["created"] == len(expected)
    assert _depth(sqs, queue_url) == 0
    invariants = check(aws, events_lost=len(expected - set(created)))
    invariants.assert_hold()
    fault_report.add(
        "aiops redrive by hand after an outage",
        "Airflow API answers 503 to every dagRuns POST; `aiops redrive` run during and after the outage",
        f"during: 0 replayed, exit 1 ({during['unavailable'][:40]}...); after: {after['replayed']} "
        f"messages replayed, {after['runs_created']} runs created, "
        f"{after['runs_already_started']} already started (409), exit 0",
        "none during the outage (no run started); each started run audits itself",
        invariants,
    )
