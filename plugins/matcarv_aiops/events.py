"""EventBridge events: the envelope, and reading a remediation's target out of an event.

The trigger Lambda imports this and nothing else of the core's models (``matcarv_aiops.models`` re-exports
``EventBridgeEvent`` and ``validation_problems``), so its cold start builds one pydantic model only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# What a target ARN must look like (models.Target validates the same).
ARN_PATTERN = r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:.+"
_ARN = re.compile(ARN_PATTERN)


def validation_problems(exc: ValidationError, root: str) -> str:
    """A pydantic ValidationError as one line: ``field.path: message; ...`` (``root`` for the whole)."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in exc.errors())


class EventBridgeEvent(BaseModel):
    """The EventBridge envelope. Unknown top-level keys are kept: the event is audited as received."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    version: str = "0"
    id: str = Field(min_length=1, max_length=256)
    detail_type: str = Field(alias="detail-type", min_length=1)
    source: str = Field(min_length=1)
    account: str = Field(pattern=r"^\d{12}$")
    time: datetime
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any]

    def as_event(self) -> dict[str, Any]:
        """The event as EventBridge delivers it (aliases, JSON types)."""
        return self.model_dump(mode="json", by_alias=True)


class TargetRule(Protocol):
    """Where an event names the target (the catalogue's ``TargetSpec``; the Lambda's route table rows)."""

    # Read-only properties: a frozen dataclass (route table rows) and a pydantic model both satisfy them.
    @property
    def paths(self) -> Iterable[str]: ...
    @property
    def arn(self) -> str: ...
    @property
    def when(self) -> dict[str, list[str]]: ...
    @property
    def account_path(self) -> str | None: ...


def values_at(node: Any, path: str) -> Iterator[Any]:
    """Every value at a dotted path; ``name[]`` fans out over a list."""
    yield from _walk(node, path.split("."))


def _walk(node: Any, parts: list[str]) -> Iterator[Any]:
    if not parts:
        yield node
        return
    head, rest = parts[0], parts[1:]
    fan_out = head.endswith("[]")
    key = head[:-2] if fan_out else head
    if not isinstance(node, dict) or key not in node:
        return
    child = node[key]
    if fan_out:
        for item in child if isinstance(child, list) else []:
            yield from _walk(item, rest)
    else:
        yield from _walk(child, rest)


def target_arn(rules: Iterable[TargetRule], event: dict[str, Any]) -> tuple[str, str] | None:
    """The target's ARN and account from the event alone (no AWS call): the first rule whose ``when`` holds
    and whose first path yields a value wins; None if the event names no target."""
    for rule in rules:
        if not all(any(v in allowed for v in values_at(event, path)) for path, allowed in rule.when.items()):
            continue
        account = event.get("account", "")
        if rule.account_path:
            account = next(values_at(event, rule.account_path), None) or account
        for path in rule.paths:
            value = next(values_at(event, path), None)
            if value in (None, "", [], {}):
                continue
            if isinstance(value, str) and value.startswith("arn:"):
                return value, account  # the event already gives the ARN (e.g. CloudTrail's name-or-ARN)
            return rule.arn.format(value=value, region=event.get("region", ""), account=account), account
    return None


def is_arn(text: str) -> bool:
    return bool(_ARN.match(text))
