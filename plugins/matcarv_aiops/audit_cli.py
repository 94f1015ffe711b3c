"""``aiops audit``: the audit trail, filtered by remediation, outcome, target and time, a page at a time,
read through the table's indexes (by target, by day), never a scan. ``aiops exempt add|list|remove``:
exemptions with owner, reason and expiry, each change audited (``matcarv_aiops.exemptions``)."""

from __future__ import annotations

import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

_AGO = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[mhdw])$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 60 * 24, "w": 60 * 24 * 7}
DEFAULT_WINDOW_DAYS = 7  # without --target or --since, the last week: a day-index query per day
_ACTION_WIDTH = 80


def register(subparsers) -> None:
    audit = subparsers.add_parser("audit", help="list audit records (by target or time, through the indexes)")
    audit.add_argument(
        "--remediation",
        action="append",
        default=[],
        metavar="ID",
        help="catalogue id, its DAG id, or 'aiops exempt' (repeatable)",
    )
    audit.add_argument("--outcome", type=str.upper, choices=("SUCCESS", "FAILURE", "SKIPPED"))
    audit.add_argument("--target", metavar="ARN", help="one resource's history (the by-target index)")
    audit.add_argument(
        "--since",
        help=f"ISO 8601 date/time or an age (30m, 12h, 7d, 2w); default: {DEFAULT_WINDOW_DAYS}d, or all of a "
        "--target's history",
    )
    audit.add_argument("--until", help="ISO 8601 date/time or an age; default: now")
    audit.add_argument("--limit", type=int, default=50, help="records per page (default 50)")
    audit.add_argument("--next-token", help="the token the previous page printed, for the next page")
    audit.add_argument("--json", action="store_true", help="print JSON instead of a table")
    audit.set_defaults(handler=run_audit)

    exempt = subparsers.add_parser("exempt", help="add, list or remove exemptions (each change audited)")
    actions = exempt.add_subparsers(dest="exempt_command", required=True)
    add = actions.add_parser("add", help="exempt a resource from automated remediation until a date")
    add.add_argument("target", metavar="TARGET_ARN")
    add.add_argument("--owner", required=True, help="who answers for the exemption")
    add.add_argument("--reason", required=True, help="why the resource must not be remediated")
    add.add_argument(
        "--expires", required=True, help="an ISO 8601 date/time (UTC) or a duration (12h, 7d, 2w)"
    )
    _operator_argument(add)
    listing = actions.add_parser("list", help="the exemptions in force, soonest expiry first")
    listing.add_argument("--all", action="store_true", help="include expired ones not yet deleted")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    remove = actions.add_parser("remove", help="end a resource's exemption now")
    remove.add_argument("target", metavar="TARGET_ARN")
    remove.add_argument("--reason", required=True, help="why the exemption ends")
    _operator_argument(remove)
    for parser, handler in ((add, run_exempt_add), (listing, run_exempt_list), (remove, run_exempt_remove)):
        parser.set_defaults(handler=handler)


def _operator_argument(parser) -> None:
    parser.add_argument(
        "--operator",
        help="who is making the change, for the audit record; default: the AWS identity of the credentials "
        "in use (sts:GetCallerIdentity), else the OS user",
    )


