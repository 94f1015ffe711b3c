"""A real HTTP server on 127.0.0.1 that answers like Airflow 3's REST API v2 for triggering runs.

It implements what the trigger client uses, with Airflow's status codes: ``POST /auth/token`` (201 with
``access_token``; 401 for bad credentials), ``POST /api/v2/dags/<dag_id>/dagRuns`` (401 without a valid
token, 404 for an unknown DAG, 422 for a body without ``dag_run_id``/``logical_date``/``conf``, 409 for
a run id that exists, 200 with the run). It can throttle (429 above ``rate_per_second``, a token bucket
like MWAA's) and replay scripted answers, and it counts everything, for tests and the benchmark.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_DAG_RUNS = re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns$")


class FakeAirflowApi:
    def __init__(
        self,
        *,
        dag_ids: set[str] | None = None,
        username: str = "admin",
        password: str = "secret",
        rate_per_second: float | None = None,
    ):
        self.dag_ids = dag_ids  # None: every dag id exists
        self.username, self.password = username, password
        self.rate_per_second = rate_per_second
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.scripted: deque[tuple[int, Any]] = deque()  # answers to the next dagRuns POSTs, in order
        self.counts = {"token": 0, "post": 0, "created": 0, "duplicate": 0, "throttled": 0, "scripted": 0}
        self._lock = threading.Lock()
        self._bucket = rate_per_second or 0.0
        self._refilled = time.monotonic()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeAirflowApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *answers: tuple[int, Any]) -> None:
        self.scripted.extend(answers)

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def _take_token_from_bucket(self) -> bool:
        if not self.rate_per_second:
            return True
        now = time.monotonic()
        self._bucket = min(self.rate_per_second, self._bucket + (now - self._refilled) * self.rate_per_second)
        self._refilled = now
        if self._bucket >= 1:
            self._bucket -= 1
            return True
        return False

    def _answer(self, method: str, path: str, headers: Any, raw: bytes) -> tuple[int, Any]:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"detail": "body is not JSON"}
        if method == "POST" and path == "/auth/token":
            with self._lock:
                self.counts["token"] += 1
                if not isinstance(body, dict) or (body.get("username"), body.get("password")) != (
                    self.username,
                    self.password,
                ):
                    return 401, {"detail": "Invalid credentials"}
                token = secrets.token_hex(16)
                self.tokens.add(token)
            return 201, {"access_token": token}
        match = _DAG_RUNS.match(path)
        if method != "POST" or not match:
            return 404, {"detail": "Not Found"}
        dag_id = match["dag_id"]
        with self._lock:
            self.counts["post"] += 1
            if self.scripted:
                self.counts["scripted"] += 1
                return self.scripted.popleft()
            if headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
                return 401, {"detail": "Not authenticated"}
            if not self._take_token_from_bucket():
                self.counts["throttled"] += 1
                return 429, {"detail": "Too Many Requests"}
            if self.dag_ids is not None and dag_id not in self.dag_ids:
                return 404, {"detail": f"The Dag with ID: `{dag_id}` was not found"}
            missing = [
                key
                for key in ("dag_run_id", "logical_date", "conf")
                if not isinstance(body, dict) or key not in body
            ]
            if missing or not isinstance(body.get("conf"), dict):
                return 422, {
                    "detail": [
                        {"type": "missing", "loc": ["body", key], "msg": "Field required"}
                        for key in missing or ["conf"]
                    ]
                }
            key = (dag_id, body["dag_run_id"])
            if key in self.runs:
                self.counts["duplicate"] += 1
                return 409, {"detail": f"DAG Run with id {body['dag_run_id']} already exists"}
            run = {
                "dag_id": dag_id,
                "dag_run_id": body["dag_run_id"],
                "logical_date": body["logical_date"],
                "conf": body["conf"],
                "state": "queued",
                "run_type": "manual",
            }
            self.runs[key] = run
            self.counts["created"] += 1
            return 200, run

    def _handler_class(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = api._answer("POST", self.path, self.headers, raw)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
