"""``aiops route EVENT.json``: which remediation runs an event would start (and, with --trigger, starts
them); ``aiops redrive``: replay the events the front door kept, with the same run ids."""

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
    redrive = subparsers.add_parser(
        "redrive",
        help="replay the kept events (the trigger's failure queue, the rules' DLQ) with the same run ids",
    )
    redrive.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="URL",
        help="an SQS queue URL to replay (repeatable; default: AIOPS_REDRIVE_QUEUE_URLS)",
    )
    redrive.add_argument(
        "--max-messages", type=int, default=None, help="stop after reading this many messages"
    )
    redrive.set_defaults(handler=run_redrive)


def run(args) -> int:
    from matcarv_aiops.catalogue import CatalogueError
    from matcarv_aiops.cli import UsageError
    from matcarv_aiops.ingress.routing import AccountScope, InvalidEvent, route

    try:
        raw = sys.stdin.buffer.read() if args.event == "-" else Path(args.event).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.event}: {exc.strerror}") from None
    try:
        accounts = AccountScope.from_settings()
    except ValueError as exc:  # a bad AIOPS_* setting
        raise UsageError(str(exc)) from None
    try:
        routed = route(raw, accounts=accounts)
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


def run_redrive(args) -> int:
    """Prints the pass's report as JSON; exits 1 if anything was kept or the API is still unavailable."""
    from matcarv_aiops.cli import UsageError
    from matcarv_aiops.ingress.redrive import redrive
    from matcarv_aiops.ingress.routing import AccountScope
    from matcarv_aiops.ingress.trigger_client import client_from_settings
    from matcarv_aiops.settings import get_settings

    try:
        settings = get_settings()
        client = client_from_settings(settings)
    except ValueError as exc:  # a bad AIOPS_* setting
        raise UsageError(str(exc)) from None
    queues = args.queues or list(settings.ingress.redrive_queue_urls)
    if not queues:
        raise UsageError("no queue to replay: pass --queue URL or set AIOPS_REDRIVE_QUEUE_URLS")
    if args.max_messages is not None and args.max_messages < 1:
        raise UsageError(f"--max-messages {args.max_messages}: must be at least 1")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        report = redrive(
            queues, client, accounts=AccountScope.from_settings(settings), max_messages=args.max_messages
        )
    except (BotoCoreError, ClientError) as exc:  # the queue itself: missing, denied, unreachable
        print(f"aiops redrive: cannot read the queue: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict()))
    for kept in report.kept:
        print(f"aiops redrive: kept {kept['message_id']}: {kept['reason']}", file=sys.stderr)
    if report.unavailable:
        print(f"aiops redrive: stopped: {report.unavailable}", file=sys.stderr)
    return 1 if report.kept or report.unavailable else 0
