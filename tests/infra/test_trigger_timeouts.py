"""The InvokeRestApi client's timeouts and retries fit inside the trigger Lambda's own time."""

from __future__ import annotations

from typing import Any

import pytest

from aiops_infra.trigger_function import TIMEOUT_SECONDS
from matcarv_aiops.ingress.trigger_client import (
    MWAA_CONNECT_TIMEOUT,
    MWAA_READ_TIMEOUT,
    ApiResponse,
    MwaaTriggerClient,
    TriggerUnavailable,
)


def test_the_mwaa_client_times_out_in_3_s_connect_12_s_read_and_retries_nothing_itself():
    client = MwaaTriggerClient("matcarv-aiops", region="eu-west-1")
    config = client._client.meta.config
    assert (
        (config.connect_timeout, config.read_timeout) == (3, 12) == (MWAA_CONNECT_TIMEOUT, MWAA_READ_TIMEOUT)
    )
    assert config.retries["total_max_attempts"] == 1
    assert client.retry.attempt_timeout == MWAA_CONNECT_TIMEOUT + MWAA_READ_TIMEOUT


class _Hanging(MwaaTriggerClient):
    """Every request runs into the client's timeouts: the clock moves on by connect + read."""

    def __init__(self, **kwargs: Any) -> None:
        self.now, self.started = 0.0, []
        super().__init__(
            "matcarv-aiops",
            client=object(),
            clock=lambda: self.now,
            sleep=self._sleep_for,
            jitter=lambda: 1.0,
            **kwargs,
        )

    def _sleep_for(self, seconds: float) -> None:
        self.now += seconds

    def _post_dag_run(self, dag_id: str, body: dict[str, Any]) -> ApiResponse:
        self.started.append(self.now)
        self.now += MWAA_CONNECT_TIMEOUT + MWAA_READ_TIMEOUT
        return ApiResponse(0, "ReadTimeoutError")


def test_hung_requests_are_retried_only_while_a_whole_attempt_fits_in_the_lambda():
    client = _Hanging()
    deadline = TIMEOUT_SECONDS  # the handler's deadline: invocation start + the function's timeout
    with pytest.raises(TriggerUnavailable, match="out of time"):
        client.trigger("remediate_x", "ev_1", {}, deadline=deadline)
    assert len(client.started) >= 2, client.started  # one retry of a hung call fits
    assert client.now <= deadline - client.retry.safety_margin, (client.now, client.started)


def test_quick_failures_are_retried_many_times_within_the_lambda():
    class Throttled(_Hanging):
        def _post_dag_run(self, dag_id: str, body: dict[str, Any]) -> ApiResponse:
            self.started.append(self.now)
            self.now += 0.1
            return ApiResponse(429, "throttled")

    client = Throttled()
    with pytest.raises(TriggerUnavailable, match="out of time: 429"):
        client.trigger("remediate_x", "ev_1", {}, deadline=TIMEOUT_SECONDS)
    # Retries stop where a hung attempt could no longer finish before the deadline.
    assert client.started[-1] + MWAA_CONNECT_TIMEOUT + MWAA_READ_TIMEOUT <= TIMEOUT_SECONDS
    assert len(client.started) >= 5


def test_the_function_timeout_is_the_one_deployed(synth):
    _, function = synth.trigger_function()
    assert function["Properties"]["Timeout"] == TIMEOUT_SECONDS
