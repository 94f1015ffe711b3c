"""``aiops ssm check|permissions|run``: lint runbooks against the six rules, list the IAM actions they
call, or run one locally."""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("ssm", help="SSM Automation runbooks: check or run locally")
    commands = parser.add_subparsers(dest="ssm_command", required=True)
    check = commands.add_parser("check", help="check documents against the schema and the six runbook rules")
    check.add_argument("files", nargs="*", help="documents to check (default: every file in ssm/)")
    check.set_defaults(handler=run_check)
    permissions = commands.add_parser("permissions", help="the exact IAM actions each document calls")
    permissions.add_argument("files", nargs="*", help="documents (default: every file in ssm/)")
    permissions.set_defaults(handler=run_permissions)
    run = commands.add_parser(
        "run",
        help="run a document locally against AWS_ENDPOINT_URL (moto), with the "
        "local emulator (aiops_local, not shipped)",
    )
    run.add_argument("document", help="path of the document, or its name in ssm/")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter; StringList values as JSON or comma-separated (repeatable)",
    )
    run.add_argument("--poll-seconds", type=float, default=None, help="poll interval of waiting steps")
    run.add_argument("--retry-seconds", type=float, default=None, help="delay between attempts of a step")
    run.set_defaults(handler=run_run)


def run_check(args) -> int:
    from matcarv_aiops.ssm.checker import check_files

    files = _files(args)
    problems = check_files(files)
    for problem in problems:
        print(
            json.dumps(
                {"file": problem.file, "step": problem.step, "rule": problem.rule, "message": str(problem)}
            )
        )
    if not problems:
        print(json.dumps({"checked": len(files), "problems": 0}))
    return 1 if problems else 0


def _files(args) -> list[str]:
    from matcarv_aiops.cli import UsageError
    from matcarv_aiops.ssm.service import documents_dir

    files = args.files or sorted(str(path) for path in documents_dir().glob("*.yaml"))
    if not files:
        raise UsageError(f"no documents in {documents_dir()}")
    missing = [name for name in files if not Path(name).is_file()]
    if missing:
        raise UsageError(f"no such document file: {', '.join(missing)}")
    return files


def run_permissions(args) -> int:
    from matcarv_aiops.cli import UsageError
    from matcarv_aiops.ssm.document import DocumentError, load
    from matcarv_aiops.ssm.permissions import UnreadableCallError, document_permissions

    for name in _files(args):
        try:
            document = load(name)
            print(json.dumps({"document": document.name, "actions": document_permissions(document)}))
        except (DocumentError, UnreadableCallError) as exc:
            raise UsageError(f"{name}: {exc}") from None
    return 0


def _parse_params(pairs: list[str]) -> dict[str, str]:
    from matcarv_aiops.cli import UsageError

    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param {pair!r} must be NAME=VALUE")
        if name in params:
            raise UsageError(f"--param {name} is given twice")
        params[name] = value
    return params


def run_run(args) -> int:
    from matcarv_aiops.cli import UsageError
    from matcarv_aiops.settings import get_settings
    from matcarv_aiops.ssm.document import DocumentError
    from matcarv_aiops.ssm.service import EmulatorUnavailable, document_path, emulator

    settings = get_settings()
    params = _parse_params(args.param)
    try:
        local = emulator()  # the local emulator: installed locally, never shipped
    except EmulatorUnavailable as exc:
        raise UsageError(str(exc)) from None
    runner = local.LocalAutomationRunner(
        poll_interval=settings.ssm.ssm_poll_seconds if args.poll_seconds is None else args.poll_seconds,
        retry_delay=settings.ssm.ssm_retry_seconds if args.retry_seconds is None else args.retry_seconds,
        region=settings.platform.region,
    )
    cancel = threading.Event()
    # Ctrl-C / SIGTERM cancel the execution the way StopAutomationExecution does: onCancel handlers run.
    previous = {sig: signal.signal(sig, lambda *_: cancel.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        execution = runner.run(document_path(args.document), params, cancel=cancel)
    except (DocumentError, local.ParameterError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(
        json.dumps(
            {"AutomationExecution": execution},
            indent=2,
            default=lambda value: value.isoformat() if isinstance(value, datetime) else str(value),
        )
    )
    sys.stdout.flush()
    return 0 if execution["AutomationExecutionStatus"] == "Success" else 1
