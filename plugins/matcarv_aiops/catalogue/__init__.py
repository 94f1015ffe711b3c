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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from matcarv_aiops.events import target_arn
from matcarv_aiops.ingress.routing import (
    ACTIONABLE_COMPLIANCE,
    ACTIONABLE_RECORD_STATES,
    ACTIONABLE_WORKFLOW,
    FINDINGS_IMPORTED,
    SECURITYHUB_SOURCE,
)
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


# What a related resource's ARN template may name: the target's ARN, its name (the resource id), its
# region and account, and the entry's SSM document.
RELATED_ARN_FIELDS = ("target", "name", "region", "account", "ssm_document")
# Related resources found only at run time, each by a function of matcarv_aiops.session_policy.
RelatedResolver = Literal["dead_letter_source_queues", "auto_scaling_group_of_instance"]


class RelatedResource(BaseModel):
    """A resource other than the target that an entry acts on (the source queue of a DLQ, the Auto Scaling
    group behind an instance, the runbook it starts): the session policy of a run allows ``actions`` on
    it, and on nothing else but the target. Given as an ARN template or, where only the target's
    account can say which resource it is, a named resolver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arn: str | None = Field(default=None, description="ARN template: " + ", ".join(RELATED_ARN_FIELDS))
    resolver: RelatedResolver | None = None
    actions: list[str] = Field(min_length=1)
    why: str = Field(min_length=3)

    @model_validator(mode="after")
    def _arn_or_resolver(self) -> RelatedResource:
        if (self.arn is None) == (self.resolver is None):
            raise ValueError("give exactly one of 'arn' (an ARN template) or 'resolver'")
        if self.arn is not None:
            if not self.arn.startswith(("arn:aws:", "{target}")):
                raise ValueError(f"arn {self.arn!r} must start with 'arn:aws:' or '{{target}}'")
            try:
                self.arn.format(**{name: name for name in RELATED_ARN_FIELDS})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"arn {self.arn!r}: unknown placeholder {exc}; known: {', '.join(RELATED_ARN_FIELDS)}"
                ) from None
        return self


ALARM_SOURCE = "aws.cloudwatch"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
API_CALL_DETAIL_TYPE = "AWS API Call via CloudTrail"
CONFIG_SOURCE = "aws.config"

# CloudWatch's ComparisonOperator values (PutMetricAlarm), so an alarm is created from the condition as is.
_COMPARE = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_COMPARE_SYMBOL = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


class MetricAlarmCondition(BaseModel):
    """A CloudWatch metric alarm, in PutMetricAlarm's terms: the entry starts when it goes to ALARM.

    The entry's EventBridge pattern is generated from it, and the eligibility re-check compares the live
    metric with ``threshold`` through ``breached``: SPEC's number is written here once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["metric_alarm"]
    namespace: str = Field(min_length=1)
    # The alarm's metric; with several (e.g. the load balancer's and its targets' 5xx counts), an alarm on
    # any of them starts the entry.
    metric_names: list[str] = Field(min_length=1)
    statistic: Literal["Average", "Sum", "Minimum", "Maximum", "SampleCount"]
    period_seconds: int = Field(ge=10)
    evaluation_periods: int = Field(ge=1)
    comparison: Literal[
        "GreaterThanThreshold",
        "GreaterThanOrEqualToThreshold",
        "LessThanThreshold",
        "LessThanOrEqualToThreshold",
    ]
    threshold: float
    # For a rate: the compared value is 100 x the metric / the sum of these metrics over the same period
    # (a metric math alarm), so the threshold is a percentage.
    percent_of: list[str] = Field(default_factory=list)
    # Extra pattern on the alarm's dimensions, when the metric alone does not say which entry it is for.
    dimensions_pattern: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("period_seconds")
    @classmethod
    def _cloudwatch_period(cls, value: int) -> int:
        if value not in (10, 20, 30) and value % 60:
            raise ValueError(
                f"{value} is not a CloudWatch alarm period (10, 20, 30 or a multiple of 60 seconds)"
            )
        return value

    @property
    def sustained_seconds(self) -> int:
        """How long the metric must breach before the alarm fires."""
        return self.period_seconds * self.evaluation_periods

    def breached(self, value: float) -> bool:
        """Whether a live value is past the threshold, as the alarm compares it."""
        return bool(_COMPARE[self.comparison](value, self.threshold))

    def describe(self) -> str:
        metric = " or ".join(self.metric_names)
        if self.percent_of:
            metric = f"100 * {metric} / ({' + '.join(self.percent_of)})"
        return (
            f"{self.namespace} {metric} {self.statistic} {_COMPARE_SYMBOL[self.comparison]} "
            f"{self.threshold:g} for {self.evaluation_periods} x {self.period_seconds} s"
        )

    def event_pattern(self) -> dict[str, Any]:
        metric: dict[str, Any] = {"namespace": [self.namespace], "name": list(self.metric_names)}
        if self.dimensions_pattern:
            metric["dimensions"] = dict(self.dimensions_pattern)
        return {
            "source": [ALARM_SOURCE],
            "detail-type": [ALARM_DETAIL_TYPE],
            "detail": {
                "state": {"value": ["ALARM"]},
                "configuration": {"metrics": {"metricStat": {"metric": metric}}},
            },
        }


