"""The four invariants every fault case asserts, read from the stores themselves (never from task state):

1. no double action: no mutating AWS call on a target was made twice for one problem;
2. exactly one audit record per claimed execution (after the reconciler, where the case needs it);
3. no event lost: every distinct event sent to the front door started its run exactly once;
4. no unauthorised decision accepted: every decided approval was made by a member of the approver group
   who is not the requester, and never by the reserved name ``automated``.

``ActionLog`` records the AWS calls a case makes (in this process) so that (1) can be counted; the
other three read DynamoDB. ``FaultReport`` collects one row per case for the session note's table:
``FAULTS_REPORT=build/faults.md make test`` writes it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.client

from matcarv_aiops.aws import hub_client
from matcarv_aiops.settings import Settings

_READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "Query", "Scan", "BatchGet")
# The platform's own bookkeeping: state, audit, approvals, metrics, alerts, diagnostics. Not actions.
_BOOKKEEPING_SERVICES = {"dynamodb", "cloudwatch", "sns", "s3", "sts"}


@dataclass
class ActionLog:
    """Mutating AWS calls made in this process while ``record()`` is active: (service, operation,
    params). Bookkeeping calls (the platform's tables, metrics, alerts, diagnostics) are left out unless
    ``include`` names their service; an action on S3 or CloudWatch is counted by naming it there."""

    include: frozenset[str] = frozenset()
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @contextmanager
    def record(self) -> Iterator[ActionLog]:
        original = botocore.client.BaseClient._make_api_call
        log = self

        def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            mutating = not operation.startswith(_READ_PREFIXES)
            if mutating and (service not in _BOOKKEEPING_SERVICES or service in log.include):
                log.calls.append((service, operation, dict(params)))
            return original(client, operation, params)

        botocore.client.BaseClient._make_api_call = recording  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]

    def count(self, operation: str) -> int:
        return sum(1 for _, op, _ in self.calls if op == operation)

    def double_actions(self, operations: Iterable[str] | None = None) -> int:
        """How many calls repeat an earlier identical mutating call (same operation, same parameters)."""
        wanted = set(operations) if operations is not None else None
        seen = Counter(
            (op, repr(sorted(params.items())))
            for _, op, params in self.calls
            if wanted is None or op in wanted
        )
        return sum(n - 1 for n in seen.values() if n > 1)


def _scan(settings: Settings, table: str) -> list[dict[str, Any]]:
    ddb = hub_client("dynamodb", settings)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: next(iter(v.values())) for k, v in item.items()}


def audit_records(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every audit record, by execution id."""
    return {i["executionId"]["S"]: _plain(i) for i in _scan(settings, settings.platform.audit_table)}


def claimed_executions(settings: Settings) -> set[str]:
    """Execution ids claimed in the state table (collect_diagnostics' claim)."""
    return {
        i["pk"]["S"].removeprefix("execution#")
        for i in _scan(settings, settings.platform.state_table)
        if i["pk"]["S"].startswith("execution#")
    }


def approvals(settings: Settings) -> list[dict[str, Any]]:
    return [_plain(i) for i in _scan(settings, settings.platform.approvals_table)]


def executions_without_one_record(settings: Settings) -> int:
    """Claimed executions with no audit record (the table's key makes more than one impossible)."""
    return len(claimed_executions(settings) - set(audit_records(settings)))


def unauthorised_decisions(settings: Settings, approver_group: Iterable[str]) -> list[str]:
    """Decided requests whose decider(s) were not allowed: outside the group, the requester, or
    ``automated``. Each entry says which request and why."""
    group = set(approver_group)
    bad = []
    for record in approvals(settings):
        if record.get("status") not in ("APPROVED", "REJECTED"):
            continue
        deciders = [d.strip() for d in str(record.get("approver", "")).split(",") if d.strip()]
        requester = record.get("requestedBy")
        for decider in deciders or ["(none)"]:
            if decider == "automated" or decider not in group or decider == requester:
                bad.append(f"{record['executionId']}: decided by {decider} (requested by {requester})")
    return bad


@dataclass
class Invariants:
    double_actions: int
    executions_without_one_record: int
    events_lost: int
    unauthorised_decisions: int

    def assert_hold(self) -> None:
        assert (
            self.double_actions,
            self.executions_without_one_record,
            self.events_lost,
            self.unauthorised_decisions,
        ) == (0, 0, 0, 0), self


def check(
    settings: Settings,
    *,
    actions: ActionLog | None = None,
    approver_group: Iterable[str] = (),
    events_lost: int = 0,
) -> Invariants:
    """All four invariants for the stores as they stand now."""
    return Invariants(
        double_actions=actions.double_actions() if actions else 0,
        executions_without_one_record=executions_without_one_record(settings),
        events_lost=events_lost,
        unauthorised_decisions=len(unauthorised_decisions(settings, approver_group)),
    )


@dataclass
class FaultReport:
    """One row per fault case, written as a Markdown table at the end of the session when
    ``FAULTS_REPORT`` names a file."""

    rows: list[dict[str, str]] = field(default_factory=list)

    def add(self, case: str, injected: str, outcome: str, audit: str, invariants: Invariants) -> None:
        def exactly_one(n: int) -> str:
            return "exactly one" if n == 0 else f"{n} without one"

        self.rows.append(
            {
                "case": case,
                "injected": injected,
                "outcome": outcome,
                "audit": audit,
                "double": str(invariants.double_actions),
                "records": exactly_one(invariants.executions_without_one_record),
                "lost": str(invariants.events_lost),
                "unauthorised": str(invariants.unauthorised_decisions),
            }
        )

    def save_part(self) -> None:
        """This process's rows (one pytest-xdist worker's, or the only process's), beside the report."""
        target = os.environ.get("FAULTS_REPORT")
        if not target or not self.rows:
            return
        parts = Path(f"{target}.parts")
        parts.mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        (parts / f"{worker}.json").write_text(json.dumps(self.rows))

    @staticmethod
    def assemble() -> None:
        """Every process's rows as one Markdown table in ``FAULTS_REPORT``, once all have finished."""
        target = os.environ.get("FAULTS_REPORT")
        parts = Path(f"{target}.parts")
        if not target or not parts.is_dir():
            return
        rows = [row for part in sorted(parts.glob("*.json")) for row in json.loads(part.read_text())]
        columns = (
            "case",
            "injected",
            "outcome",
            "audit record",
            "double actions",
            "audit records",
            "events lost",
            "unauthorised decisions",
        )
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in sorted(rows, key=lambda r: r["case"]):
            cells = [row[k].replace("|", "\\|").replace("\n", " ") for k in row]
            lines.append("| " + " | ".join(cells) + " |")
        Path(target).write_text("\n".join(lines) + "\n")
        shutil.rmtree(parts)
