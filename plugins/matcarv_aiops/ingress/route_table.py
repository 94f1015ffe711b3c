"""What routing needs of the catalogue, as plain data: each entry's id, DAG, trigger pattern and target rules.

In the trigger Lambda's package the table is ``route_table.json``, compiled from the catalogue when the
package is built (``compile_route_table``), so a cold start reads JSON: no YAML, no catalogue schema, no
per-entry pydantic validation (the entries were validated when compiled). Where that file is absent (the
repository, MWAA) the table is built from the catalogue itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from matcarv_aiops.envelope import target_arn

COMPILED = Path(__file__).with_name("route_table.json")


@dataclass(frozen=True)
class TargetRule:
    paths: tuple[str, ...]
    arn: str
    when: dict[str, list[str]] = field(default_factory=dict)
    account_path: str | None = None


@dataclass(frozen=True)
class RouteEntry:
    id: str
    dag_id: str
    trigger: dict[str, Any]
    targets: tuple[TargetRule, ...]

    def target_arn(self, event: dict[str, Any]) -> tuple[str, str] | None:
        """The target's ARN and account named by the event, or None (as ``CatalogueEntry.resolve_target``)."""
        return target_arn(self.targets, event)


def as_rows(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """Catalogue entries (or route entries) as the JSON rows of a compiled table."""
    return [
        {
            "id": entry.id,
            "dag_id": entry.dag_id,
            "trigger": entry.trigger,
            "targets": [
                {
                    "paths": list(rule.paths),
                    "arn": rule.arn,
                    "when": dict(rule.when),
                    "account_path": rule.account_path,
                }
                for rule in entry.targets
            ],
        }
        for entry in entries
    ]


def from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, RouteEntry]:
    table = {}
    for row in rows:
        rules = tuple(
            TargetRule(
                paths=tuple(rule["paths"]),
                arn=rule["arn"],
                when=dict(rule.get("when") or {}),
                account_path=rule.get("account_path"),
            )
            for rule in row["targets"]
        )
        table[row["id"]] = RouteEntry(
            id=row["id"], dag_id=row["dag_id"], trigger=row["trigger"], targets=rules
        )
    return table


def as_route_entries(entries: Mapping[str, Any]) -> dict[str, RouteEntry]:
    """A mapping of catalogue entries (or route entries) as route entries."""
    if all(isinstance(entry, RouteEntry) for entry in entries.values()):
        return dict(entries)
    return from_rows(as_rows(entries.values()))


def compile_route_table(path: Path) -> Path:
    """Write the packaged catalogue's route table to ``path`` (the Lambda package's route_table.json)."""
    from matcarv_aiops.catalogue import catalogue

    # Key order kept: the first field of a pattern that fails is the one an ignored event is logged with.
    path.write_text(json.dumps(as_rows(catalogue().values()), separators=(",", ":")), encoding="utf-8")
    return path


@lru_cache(maxsize=1)
def route_table() -> dict[str, RouteEntry]:
    """The route table, once per process: compiled JSON where the package carries it, else the catalogue."""
    if COMPILED.is_file():
        return from_rows(json.loads(COMPILED.read_text(encoding="utf-8")))
    from matcarv_aiops.catalogue import catalogue

    return as_route_entries(catalogue())
