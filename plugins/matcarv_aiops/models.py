"""The shapes that cross a boundary: EventBridge events, DAG run conf, approvals, audit records."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

# The envelope lives in events.py, which the trigger Lambda imports without the rest of this module;
# both names stay importable from here.
from matcarv_aiops.events import ARN_PATTERN, EventBridgeEvent
from matcarv_aiops.events import validation_problems as validation_problems

# The platform's own name: the requester of runs nobody triggered by hand and the operator of changes
# approved automatically. Reserved: it never decides an approval request.
AUTOMATED = "automated"

# uuid5 namespace for execution ids: the same event and remediation always give the same id.
EXECUTION_NAMESPACE = uuid.UUID("6f1c7c5e-6a43-4c1e-9d55-0d0f4a7f2b11")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with a Z suffix, to the millisecond."""
    moment = (moment or utc_now()).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Target(BaseModel):
    """The one resource a remediation acts on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arn: str = Field(pattern=ARN_PATTERN)
    resource_id: str = Field(min_length=1)
    region: str
    account: str

    @classmethod
    def from_arn(cls, arn: str, *, default_region: str = "", default_account: str = "") -> Target:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            raise ValueError(f"target {arn!r} is not an ARN")
        _, _, _service, region, account, resource = parts
        resource_id = resource.split("/", 1)[1] if "/" in resource else resource
        return cls(
            arn=arn,
            resource_id=resource_id,
            region=region or default_region,
            account=account or default_account,
        )


class RemediationRequest(BaseModel):
    """A remediation DAG run's conf.

    The trigger Lambda sends ``event``; a run started by hand from the Airflow UI may give ``target``
    (an ARN) instead.
    """

    model_config = ConfigDict(extra="forbid")

    event: EventBridgeEvent | None = None
    target: str | None = None
    dry_run: bool = False
    reason: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _event_or_target(self) -> RemediationRequest:
        if self.event is None and not self.target:
            raise ValueError("conf needs 'event' (the EventBridge event) or 'target' (a resource ARN)")
        return self

    def execution_id(self, remediation_id: str, run_id: str) -> str:
        """Same event + same remediation => same id, so a second run for one event can be recognised."""
        key = f"{remediation_id}|event|{self.event.id}" if self.event else f"{remediation_id}|run|{run_id}"
        return str(uuid.uuid5(EXECUTION_NAMESPACE, key))


class Outcome(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"


class ApprovalStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"  # the run ended without a decision (audit_reconciler closed the request)


# Records stored in DynamoDB keep the table's camelCase attribute names on the wire (aliases); in Python
# their fields are snake_case, and both names are accepted when a record is built.
WIRE_NAMES = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class ApprovalRecord(BaseModel):
    """One approval request, bound to one execution, and the human decision on it."""

    model_config = ConfigDict(extra="forbid", **WIRE_NAMES)

    execution_id: str
    remediation: str
    dag_id: str
    run_id: str
    target_resource: str
    action: str
    diagnostics_uri: str
    rollback_plan: str
    reason_for_approval: str
    requested_at: str
    expires_at: str
    status: ApprovalStatus = ApprovalStatus.PENDING
    # Who started the run: "automated" (the ingress, a schedule) or the Airflow user who triggered it.
    # Requests stored before this field existed were all started by the ingress.
    requested_by: str = AUTOMATED
    # Distinct approvers needed before the request is APPROVED (production_approvals for production).
    approvals_required: int = Field(default=1, ge=1)
    # The decider(s), comma-separated in the order they approved (two for a four-eyes production change).
    approver: str | None = None
    decision_reason: str | None = None
    decided_at: str | None = None
    # A maintenance plan's sha256 (hex) over its stored bytes: the deleting task refuses a plan that differs.
    plan_digest: str | None = None
    # The target's account and region, shown to the approver (an S3 bucket's ARN names neither).
    account: str | None = None
    region: str | None = None

    @property
    def approvers(self) -> list[str]:
        """Who has decided so far, in order."""
        return [name.strip() for name in (self.approver or "").split(",") if name.strip()]

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utc_now()) >= datetime.fromisoformat(self.expires_at.replace("Z", "+00:00"))


class AuditRecord(BaseModel):
    """The nine fields of the AutomationAuditLog table (the design document's audit trail), on the wire
    under their table names: executionId, timestamp, trigger, runbook, targetResource, action, outcome,
    operator, rollbackPlan; and requestedBy, who started the run (the decider is in ``operator``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, **WIRE_NAMES)

    execution_id: str
    timestamp: str
    trigger: str  # the triggering EventBridge event, as JSON
    runbook: str
    target_resource: str
    action: str
    outcome: Outcome
    operator: str
    rollback_plan: str
    # Beyond the nine: who started the run ("automated", or the Airflow user who triggered it by hand).
    requested_by: str = AUTOMATED

    @field_validator("execution_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return str(uuid.UUID(value))

    @field_validator("timestamp")
    @classmethod
    def _iso_utc(cls, value: str) -> str:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        offset = parsed.utcoffset()
        if offset is None or offset.total_seconds() != 0:
            raise ValueError("timestamp must be ISO 8601 in UTC")
        return value

    @field_validator("trigger")
    @classmethod
    def _json(cls, value: str) -> str:
        json.loads(value)
        return value

    @field_validator("operator", "runbook", "target_resource", "action", "rollback_plan", "requested_by")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def to_item(self) -> dict[str, str]:
        """The table item: the nine attribute names and requestedBy, string values."""
        return self.model_dump(mode="json", by_alias=True)
