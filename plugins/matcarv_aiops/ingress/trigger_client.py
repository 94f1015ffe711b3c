"""Start a DAG run through Airflow's REST API: one client interface, two backends.

- ``MwaaTriggerClient``: Amazon MWAA's ``InvokeRestApi`` (Path ``/dags/<dag_id>/dagRuns``, POST).
- ``LocalTriggerClient``: the REST API v2 of ``airflow standalone``, with a JWT from ``/auth/token``.

Both share one response policy (``TriggerClient.trigger``):
- 200/201: the run was created. 409: it already exists, which is the duplicate-event case: success.
- 429 (MWAA allows about 10 requests a second), 5xx and no response at all: retried with exponential
  backoff and full jitter, within the caller's deadline (the Lambda's remaining time).
- Whatever still fails raises ``TriggerUnavailable``, so EventBridge retries the event and then sends it
  to the dead-letter queue. Any other 4xx is a bug or a configuration error: logged with the response
  body and raised as ``TriggerRejected``, without retrying.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("matcarv_aiops.ingress")

MWAA_PATH_LIMIT = 64  # InvokeRestApi's Path is at most 64 characters
# InvokeRestApi: MWAA ends a call to Airflow after 10 s itself, so a 12 s read timeout still sees its answer
# (a RestApiServerException, retried); 3 s to connect to the regional endpoint.
MWAA_CONNECT_TIMEOUT = 3.0
MWAA_READ_TIMEOUT = 12.0
THROTTLING_ERROR_CODES = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}


class TriggerError(RuntimeError):
    def __init__(self, message: str, *, dag_id: str, dag_run_id: str, status: int, body: Any = None):
        super().__init__(message)
        self.dag_id, self.dag_run_id, self.status, self.body = dag_id, dag_run_id, status, body


class TriggerRejected(TriggerError):
    """A 4xx other than 409 (or a request that cannot be sent): retrying will not help."""


class TriggerUnavailable(TriggerError):
    """Throttled, 5xx or unreachable until the deadline or the attempt limit: the caller must retry later."""


@dataclass(frozen=True)
class ApiResponse:
    status: int  # 0: no response (connection refused, timeout)
    body: Any = None


@dataclass(frozen=True)
class RetryPolicy:
    # Without a deadline (the CLI), give up after this many requests; with one (the Lambda), keep trying
    # until the deadline, since every second the Lambda has left is a chance to get through.
    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 5.0
    # Stop retrying this long before the deadline, so the Lambda can still log and raise cleanly.
    safety_margin: float = 1.0
    # The longest one request can take (its client's connect plus read timeout): a retry starts only if it
    # can finish before deadline - safety_margin, so a hung request never outlives the Lambda.
    attempt_timeout: float = 0.0


@dataclass(frozen=True)
class TriggerResult:
    dag_id: str
    dag_run_id: str
    status: str  # "created" | "duplicate" (409, or already confirmed by this process)
    attempts: int  # requests sent for this trigger, retries included

    def as_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "dag_run_id": self.dag_run_id,
            "status": self.status,
            "attempts": self.attempts,
        }


class _ConfirmedRuns:
    """Runs this process already knows exist (created or 409), so a duplicate costs no API call.

    Concurrent triggers of the same run wait for the first one (single flight); a failure is not
    remembered, so the next attempt calls the API again.
    """

    def __init__(self, max_size: int = 10_000):
        self._max_size = max_size
        self._confirmed: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._in_flight: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def once(self, key: tuple[str, str], call: Callable[[], TriggerResult]) -> TriggerResult | None:
        """Run ``call`` unless ``key`` is confirmed already (then return None)."""
        with self._lock:
            if key in self._confirmed:
                return None
            key_lock = self._in_flight.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._confirmed:
                    return None
            result = call()
            with self._lock:
                self._confirmed[key] = None
                while len(self._confirmed) > self._max_size:
                    self._confirmed.popitem(last=False)
                self._in_flight.pop(key, None)
            return result


class TriggerClient(ABC):
    backend: str

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        remember: bool = True,
    ):
        self.retry = retry or RetryPolicy()
        self._sleep, self._clock, self._jitter = sleep, clock, jitter
        self._confirmed = _ConfirmedRuns() if remember else None
        self.requests_sent = 0  # every request, retries included (read by the benchmark)

    @abstractmethod
    def _post_dag_run(self, dag_id: str, body: dict[str, Any]) -> ApiResponse:
        """POST /dags/<dag_id>/dagRuns; transport failures come back as status 0, never raise."""

    def trigger(
        self,
        dag_id: str,
        dag_run_id: str,
        conf: dict[str, Any],
        *,
        logical_date: str | None = None,
        deadline: float | None = None,
    ) -> TriggerResult:
        """Start ``dag_run_id`` of ``dag_id`` once. ``deadline`` is a value of ``clock`` (monotonic)."""
        call = functools.partial(self._trigger, dag_id, dag_run_id, conf, logical_date, deadline)
        if self._confirmed is None:
            return call()
        result = self._confirmed.once((dag_id, dag_run_id), call)
        if result is None:
            log.info(
                json.dumps(
                    {
                        "trigger": "duplicate",
                        "dag_id": dag_id,
                        "dag_run_id": dag_run_id,
                        "reason": "already confirmed by this process",
                    }
                )
            )
            return TriggerResult(dag_id, dag_run_id, "duplicate", attempts=0)
        return result

    def _trigger(
        self,
        dag_id: str,
        dag_run_id: str,
        conf: dict[str, Any],
        logical_date: str | None,
        deadline: float | None,
    ) -> TriggerResult:
        # Airflow 3 requires the logical_date key; null means "no data interval", which suits an event.
        body = {"dag_run_id": dag_run_id, "logical_date": logical_date, "conf": conf}
        attempt = 0
        while True:
            attempt += 1
            self.requests_sent += 1
            response = self._post_dag_run(dag_id, body)
            status = response.status
            if status in (200, 201):
                return TriggerResult(dag_id, dag_run_id, "created", attempt)
            if status == 409:
                return TriggerResult(dag_id, dag_run_id, "duplicate", attempt)
            detail = _short(response.body)
            if not (status == 0 or status == 429 or status >= 500):
                log.error(
                    json.dumps(
                        {
                            "trigger": "rejected",
                            "backend": self.backend,
                            "dag_id": dag_id,
                            "dag_run_id": dag_run_id,
                            "status": status,
                            "body": response.body,
                        },
                        default=str,
                    )
                )
                raise TriggerRejected(
                    f"{self.backend}: POST /dags/{dag_id}/dagRuns answered {status}: {detail}",
                    dag_id=dag_id,
                    dag_run_id=dag_run_id,
                    status=status,
                    body=response.body,
                )
            delay = self._jitter() * min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
            out_of_time = deadline is not None and (
                self._clock() + delay + self.retry.attempt_timeout > deadline - self.retry.safety_margin
            )
            if out_of_time or (deadline is None and attempt >= self.retry.max_attempts):
                why = "out of time" if out_of_time else f"{attempt} attempts"
                raise TriggerUnavailable(
                    f"{self.backend}: POST /dags/{dag_id}/dagRuns still failing after {why}: "
                    f"{status or 'no response'}: {detail}",
                    dag_id=dag_id,
                    dag_run_id=dag_run_id,
                    status=status,
                    body=response.body,
                )
            log.warning(
                json.dumps(
                    {
                        "trigger": "retry",
                        "backend": self.backend,
                        "dag_id": dag_id,
                        "dag_run_id": dag_run_id,
                        "status": status,
                        "attempt": attempt,
                        "delay_s": round(delay, 3),
                    }
                )
            )
            self._sleep(delay)


def _short(body: Any, limit: int = 300) -> str:
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


class MwaaTriggerClient(TriggerClient):
    """Amazon MWAA: ``mwaa.invoke_rest_api`` signs the request with the caller's IAM role."""

    backend = "mwaa"

    def __init__(
        self, environment_name: str, *, client: Any = None, region: str | None = None, **kwargs: Any
    ):
        kwargs.setdefault("retry", RetryPolicy(attempt_timeout=MWAA_CONNECT_TIMEOUT + MWAA_READ_TIMEOUT))
        super().__init__(**kwargs)
        if not environment_name:
            raise ValueError("MWAA environment name is empty (set AIOPS_MWAA_ENVIRONMENT_NAME)")
        self.environment_name = environment_name
        if client is None:
            import boto3  # lazily: the Lambda pays for boto3 only when it triggers something
            from botocore.config import Config

            # One attempt per call: the retry policy above owns retries, within the Lambda's deadline.
            config = Config(
                retries={"total_max_attempts": 1},
                connect_timeout=MWAA_CONNECT_TIMEOUT,
                read_timeout=MWAA_READ_TIMEOUT,
            )
            client = boto3.client("mwaa", region_name=region, config=config)
        self._client = client

    def _post_dag_run(self, dag_id: str, body: dict[str, Any]) -> ApiResponse:
        from botocore.exceptions import BotoCoreError, ClientError

        path = f"/dags/{dag_id}/dagRuns"
        if len(path) > MWAA_PATH_LIMIT:
            raise TriggerRejected(
                f"mwaa: path {path!r} is {len(path)} characters, over MWAA's {MWAA_PATH_LIMIT}",
                dag_id=dag_id,
                dag_run_id=body["dag_run_id"],
                status=0,
            )
        try:
            answer = self._client.invoke_rest_api(
                Name=self.environment_name, Path=path, Method="POST", Body=body
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            http_status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("RestApiClientException", "RestApiServerException"):
                # Airflow answered; MWAA passes its status and body through.
                return ApiResponse(
                    int(exc.response.get("RestApiStatusCode") or http_status),
                    exc.response.get("RestApiResponse", error.get("Message")),
                )
            if code in THROTTLING_ERROR_CODES:
                return ApiResponse(429, {"error": code, "message": error.get("Message")})
            return ApiResponse(http_status or 500, {"error": code, "message": error.get("Message")})
        except BotoCoreError as exc:  # endpoint unreachable, timeouts
            return ApiResponse(0, f"{type(exc).__name__}: {exc}")
        return ApiResponse(int(answer.get("RestApiStatusCode", 200)), answer.get("RestApiResponse"))


class LocalTriggerClient(TriggerClient):
    """``airflow standalone``'s REST API v2; the JWT is fetched once and again when it expires (401)."""

    backend = "local"

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 10.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._timeout = timeout
        self._token: str | None = None
        self._token_lock = threading.Lock()

    def _post_dag_run(self, dag_id: str, body: dict[str, Any]) -> ApiResponse:
        import urllib.parse

        path = f"/api/v2/dags/{urllib.parse.quote(dag_id, safe='')}/dagRuns"
        for fresh_token in (False, True):
            token = self._bearer(refresh=fresh_token)
            if isinstance(token, ApiResponse):
                return token
            response = self._request("POST", path, body, token)
            if response.status != 401:
                return response
        return response

    def _bearer(self, *, refresh: bool) -> str | ApiResponse:
        with self._token_lock:
            if refresh or self._token is None:
                response = self._request("POST", "/auth/token", self._credentials, None)
                if response.status not in (200, 201):
                    return response  # a 401 here is a configuration error; 5xx/0 is retried
                token = response.body.get("access_token") if isinstance(response.body, dict) else None
                if not token:
                    return ApiResponse(502, {"error": "no access_token in /auth/token answer"})
                self._token = token
            return self._token

    def _request(self, method: str, path: str, body: Any, token: str | None) -> ApiResponse:
        import urllib.error  # here, not at the top: the MWAA Lambda never needs urllib's HTTP stack
        import urllib.request

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            self.base_url + path, data=json.dumps(body).encode(), headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:
                return ApiResponse(answer.status, _json_or_text(answer.read()))
        except urllib.error.HTTPError as exc:
            return ApiResponse(exc.code, _json_or_text(exc.read()))
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
            return ApiResponse(0, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def client_from_settings(settings: Any = None, **kwargs: Any) -> TriggerClient:
    """The backend chosen by AIOPS_TRIGGER_BACKEND (mwaa | local)."""
    if settings is None:
        from matcarv_aiops.settings import get_settings

        settings = get_settings()
    backend = settings.ingress.trigger_backend
    if backend == "mwaa":
        return MwaaTriggerClient(
            settings.ingress.mwaa_environment_name, region=settings.platform.region, **kwargs
        )
    if backend == "local":
        return LocalTriggerClient(
            settings.airflow.airflow_base_url,
            settings.ingress.airflow_api_username,
            settings.ingress.airflow_api_password,
            **kwargs,
        )
    raise ValueError(f"setting AIOPS_TRIGGER_BACKEND={backend!r} must be 'mwaa' or 'local'")


def start_runs(routed: Any, client: TriggerClient, *, deadline: float | None = None) -> list[TriggerResult]:
    """Trigger every match of a route. Tries them all, then raises the first failure, if any.

    A retry of the whole event is safe: the runs already started answer 409.
    """
    if not routed.matches:
        return []
    results: list[TriggerResult] = []
    failures: list[TriggerError] = []
    conf = routed.conf()
    for match in routed.matches:
        try:
            results.append(client.trigger(match.dag_id, match.dag_run_id, conf, deadline=deadline))
        except TriggerError as exc:
            failures.append(exc)
    if failures:
        if len(failures) > 1:
            log.error(json.dumps({"event_id": routed.event.id, "failed": [str(f) for f in failures]}))
        raise failures[0]
    return results
