"""A real HTTP server on 127.0.0.1 standing in for Slack's incoming webhook, and the Airflow connection
(type slackwebhook, from an ``AIRFLOW_CONN_<ID>`` variable) that points the provider's hook at it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer


@contextmanager
def slack_webhook(monkeypatch, conn_id: str, *, status: int = 200) -> Iterator[list[dict]]:
    """Yields the posts received ({"path", "body"}); answers each with ``status``."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(
                {"path": self.path, "body": json.loads(self.rfile.read(int(self.headers["Content-Length"])))}
            )
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"invalid_token")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "slackwebhook", "password": url})
    )
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
