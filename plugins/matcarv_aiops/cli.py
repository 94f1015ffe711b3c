"""``aiops``: the operator's command line.

Every subcommand prints JSON or CSV that scripts can read (the listings, ``audit`` and ``exempt list``, a
table unless given ``--json``), and on bad input exits 2 with one line on stderr. Subcommands live
beside the code they drive; each module here exposes ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add subcommands; imported only to build the parser, so keep their top level light.
COMMAND_MODULES = (
    "matcarv_aiops.catalogue.cli",
    "matcarv_aiops.anomaly.cli",
    "matcarv_aiops.ssm.cli",
    "matcarv_aiops.ingress.cli",
    "matcarv_aiops.audit_cli",
)


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiops", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UsageError as exc:
        print(f"aiops {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