def parse_moment(text: str, flag: str, *, now: datetime) -> datetime:
    """An ISO 8601 date or time (UTC unless it names an offset) or an age before ``now``."""
    from matcarv_aiops.cli import UsageError

    age = _AGO.match(text.strip())
    if age:
        return now - timedelta(minutes=float(age["amount"]) * _UNIT_MINUTES[age["unit"]])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is neither an ISO 8601 date/time nor an age (30m, 12h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _runbooks(names: list[str]) -> tuple[str, ...]:
    from matcarv_aiops.catalogue import catalogue
    from matcarv_aiops.cli import UsageError
    from matcarv_aiops.exemptions import EXEMPT_RUNBOOK

    entries = catalogue()
    known = {EXEMPT_RUNBOOK: EXEMPT_RUNBOOK} | {e.id: e.dag_id for e in entries.values()}
    known |= {e.dag_id: e.dag_id for e in entries.values()}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UsageError(
            f"--remediation {unknown[0]!r} is not a catalogue id, a remediation DAG id or {EXEMPT_RUNBOOK!r}"
        )
    return tuple(dict.fromkeys(known[name] for name in names))


def run_audit(args) -> int:
    from matcarv_aiops.audit import AuditQuery, BadAuditQuery, query_audit
    from matcarv_aiops.cli import UsageError
    from matcarv_aiops.models import Outcome
    from matcarv_aiops.settings import get_settings

    now = datetime.now(UTC)
    if args.since:
        since = parse_moment(args.since, "--since", now=now)
    elif args.target:
        since = datetime(1970, 1, 1, tzinfo=UTC)
    else:
        since = now - timedelta(days=DEFAULT_WINDOW_DAYS)
    until = parse_moment(args.until, "--until", now=now) if args.until else now
    try:
        query = AuditQuery(
            since=since,
            until=until,
            target=args.target,
            runbooks=_runbooks(args.remediation),
            outcome=Outcome(args.outcome) if args.outcome else None,
        )
        page = query_audit(get_settings(), query, limit=args.limit, start=args.next_token)
    except BadAuditQuery as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(
            json.dumps(
                {
                    "records": [r.to_item() for r in page.records],
                    "nextToken": page.next_token,
                    "itemsRead": page.items_read,
                }
            )
        )
        return 0
    rows = [
        [r.timestamp, r.outcome.value, r.runbook, r.target_resource, r.operator, _short(r.action)]
        for r in page.records
    ]
    _print_table(["TIMESTAMP", "OUTCOME", "RUNBOOK", "TARGET", "OPERATOR", "ACTION"], rows)
    if page.next_token:
        print(f"more: add --next-token {page.next_token}")
    return 0


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _ACTION_WIDTH else line[: _ACTION_WIDTH - 1] + "…"


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(row[n]) for row in [header, *rows]) for n in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _operator(args, settings) -> tuple[str, str]:
    """(operator, requested_by): ``--operator`` or the AWS identity; requested_by is always the AWS
    identity in use (the OS user when AWS cannot say), so a record names whose credentials wrote it."""
    from botocore.exceptions import BotoCoreError, ClientError

    from matcarv_aiops.exemptions import caller_identity

    try:
        identity = caller_identity(settings)
    except (ClientError, BotoCoreError):
        identity = f"os:{getpass.getuser()}"
    return (args.operator or identity, identity)


def _change(args, change) -> int:
    from matcarv_aiops.cli import UsageError
    from matcarv_aiops.exemptions import BadExemption
    from matcarv_aiops.settings import get_settings

    settings = get_settings()
    operator, requested_by = _operator(args, settings)
    try:
        result = change(settings, operator=operator, requested_by=requested_by)
    except BadExemption as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(result.to_json()))
    return 0


def run_exempt_add(args) -> int:
    from matcarv_aiops import exemptions

    return _change(
        args,
        lambda settings, **who: exemptions.add(
            settings, args.target, owner=args.owner, reason=args.reason, expires=args.expires, **who
        ),
    )


def run_exempt_remove(args) -> int:
    from matcarv_aiops import exemptions

    return _change(
        args, lambda settings, **who: exemptions.remove(settings, args.target, reason=args.reason, **who)
    )


def run_exempt_list(args) -> int:
    from matcarv_aiops.safety import SafetyStore
    from matcarv_aiops.settings import get_settings

    found = SafetyStore(get_settings()).exemptions(include_expired=args.all)
    if args.json:
        print(json.dumps([e.to_json() for e in found]))
        return 0
    rows: list[list[Any]] = [
        [e.to_json()["expiresAt"], e.target_arn, e.owner, _short(e.reason)] for e in found
    ]
    _print_table(["EXPIRES", "TARGET", "OWNER", "REASON"], rows)
    return 0
