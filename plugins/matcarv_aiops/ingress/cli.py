"""``aiops route EVENT.json``: which remediation runs an event would start
(and, with --trigger, starts them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("route", help="show the remediation DAG runs an EventBridge event starts")
    parser.add_argument("event", help="the event as a JSON file ('-' reads stdin)")
    parser.add_argument(
        "--trigger",
        action="store_true",
        help="start the runs through the backend in AIOPS_TRIGGER_BACKEND (mwaa | local)",
    )
    parser.set_defaults(handler=run)


def run(args) -> int:
    from matcarv_aiops.catalogue import CatalogueError
    from matcarv_aiops.cli import UsageError
    from matcarv_aiops.ingress.routing import InvalidEvent, route

    try:
        raw = sys.stdin.buffer.read() if args.event == "-" else Path(args.event).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.event}: {exc.strerror}") from None
    try:
        routed = route(raw)
    except (InvalidEvent, CatalogueError) as exc:
        raise UsageError(str(exc)) from None
    outcome = routed.as_dict()
    if args.trigger and routed.matches:
        from matcarv_aiops.ingress.trigger_client import TriggerError, client_from_settings, start_runs

        try:
            results = start_runs(routed, client_from_settings())
        except ValueError as exc:  # a bad AIOPS_* setting
            raise UsageError(str(exc)) from None
        except TriggerError as exc:
            print(json.dumps(outcome))
            print(f"aiops route: trigger failed: {exc}", file=sys.stderr)
            return 1
        for match, result in zip(outcome["matches"], results, strict=True):
            match["status"] = result.status
    print(json.dumps(outcome))
    return 0
