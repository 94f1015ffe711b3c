"""The trigger client's response policy, with the same tests for both backends.

MWAA: a real boto3 ``mwaa`` client with botocore's Stubber answering in the documented InvokeRestApi
shapes (moto has no MWAA). Local: a real HTTP server on 127.0.0.1 answering like Airflow's REST API v2.
"""

from __future__ import annotations

import logging

import boto3
import pytest
from botocore.stub import Stubber

from matcarv_aiops.ingress.trigger_client import (
    LocalTriggerClient,
    MwaaTriggerClient,
    RetryPolicy,
    TriggerRejected,
    TriggerUnavailable,
    client_from_settings,
)
from matcarv_aiops.settings import Settings
from tests.ingress.airflow_api import FakeAirflowApi

DAG_ID = "remediate_s3_public_access"
RUN_ID = "ev_0123456789abcdef"
CONF = {"event": {"id": "e-1", "source": "aws.s3"}}


class Clock:
    """A fake monotonic clock that sleeping advances."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class MwaaHarness:
    name = "mwaa"

    def __init__(self, **client_kwargs):
        self.boto = boto3.client("mwaa", region_name="us-east-1")
        self.stubber = Stubber(self.boto)
        self.stubber.activate()
        self.client = MwaaTriggerClient("aiops-prod", client=self.boto, **client_kwargs)

    def _expected(self, run_id: str = RUN_ID) -> dict:
        return {
            "Name": "aiops-prod",
            "Path": f"/dags/{DAG_ID}/dagRuns",
            "Method": "POST",
            "Body": {"dag_run_id": run_id, "logical_date": None, "conf": CONF},
        }

    def ok(self, run_id: str = RUN_ID) -> None:
        self.stubber.add_response(
            "invoke_rest_api",
            {
                "RestApiStatusCode": 200,
                "RestApiResponse": {"dag_id": DAG_ID, "dag_run_id": run_id, "state": "queued", "conf": CONF},
            },
            self._expected(run_id),
        )

    def status(self, status: int, body: dict, run_id: str = RUN_ID) -> None:
        # Airflow's answer passes through MWAA as RestApiClientException (4xx)
        # or RestApiServerException (5xx).
        code = "RestApiServerException" if status >= 500 else "RestApiClientException"
        self.stubber.add_client_error(
            "invoke_rest_api",
            service_error_code=code,
            service_message="Airflow error",
            http_status_code=400,
            expected_params=self._expected(run_id),
            modeled_fields={"RestApiStatusCode": status, "RestApiResponse": body},
        )

    def throttled(self) -> None:
        self.stubber.add_client_error(
            "invoke_rest_api",
            service_error_code="ThrottlingException",
            service_message="Rate exceeded",
            http_status_code=429,
            expected_params=self._expected(),
        )

    def access_denied(self) -> None:
        self.stubber.add_client_error(
            "invoke_rest_api",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform airflow:InvokeRestApi",
            http_status_code=403,
            expected_params=self._expected(),
        )

    def requests(self) -> int:
        return self.client.requests_sent

    def close(self) -> None:
        self.stubber.assert_no_pending_responses()
        self.stubber.deactivate()


class LocalHarness:
    name = "local"

    def __init__(self, **client_kwargs):
        self.api = FakeAirflowApi(password="s3cret").__enter__()
        self.client = LocalTriggerClient(self.api.url, "admin", "s3cret", **client_kwargs)

    def ok(self, run_id: str = RUN_ID) -> None:
        pass  # the server creates the run itself

    def status(self, status: int, body: dict, run_id: str = RUN_ID) -> None:
        self.api.script((status, body))

    def throttled(self) -> None:
        self.api.script((429, {"detail": "Too Many Requests"}))

    def access_denied(self) -> None:
        self.api.script((403, {"detail": "Forbidden"}))

    def requests(self) -> int:
        return self.api.counts["post"]

    def close(self) -> None:
        assert not self.api.scripted, "scripted answers left over"
        self.api.__exit__()


@pytest.fixture(params=["mwaa", "local"])
def backend(request):
    clock = Clock()
    harness_class = MwaaHarness if request.param == "mwaa" else LocalHarness

    def make(**overrides):
        kwargs = {
            "sleep": clock.sleep,
            "clock": clock,
            "jitter": lambda: 1.0,
            "retry": RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=5.0, safety_margin=1.0),
        }
        kwargs.update(overrides)
        harness = harness_class(**kwargs)
        harness.clock = clock
        made.append(harness)
        return harness

    made: list = []
    yield make
    for harness in made:
        harness.close()


def test_created(backend):
    h = backend()
    h.ok()
    result = h.client.trigger(DAG_ID, RUN_ID, CONF)
    assert (result.status, result.attempts) == ("created", 1)
    if h.name == "local":
        assert h.api.runs[(DAG_ID, RUN_ID)]["logical_date"] is None
        assert h.api.runs[(DAG_ID, RUN_ID)]["conf"] == CONF


def test_409_is_success_as_a_duplicate(backend):
    h = backend()
    h.status(409, {"detail": f"DAG Run with id {RUN_ID} already exists"})
    result = h.client.trigger(DAG_ID, RUN_ID, CONF)
    assert (result.status, result.attempts) == ("duplicate", 1)


def test_same_run_twice_hits_409_without_the_process_memory(backend):
    h = backend(remember=False)
    h.ok()
    h.status(409, {"detail": "already exists"})  # mwaa: the second answer; local: ignored, see below
    if h.name == "local":
        h.api.scripted.clear()  # the server answers 409 by itself, because the run exists
    assert h.client.trigger(DAG_ID, RUN_ID, CONF).status == "created"
    assert h.client.trigger(DAG_ID, RUN_ID, CONF).status == "duplicate"
    assert h.requests() == 2


def test_a_confirmed_run_costs_no_second_call(backend):
    h = backend()
    h.ok()
    first = h.client.trigger(DAG_ID, RUN_ID, CONF)
    again = h.client.trigger(DAG_ID, RUN_ID, CONF)
    assert (first.status, again.status, again.attempts) == ("created", "duplicate", 0)
    assert h.requests() == 1


def test_throttling_is_retried_with_exponential_backoff(backend):
    h = backend()
    h.throttled()
    h.throttled()
    h.ok()
    result = h.client.trigger(DAG_ID, RUN_ID, CONF)
    assert (result.status, result.attempts) == ("created", 3)
    assert h.clock.sleeps == [0.2, 0.4]  # jitter pinned to its maximum


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried(backend, status):
    h = backend()
    h.status(status, {"detail": "Internal Server Error"})
    h.ok()
    assert h.client.trigger(DAG_ID, RUN_ID, CONF).attempts == 2


def test_persistent_5xx_raises_after_the_attempt_limit(backend):
    h = backend()
    for _ in range(4):
        h.status(503, {"detail": "Service Unavailable"})
    with pytest.raises(TriggerUnavailable, match="after 4 attempts: 503") as raised:
        h.client.trigger(DAG_ID, RUN_ID, CONF)
    assert raised.value.status == 503 and h.requests() == 4
    assert h.clock.sleeps == [0.2, 0.4, 0.8]


def test_with_a_deadline_retries_go_on_until_the_deadline(backend):
    # max_attempts bounds retries only without a deadline: the Lambda uses all the time it has.
    h = backend(retry=RetryPolicy(max_attempts=2, base_delay=1.0, max_delay=8.0, safety_margin=1.0))
    for _ in range(3):
        h.throttled()
    deadline = h.clock() + 5.0  # 1 s + 2 s of backoff fit; the next 4 s would cross deadline - margin
    with pytest.raises(TriggerUnavailable, match="out of time: 429"):
        h.client.trigger(DAG_ID, RUN_ID, CONF, deadline=deadline)
    assert h.requests() == 3 and h.clock.sleeps == [1.0, 2.0]
    assert h.clock() < deadline


def test_400_is_logged_with_its_body_and_raised_without_retry(backend, caplog):
    h = backend()
    body = {"detail": "Invalid value for logical_date", "status": 400}
    h.status(400, body)
    with (
        caplog.at_level(logging.ERROR, logger="matcarv_aiops.ingress"),
        pytest.raises(TriggerRejected, match="answered 400") as raised,
    ):
        h.client.trigger(DAG_ID, RUN_ID, CONF)
    assert raised.value.body == body and h.requests() == 1 and h.clock.sleeps == []
    assert "Invalid value for logical_date" in caplog.text


def test_access_denied_is_raised_without_retry(backend):
    h = backend()
    h.access_denied()
    with pytest.raises(TriggerRejected, match="403") as raised:
        h.client.trigger(DAG_ID, RUN_ID, CONF)
    assert raised.value.status == 403 and h.requests() == 1


def test_a_failed_trigger_is_not_remembered(backend):
    h = backend()
    h.status(400, {"detail": "bad"})
    h.ok()
    with pytest.raises(TriggerRejected):
        h.client.trigger(DAG_ID, RUN_ID, CONF)
    assert h.client.trigger(DAG_ID, RUN_ID, CONF).status == "created"


# ----- backend-specific -----


def test_mwaa_refuses_a_path_over_64_characters():
    client = MwaaTriggerClient("env", client=boto3.client("mwaa", region_name="us-east-1"))
    dag_id = "remediate_" + "x" * 41
    with pytest.raises(TriggerRejected, match="over MWAA's 64"):
        client.trigger(dag_id, RUN_ID, CONF)


def test_mwaa_internal_server_exception_is_retried():
    clock = Clock()
    h = MwaaHarness(sleep=clock.sleep, clock=clock)
    h.stubber.add_client_error(
        "invoke_rest_api",
        service_error_code="InternalServerException",
        service_message="An internal error has occurred",
        http_status_code=500,
    )
    h.ok()
    assert h.client.trigger(DAG_ID, RUN_ID, CONF).attempts == 2
    h.close()


def test_local_fetches_a_new_token_when_it_expires():
    with FakeAirflowApi(password="pw") as api:
        client = LocalTriggerClient(api.url, "admin", "pw")
        client.trigger(DAG_ID, "ev_1", CONF)
        api.expire_tokens()
        assert client.trigger(DAG_ID, "ev_2", CONF).status == "created"
        assert api.counts["token"] == 2 and api.counts["created"] == 2


def test_local_wrong_password_is_rejected():
    with FakeAirflowApi(password="right") as api:
        client = LocalTriggerClient(api.url, "admin", "wrong")
        with pytest.raises(TriggerRejected, match="401.*Invalid credentials"):
            client.trigger(DAG_ID, RUN_ID, CONF)
        assert api.counts["post"] == 0


def test_local_unknown_dag_is_rejected():
    with FakeAirflowApi(dag_ids={"remediate_other"}) as api:
        client = LocalTriggerClient(api.url, "admin", "secret")
        with pytest.raises(TriggerRejected, match="404"):
            client.trigger(DAG_ID, RUN_ID, CONF)


def test_local_unreachable_server_is_retried_then_raised():
    with FakeAirflowApi() as api:
        url = api.url  # closed on exit: nothing listens there any more
    clock = Clock()
    client = LocalTriggerClient(
        url, "admin", "secret", timeout=2, sleep=clock.sleep, clock=clock, retry=RetryPolicy(max_attempts=3)
    )
    with pytest.raises(TriggerUnavailable, match="no response"):
        client.trigger(DAG_ID, RUN_ID, CONF)
    assert len(clock.sleeps) == 2


def test_backend_is_chosen_by_configuration():
    local = client_from_settings(
        Settings.from_env(
            {
                "AIOPS_TRIGGER_BACKEND": "local",
                "AIOPS_AIRFLOW_BASE_URL": "http://127.0.0.1:9/",
                "AIOPS_AIRFLOW_API_PASSWORD": "pw",
            }
        )
    )
    assert isinstance(local, LocalTriggerClient) and local.base_url == "http://127.0.0.1:9"
    mwaa = client_from_settings(Settings.from_env({"AIOPS_MWAA_ENVIRONMENT_NAME": "aiops-prod"}))
    assert isinstance(mwaa, MwaaTriggerClient) and mwaa.environment_name == "aiops-prod"
    with pytest.raises(ValueError, match="AIOPS_MWAA_ENVIRONMENT_NAME"):
        client_from_settings(Settings.from_env({}))
    with pytest.raises(ValueError, match="must be 'mwaa' or 'local'"):
        client_from_settings(Settings.from_env({"AIOPS_TRIGGER_BACKEND": "lambda"}))


def test_mwaa_passes_airflows_own_429_through_and_it_is_retried():
    clock = Clock()
    h = MwaaHarness(sleep=clock.sleep, clock=clock, jitter=lambda: 1.0)
    h.status(429, {"detail": "Too Many Requests"})
    h.ok()
    result = h.client.trigger(DAG_ID, RUN_ID, CONF)
    assert (result.status, result.attempts, clock.sleeps) == ("created", 2, [0.2])
    h.close()
