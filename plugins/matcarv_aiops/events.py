"""The EventBridge envelope as a pydantic model, and the core schema the trigger Lambda validates it with.

The Lambda validates with pydantic-core alone (``matcarv_aiops.envelope``, which also reads targets out of
events) against ``envelope_schema()``, stored as ``envelope_schema.json``: run ``python -m
matcarv_aiops.events`` after changing ``EventBridgeEvent``. ``matcarv_aiops.models`` re-exports the model
and ``validation_problems``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from matcarv_aiops.envelope import ARN_PATTERN as ARN_PATTERN
from matcarv_aiops.envelope import DEFAULT_FACTORIES, SCHEMA_FILE
from matcarv_aiops.envelope import TargetRule as TargetRule
from matcarv_aiops.envelope import is_arn as is_arn
from matcarv_aiops.envelope import target_arn as target_arn
from matcarv_aiops.envelope import validation_problems as validation_problems
from matcarv_aiops.envelope import values_at as values_at


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


# Keys of a schema node that only name the model or feed JSON Schema generation, not validation: the
# model class (``Envelope`` takes its place), its definition reference, and JSON Schema hooks.
_NOT_STORED = ("cls", "ref", "metadata")


def envelope_schema(model: type[BaseModel] = EventBridgeEvent) -> dict[str, Any]:
    """``model``'s core schema as JSON data (for ``EventBridgeEvent``: what ``envelope_schema.json``
    holds). Raises ValueError naming the place of anything JSON cannot carry, such as a validator
    function: the Lambda could not apply it."""
    factories = {factory: name for name, factory in DEFAULT_FACTORIES.items()}

    def stored(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            # A schema node has a string "type"; a mapping of field names (which may be "metadata") has not.
            is_node = isinstance(node.get("type"), str)
            kept = {}
            for key, value in node.items():
                if is_node and key in _NOT_STORED:
                    continue
                if key == "default_factory" and is_node:
                    if value not in factories:
                        known = ", ".join(DEFAULT_FACTORIES)
                        raise ValueError(f"{where}.default_factory: {value!r} is none of {known}")
                    kept[key] = factories[value]
                else:
                    kept[key] = stored(value, f"{where}.{key}")
            return kept
        if isinstance(node, (list, tuple)):
            return [stored(item, f"{where}[{index}]") for index, item in enumerate(node)]
        if node is None or isinstance(node, (str, int, float, bool)):
            return node
        raise ValueError(f"{where}: {node!r} cannot be stored as JSON, so the Lambda could not validate it")

    return stored(model.__pydantic_core_schema__, model.__name__)


def envelope_schema_text() -> str:
    """What ``envelope_schema.json`` must hold, byte for byte. Key order is kept: the fields' order is the
    order errors are reported and the event is serialised in."""
    return json.dumps(envelope_schema(), indent=1) + "\n"


def write_envelope_schema(path: Path = SCHEMA_FILE) -> Path:
    path.write_text(envelope_schema_text(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print("usage: python -m matcarv_aiops.events (writes envelope_schema.json)", file=sys.stderr)
        return 2
    print(write_envelope_schema())
    return 0


if __name__ == "__main__":
    sys.exit(main())
