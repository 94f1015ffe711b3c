"""``aiops catalogue``: what can be remediated, and how."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("catalogue", help="list the auto-remediation catalogue")
    parser.add_argument("--json", action="store_true", help="every field of every entry, as JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from matcarv_aiops.catalogue import CatalogueError, catalogue, catalogue_json
    from matcarv_aiops.cli import UsageError

    try:
        entries = catalogue()
    except CatalogueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(catalogue_json())
        return 0
    for entry in entries.values():
        print(
            json.dumps(
                {
                    "id": entry.id,
                    "dag_id": entry.dag_id,
                    "condition": entry.condition,
                    "action": entry.action,
                    "approval": entry.approval,
                    "reversible": entry.reversible,
                }
            )
        )
    return 0