class ConfigRuleCondition(BaseModel):
    """An AWS Config managed rule turning NON_COMPLIANT: the rule's name, identifier and parameters, as
    PutConfigRule takes them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["config_rule"]
    rule_name: str = Field(min_length=1)
    source_identifier: str = Field(pattern=r"^[A-Z0-9_]{3,128}$")
    input_parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)

    def parameter(self, name: str) -> str | int | float | bool:
        try:
            return self.input_parameters[name]
        except KeyError:
            raise KeyError(f"Config rule {self.rule_name!r} has no parameter {name!r}") from None

    def describe(self) -> str:
        parameters = ", ".join(f"{k}={v}" for k, v in self.input_parameters.items())
        described = f"{self.source_identifier}: {parameters}" if parameters else self.source_identifier
        return f"Config rule {self.rule_name} ({described})"


class ApiCallCondition(BaseModel):
    """A CloudTrail-recorded API call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["api_call"]
    source: str = Field(pattern=r"^aws\.[a-z0-9-]+$")
    event_source: str = Field(pattern=r"^[a-z0-9-]+\.amazonaws\.com$")
    event_names: list[str] = Field(min_length=1)

    def describe(self) -> str:
        return f"API call {self.event_source} {' or '.join(self.event_names)}"


class ServiceEventCondition(BaseModel):
    """An event a service emits itself: a finding, a compliance change, a service action."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["service_event"]
    source: str = Field(pattern=r"^aws\.[a-z0-9-]+$")
    detail_type: str = Field(min_length=3)
    # detail.eventName of the event (e.g. ECS's SERVICE_TASK_START_IMPAIRED)
    event_name: str | None = None
    # the least finding severity (GuardDuty: 7.0-8.9 HIGH, 9.0 and over CRITICAL)
    min_severity: float | None = None
    # detail.newEvaluationResult.complianceType (Config compliance changes)
    compliance_type: str | None = None

    def describe(self) -> str:
        parts = [f"{self.source} {self.detail_type!r}"]
        if self.event_name:
            parts.append(self.event_name)
        if self.min_severity is not None:
            parts.append(f"severity >= {self.min_severity:g}")
        if self.compliance_type:
            parts.append(self.compliance_type)
        return " ".join(parts)


class SecurityHubFindingCondition(BaseModel):
    """A finding imported into Security Hub (ASFF), as the Automated Security Response solution takes them:
    a failed control of AWS Foundational Security Best Practices (``control_ids``: matched as the
    consolidated ``Compliance.SecurityControlId`` or the per-standard ``ProductFields.ControlId``), or
    another product's finding (``product_name``, e.g. GuardDuty). Only ACTIVE findings whose workflow is NEW
    or NOTIFIED (and, for a control, whose compliance is FAILED) count; the entry's EventBridge pattern
    for ``Security Hub Findings - Imported`` is generated from this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["securityhub_finding"]
    control_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9]+\.\d+$")]] = Field(default_factory=list)
    product_name: str | None = Field(default=None, min_length=2)
    # ASFF Resources[].Type of the resource the entry fixes (e.g. AwsS3Bucket).
    resource_types: list[Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]+$")]] = Field(min_length=1)
    severity_labels: list[Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _control_or_product(self) -> SecurityHubFindingCondition:
        if bool(self.control_ids) == bool(self.product_name):
            raise ValueError("give exactly one of 'control_ids' (a failed control) or 'product_name'")
        return self

    def event_pattern(self) -> dict[str, Any]:
        finding: dict[str, Any] = {
            "RecordState": list(ACTIONABLE_RECORD_STATES),
            "Workflow": {"Status": list(ACTIONABLE_WORKFLOW)},
            "Resources": {"Type": list(self.resource_types)},
        }
        if self.control_ids:
            finding["Compliance"] = {"Status": list(ACTIONABLE_COMPLIANCE)}
            finding["$or"] = [
                {"Compliance": {"SecurityControlId": list(self.control_ids)}},
                {"ProductFields": {"ControlId": list(self.control_ids)}},
            ]
        else:
            finding["ProductName"] = [self.product_name]
        if self.severity_labels:
            finding["Severity"] = {"Label": list(self.severity_labels)}
        return {
            "source": [SECURITYHUB_SOURCE],
            "detail-type": [FINDINGS_IMPORTED],
            "detail": {"findings": finding},
        }

    def describe(self) -> str:
        what = (
            f"control {' or '.join(self.control_ids)} FAILED"
            if self.control_ids
            else f"{self.product_name} finding"
        )
        severity = f" ({'/'.join(self.severity_labels)})" if self.severity_labels else ""
        return f"Security Hub {what}{severity} on {' or '.join(self.resource_types)}"


TriggerCondition = Annotated[
    MetricAlarmCondition
    | ConfigRuleCondition
    | ApiCallCondition
    | ServiceEventCondition
    | SecurityHubFindingCondition,
    Field(discriminator="kind"),
]

# The alternative of a combined pattern that stays the entry's own must not match a Security Hub finding,
# or its {exists: false} alternatives would take any finding. EventBridge's `exists` works on leaves only,
# so the guard is the absence of ASFF's required fields: a finding that holds any of them fails it.
_NO_FINDING = {
    "findings": {field: [{"exists": False}] for field in ("Id", "GeneratorId", "ProductArn", "AwsAccountId")}
}


def _with_findings(hand: dict[str, Any], findings: list[SecurityHubFindingCondition]) -> dict[str, Any]:
    """The entry's hand-written pattern and its Security Hub findings' patterns as one EventBridge pattern:
    the union of sources and detail types, and ``$or`` over the details (each alternative needs what only
    its own kind of event carries)."""
    if not hand:
        patterns = [condition.event_pattern() for condition in findings]
        if len(patterns) == 1:
            return patterns[0]
        hand = {"source": [], "detail-type": []}
    unknown = set(hand) - {"source", "detail-type", "detail"}
    if unknown:
        raise ValueError(f"trigger: cannot combine with Security Hub findings: top-level {sorted(unknown)}")
    detail = dict(hand.get("detail", {}))
    if "$or" in detail or "findings" in detail:
        raise ValueError(
            "trigger.detail: the Security Hub alternative is generated from the securityhub_finding "
            "conditions; write only the entry's other events"
        )
    # The guard first: an event that is a finding fails there, before any of the entry's own fields.
    alternatives = [{**_NO_FINDING, **detail}] if hand.get("source") else []
    sources, detail_types = list(hand.get("source", [])), list(hand.get("detail-type", []))
    for condition in findings:
        pattern = condition.event_pattern()
        alternatives.append(pattern["detail"])
        sources += [s for s in pattern["source"] if s not in sources]
        detail_types += [d for d in pattern["detail-type"] if d not in detail_types]
    return {"source": sources, "detail-type": detail_types, "detail": {"$or": alternatives}}


def _hand_detail(trigger: dict[str, Any], has_findings: bool) -> dict[str, Any]:
    """The detail pattern of the entry's own (non-Security Hub) events."""
    detail = trigger.get("detail", {})
    if has_findings and "$or" in detail:
        return {key: value for key, value in detail["$or"][0].items() if key != "findings"}
    return detail


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
    # What starts the entry, with SPEC's numbers: one metric alarm, or one or more of Config rules, API calls
    # and service events. A metric alarm entry's `trigger` is generated from its condition.
    trigger_conditions: list[TriggerCondition] = Field(min_length=1)
    trigger: dict[str, Any]
    targets: list[TargetSpec] = Field(min_length=1)
    eligibility: list[str] = Field(min_length=1, description="the live re-checks, in words")
    validation: str = Field(min_length=3)
    rollback: str | None = None
    no_rollback_reason: str | None = None
    permissions: list[str] = Field(min_length=1)
    # Resources besides the target that some of ``permissions`` act on; a run's session allows those
    # actions on them, and every resource-level action on the target only.
    related_resources: list[RelatedResource] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    # The SSM Automation document (a file stem in ssm/) an entry of pattern "ssm" runs; only those name one.
    ssm_document: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{3,128}$")

    @model_validator(mode="before")
    @classmethod
    def _pattern_from_alarm(cls, data: Any) -> Any:
        """A metric alarm entry's EventBridge pattern is its condition's; the file does not repeat it."""
        if isinstance(data, dict) and "trigger" not in data:
            conditions = data.get("trigger_conditions")
            if (
                isinstance(conditions, list)
                and len(conditions) == 1
                and isinstance(conditions[0], dict)
                and conditions[0].get("kind") == "metric_alarm"
            ):
                try:
                    alarm = MetricAlarmCondition.model_validate(conditions[0])
                except ValidationError:
                    return data  # reported against trigger_conditions by the field validation
                return {**data, "trigger": alarm.event_pattern()}
        return data

    @model_validator(mode="before")
    @classmethod
    def _pattern_with_findings(cls, data: Any) -> Any:
        """An entry that also starts from Security Hub findings: their pattern is generated from the
        securityhub_finding conditions and combined with the file's own ``trigger``."""
        if not isinstance(data, dict) or not isinstance(data.get("trigger_conditions"), list):
            return data
        raw = [
            c
            for c in data["trigger_conditions"]
            if isinstance(c, dict) and c.get("kind") == "securityhub_finding"
        ]
        if not raw:
            return data
        try:
            findings = [SecurityHubFindingCondition.model_validate(c) for c in raw]
        except ValidationError:
            return data  # reported against trigger_conditions by the field validation
        hand = data.get("trigger") or {}
        if not isinstance(hand, dict):
            return data
        return {**data, "trigger": _with_findings(hand, findings)}

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
    def _pattern_agrees_with_conditions(self) -> CatalogueEntry:
        alarms = [c for c in self.trigger_conditions if isinstance(c, MetricAlarmCondition)]
        if alarms:
            if len(self.trigger_conditions) > 1:
                raise ValueError("trigger_conditions: a metric_alarm condition must be the entry's only one")
            if self.trigger != alarms[0].event_pattern():
                raise ValueError(
                    "trigger: a metric_alarm entry's pattern is generated from its condition; "
                    "remove 'trigger'"
                )
            return self
        sources, detail_types = self.trigger.get("source", []), self.trigger.get("detail-type", [])
        findings = [c for c in self.trigger_conditions if isinstance(c, SecurityHubFindingCondition)]
        detail = _hand_detail(self.trigger, bool(findings))
        for condition in self.trigger_conditions:
            if isinstance(condition, SecurityHubFindingCondition):
                alternatives = self.trigger.get("detail", {}).get("$or", [self.trigger.get("detail")])
                _require(
                    condition.event_pattern()["detail"] in alternatives,
                    "detail",
                    condition.event_pattern()["detail"],
                    condition,
                )
                if not any(
                    path.startswith("detail.findings[].") for spec in self.targets for path in spec.paths
                ):
                    raise ValueError(
                        "targets: a securityhub_finding entry needs a target read from the finding "
                        "(a path under detail.findings[].Resources[])"
                    )
            elif isinstance(condition, ConfigRuleCondition):
                _require(CONFIG_SOURCE in sources, "source", CONFIG_SOURCE, condition)
                _require(
                    condition.rule_name in detail.get("configRuleName", []),
                    "detail.configRuleName",
                    condition.rule_name,
                    condition,
                )
            elif isinstance(condition, ApiCallCondition):
                _require(condition.source in sources, "source", condition.source, condition)
                _require(API_CALL_DETAIL_TYPE in detail_types, "detail-type", API_CALL_DETAIL_TYPE, condition)
                for name in condition.event_names:
                    _require(name in detail.get("eventName", []), "detail.eventName", name, condition)
                if "eventSource" in detail:
                    _require(
                        condition.event_source in detail["eventSource"],
                        "detail.eventSource",
                        condition.event_source,
                        condition,
                    )
            elif isinstance(condition, ServiceEventCondition):
                _require(condition.source in sources, "source", condition.source, condition)
                _require(
                    condition.detail_type in detail_types, "detail-type", condition.detail_type, condition
                )
                if condition.event_name is not None:
                    _require(
                        condition.event_name in detail.get("eventName", []),
                        "detail.eventName",
                        condition.event_name,
                        condition,
                    )
                if condition.min_severity is not None:
                    severity = [{"numeric": [">=", condition.min_severity]}]
                    _require(detail.get("severity") == severity, "detail.severity", severity, condition)
                if condition.compliance_type is not None:
                    compliance = detail.get("newEvaluationResult", {}).get("complianceType", [])
                    _require(
                        condition.compliance_type in compliance,
                        "detail.newEvaluationResult.complianceType",
                        condition.compliance_type,
                        condition,
                    )
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

    @model_validator(mode="after")
    def _related_actions_are_permitted(self) -> CatalogueEntry:
        # after _document_for_ssm_pattern: a missing ssm_document is reported there first
        for related in self.related_resources:
            unknown = [action for action in related.actions if action not in self.permissions]
            if unknown:
                raise ValueError(
                    f"related_resources {related.arn or related.resolver}: actions {unknown} are not "
                    "in permissions"
                )
            if related.arn and "{ssm_document}" in related.arn and not self.ssm_document:
                raise ValueError(f"related_resources {related.arn}: names {{ssm_document}} but there is none")
        return self

    @property
    def dag_id(self) -> str:
        return DAG_ID_PREFIX + self.id

    @property
    def metric_alarm(self) -> MetricAlarmCondition:
        """The entry's alarm condition; the eligibility re-check compares live metrics with it."""
        for condition in self.trigger_conditions:
            if isinstance(condition, MetricAlarmCondition):
                return condition
        raise CatalogueError(f"catalogue entry {self.id!r} has no metric_alarm trigger condition")

    def config_rule(self, source_identifier: str) -> ConfigRuleCondition:
        for condition in self.trigger_conditions:
            if (
                isinstance(condition, ConfigRuleCondition)
                and condition.source_identifier == source_identifier
            ):
                return condition
        raise CatalogueError(
            f"catalogue entry {self.id!r} has no Config rule {source_identifier} trigger condition"
        )

    def service_event(self) -> ServiceEventCondition:
        for condition in self.trigger_conditions:
            if isinstance(condition, ServiceEventCondition):
                return condition
        raise CatalogueError(f"catalogue entry {self.id!r} has no service_event trigger condition")

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


def _require(holds: bool, field: str, value: Any, condition: BaseModel) -> None:
    if not holds:
        kind = getattr(condition, "kind", "")
        raise ValueError(
            f"trigger.{field}: must match {value!r}, as trigger_conditions' {kind} condition says"
        )


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
            if key == "$or":
                if (
                    not isinstance(value, list)
                    or len(value) < 2
                    or not all(isinstance(v, dict) for v in value)
                ):
                    raise ValueError(f"{where}.$or: must be an array of at least two patterns")
                for index, alternative in enumerate(value):
                    _check_pattern_shape(alternative, f"{where}.$or[{index}]")
                continue
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
