"""The auto-remediation catalogue, as data.

One YAML file per entry in ``entries/``. Each is validated by a closed schema (unknown keys are errors,
and every error names the entry and file). The behaviour behind an entry lives in
``matcarv_aiops.remediations.<id>``; DAGs, EventBridge rules and IAM policies are all generated from
these entries, so one edit changes all three.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from matcarv_aiops.events import target_arn
from matcarv_aiops.models import EventBridgeEvent, Target, validation_problems

ENTRIES_DIR = Path(__file__).with_name("entries")
DAG_ID_PREFIX = "remediate_"
_IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


class CatalogueError(ValueError):
    """The catalogue is invalid; the message names the entry and the field."""


class TargetSpec(BaseModel):
    """Where an event names the target: the first path that yields a value wins.

    Paths are dotted; ``[]`` walks every element of a list, e.g.
    ``detail.configuration.metrics[].metricStat.metric.dimensions.QueueName``.
    """

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1)
    arn: str = Field(description="ARN template: {value}, {region}, {account}")
    # Use this spec only when every path here holds one of the listed values (e.g. a GuardDuty finding's
    # userType decides whether the principal is a user or a role).
    when: dict[str, list[str]] = Field(default_factory=dict)
    # Where the event names the resource's account when it is not the envelope's (e.g. GuardDuty findings
    # of member accounts delivered to the administrator account).
    account_path: str | None = None

    @field_validator("arn")
    @classmethod
    def _template(cls, value: str) -> str:
        if "{value}" not in value:
            raise ValueError("arn template must contain {value}")
        return value


class CatalogueEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,40}$")
    condition: str = Field(min_length=3)
    action: str = Field(min_length=3)
    pattern: Literal["lambda", "ssm", "step_functions"]
    reversible: bool
    # always: every run waits for a human. outside_production: automatic unless the target is production
    # (production always waits, whatever the entry says).
    approval: Literal["always", "outside_production"]
    resource_type: str = Field(min_length=3)
    trigger: dict[str, Any]
    targets: list[TargetSpec] = Field(min_length=1)
    eligibility: list[str] = Field(min_length=1, description="the live re-checks, in words")
    validation: str = Field(min_length=3)
    rollback: str | None = None
    no_rollback_reason: str | None = None
    permissions: list[str] = Field(min_length=1)
    thresholds: dict[str, float] = Field(default_factory=dict)
    # The SSM Automation document (a file stem in ssm/) an entry of pattern "ssm" runs; only those name one.
    ssm_document: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{3,128}$")

    @field_validator("trigger")
    @classmethod
    def _event_pattern(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "source" not in value:
            raise ValueError("EventBridge pattern must match on 'source'")
        _check_pattern_shape(value, "trigger")
        return value

    @field_validator("permissions")
    @classmethod
    def _least_privilege(cls, value: list[str]) -> list[str]:
        for action in value:
            if not _IAM_ACTION.match(action):
                raise ValueError(f"IAM action {action!r} must be one exact 'service:Action' (no wildcards)")
        if len(set(value)) != len(value):
            raise ValueError("IAM actions are listed twice")
        return value

    @model_validator(mode="after")
    def _rollback_or_reason(self) -> CatalogueEntry:
        if bool(self.rollback) == bool(self.no_rollback_reason):
            raise ValueError("give exactly one of 'rollback' (how to undo) or 'no_rollback_reason'")
        return self

    @model_validator(mode="after")
    def _document_for_ssm_pattern(self) -> CatalogueEntry:
        if self.pattern == "ssm" and not self.ssm_document:
            raise ValueError(
                "ssm_document: pattern 'ssm' runs an SSM Automation document; name it (a file stem in ssm/)"
            )
        if self.pattern != "ssm" and self.ssm_document:
            raise ValueError(
                f"ssm_document: {self.ssm_document!r} is given but pattern is {self.pattern!r}; "
                f"only a pattern 'ssm' entry runs a document"
            )
        return self

    @property
    def dag_id(self) -> str:
        return DAG_ID_PREFIX + self.id

    @property
    def rollback_plan(self) -> str:
        return self.rollback or f"No rollback: {self.no_rollback_reason}"

    def resolve_target(self, event: EventBridgeEvent | dict[str, Any]) -> Target | None:
        """The target named by the event, from the event alone (no AWS call); None if it names none."""
        data = event.as_event() if isinstance(event, EventBridgeEvent) else event
        found = target_arn(self.targets, data)
        if found is None:
            return None
        arn, account = found
        return Target.from_arn(arn, default_region=data.get("region", ""), default_account=account)


_PATTERN_OPERATORS = {
    "prefix",
    "suffix",
    "anything-but",
    "numeric",
    "exists",
    "wildcard",
    "equals-ignore-case",
    "cidr",
}


def _check_pattern_shape(node: Any, where: str) -> None:
    """EventBridge patterns: nested objects ending in arrays of literals or operator objects."""
    if isinstance(node, dict):
        for key, value in node.items():
            _check_pattern_shape(value, f"{where}.{key}")
        return
    if not isinstance(node, list) or not node:
        raise ValueError(f"{where}: a pattern leaf must be a non-empty array")
    for item in node:
        if isinstance(item, dict):
            unknown = set(item) - _PATTERN_OPERATORS
            if unknown or len(item) != 1:
                raise ValueError(f"{where}: unsupported pattern operator {sorted(item)}")
        elif not isinstance(item, (str, int, float, bool)) and item is not None:
            raise ValueError(f"{where}: pattern values must be literals or operators")


def load_entry(path: Path) -> CatalogueEntry:
    import yaml  # here, not at module top: the trigger Lambda's cold start imports this module

    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogueError(f"catalogue file {path.name}: not valid YAML: {exc}") from exc
    name = raw.get("id", path.stem) if isinstance(raw, dict) else path.stem
    if not isinstance(raw, dict):
        raise CatalogueError(f"catalogue entry {name!r} ({path.name}): must be a mapping")
    try:
        entry = CatalogueEntry.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(
            f"catalogue entry {name!r} ({path.name}): {validation_problems(exc, '<entry>')}"
        ) from None
    if entry.id != path.stem:
        raise CatalogueError(f"catalogue entry {entry.id!r} ({path.name}): file name must be {entry.id}.yaml")
    return entry


def load_catalogue(directory: Path = ENTRIES_DIR) -> dict[str, CatalogueEntry]:
    entries = [load_entry(path) for path in sorted(directory.glob("*.yaml"))]
    if not entries:
        raise CatalogueError(f"catalogue directory {directory} holds no entries")
    return {entry.id: entry for entry in entries}


@lru_cache(maxsize=1)
def catalogue() -> dict[str, CatalogueEntry]:
    """The packaged catalogue, loaded and validated once per process."""
    return load_catalogue()


def get_entry(remediation_id: str) -> CatalogueEntry:
    try:
        return catalogue()[remediation_id]
    except KeyError:
        raise CatalogueError(f"no catalogue entry {remediation_id!r}; known: {sorted(catalogue())}") from None


def catalogue_json() -> str:
    return json.dumps(
        [entry.model_dump(mode="json") | {"dag_id": entry.dag_id} for entry in catalogue().values()], indent=2
    )
