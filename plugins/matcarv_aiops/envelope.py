"""EventBridge events without pydantic: validating the envelope, and reading a target out of an event.

The trigger Lambda's cold start cannot afford pydantic (importing it and building one model costs more
than the whole budget), so it validates the envelope with pydantic-core alone: the same engine, run on
the core schema pydantic generates for ``events.EventBridgeEvent``, stored as data in
``envelope_schema.json``. The same events pass, the same errors name the same fields, and an event
serialises to the same JSON as ``EventBridgeEvent.as_event()``. ``python -m matcarv_aiops.events`` writes
the file from the model; tests/ingress fails when the two differ, and the Lambda package is not built
from a stale one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from pydantic_core import SchemaError, SchemaSerializer, SchemaValidator, ValidationError

SCHEMA_FILE = Path(__file__).with_name("envelope_schema.json")
# A core schema may hold Python callables; the envelope's holds only these default factories, stored by
# name (``events.envelope_schema`` refuses any other).
DEFAULT_FACTORIES: dict[str, type] = {"list": list, "dict": dict}

# What a target ARN must look like (models.Target validates the same).
ARN_PATTERN = r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:.+"
_ARN = re.compile(ARN_PATTERN)


def validation_problems(exc: ValidationError, root: str) -> str:
    """A pydantic ValidationError as one line: ``field.path: message; ...`` (``root`` for the whole)."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in exc.errors())


class Envelope:
    """A validated EventBridge envelope: ``EventBridgeEvent``'s fields as attributes, unknown top-level
    keys kept (the event is audited as received)."""

    # What pydantic-core sets on the instances it builds for a model schema.
    __slots__ = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    __pydantic_extra__: dict[str, Any] | None

    version: str
    id: str
    detail_type: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail: dict[str, Any]

    def as_event(self) -> dict[str, Any]:
        """The event as EventBridge delivers it (aliases, JSON types), as ``EventBridgeEvent.as_event``."""
        event: dict[str, Any] = _engine()[1].to_python(self, mode="json", by_alias=True)
        return event

    def __eq__(self, other: object) -> bool:  # as pydantic compares models: fields and extras
        return (
            type(other) is type(self)
            and self.__dict__ == other.__dict__
            and self.__pydantic_extra__ == getattr(other, "__pydantic_extra__", None)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like the pydantic model

    def __repr__(self) -> str:
        return f"Envelope(id={self.id!r}, source={self.source!r}, detail_type={self.detail_type!r})"


def load_schema(path: Path | None = None) -> dict[str, Any]:
    """The stored core schema (``SCHEMA_FILE`` by default), with its default factories restored and
    ``Envelope`` as the model class."""
    stored = json.loads((path or SCHEMA_FILE).read_text(encoding="utf-8"))
    schema: dict[str, Any] = _restore_factories(stored)
    schema["cls"] = Envelope
    return schema


def _restore_factories(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: DEFAULT_FACTORIES[value]
            if key == "default_factory" and isinstance(value, str)
            else _restore_factories(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_restore_factories(item) for item in node]
    return node


@cache
def _engine() -> tuple[SchemaValidator, SchemaSerializer]:
    """Built once per process, on first use, so a stale or broken schema file can still be rewritten."""
    try:
        schema = load_schema()
        # The model's config is passed to both, as pydantic does when it builds a model's validator.
        return SchemaValidator(schema, schema["config"]), SchemaSerializer(schema, schema["config"])
    except (OSError, ValueError, KeyError, TypeError, SchemaError) as exc:
        raise RuntimeError(
            f"{SCHEMA_FILE.name}: not a usable envelope schema ({type(exc).__name__}: {exc}); "
            "write it with `python -m matcarv_aiops.events`"
        ) from None


def validate_envelope(data: Mapping[str, Any]) -> Envelope:
    """The envelope of ``data`` (a parsed event), validated as ``EventBridgeEvent.model_validate`` would.
    Raises pydantic-core's ``ValidationError`` (pydantic's, too)."""
    envelope: Envelope = _engine()[0].validate_python(data)
    return envelope


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
