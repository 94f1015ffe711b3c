"""What the scheduled maintenance jobs share: clients, deterministic audit records, plan files in S3 and
the approval of a plan through the core approval store (decided with the ``approve_remediation`` DAG).

Every job is a plain function of (settings, clients, run facts): no Airflow needed to run or test it.

A deleting task never takes the plan or the decision from XCom, which a UI user can edit. The plan step
records its plan in the state table (``maintenance-plan#<job>#<run id>``: S3 key, sha256 of the plan's
bytes, summary; first write wins) and binds the approval request to the same digest. ``authorise`` then
reads the recorded plan and the approval store, refuses when what XCom says differs from them, and
``read_verified_plan`` refuses plan bytes whose digest differs from the recorded one.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any, NoReturn, TypeVar

from botocore.exceptions import ClientError

from matcarv_aiops import approvals
from matcarv_aiops.audit import AuditWriter
from matcarv_aiops.aws import assumed_session, hub_account, hub_client, session_client
from matcarv_aiops.dynamo import batch_get, is_condition_failed
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, AuditRecord, Outcome, iso_utc
from matcarv_aiops.settings import Settings

T = TypeVar("T")

# uuid5 namespace of maintenance execution ids: the same job, resource and action always give the same
# id, so a re-run finds the record its first attempt wrote (which stands) instead of adding a second one.
MAINTENANCE_NAMESPACE = uuid.UUID("0b7d7f0e-3f0a-4c55-8f3e-9a1d2c6b5e41")


class IncompleteListing(RuntimeError):
    """The job could not see everything it must look at: it fails rather than report a partial success."""


class JobFailed(RuntimeError):
    """Some resources could not be handled; their FAILURE audit records are written."""


class PlanRefused(JobFailed):
    """The deleting task refused the whole plan (forged XCom, tampered plan, no recorded plan); its
    FAILURE audit record is written and nothing was deleted."""


class PlanTampered(ValueError):
    """The plan's bytes in S3 are not the ones recorded (and approved) when the plan was made."""


def execution_id(job: str, *parts: str) -> str:
    return str(uuid.uuid5(MAINTENANCE_NAMESPACE, "|".join((job, *parts))))


# IAM action prefix -> boto3 service name, where the two differ (for the services the jobs call).
BOTO3_SERVICE_OF = {"tag": "resourcegroupstaggingapi"}


@dataclass(frozen=True)
class JobPermissions:
    """The AWS actions a job calls on the account's resources: the single source of its IAM role
    ``AIOpsMaintenance-<job>`` (``infra/aiops_infra/maintenance_roles.py``) and of which of its clients use
    that role. The platform's own tables, bucket and topic are not here: the job reaches them with the
    execution role, as a remediation's steps do. Every job module declares ``PERMISSIONS``."""

    actions: tuple[str, ...]
    # Where the job may cloudwatch:PutMetricData (the role's grant is limited to these namespaces).
    metric_namespaces: tuple[str, ...] = ()
    # The job acts in every account (the hub and AIOPS_MEMBER_ACCOUNTS) and every Region (AIOPS_REGIONS),
    # not only the hub's: its role is in each member account too, and names every Region.
    every_account_and_region: bool = False

    def __post_init__(self) -> None:
        for action in self.actions:
            if action.count(":") != 1 or "*" in action or not all(action.split(":")):
                raise ValueError(f"job permission {action!r} is not one service:Action without wildcards")
        if ("cloudwatch:PutMetricData" in self.actions) != bool(self.metric_namespaces):
            raise ValueError("cloudwatch:PutMetricData and metric_namespaces go together")

    @property
    def services(self) -> frozenset[str]:
        """The boto3 service names of the actions: their IAM prefix, except where boto3 names the service
        otherwise (``tag:`` is the Resource Groups Tagging API, ``resourcegroupstaggingapi``)."""
        return frozenset(
            BOTO3_SERVICE_OF.get(prefix, prefix)
            for prefix in (action.split(":")[0] for action in self.actions)
        )


@dataclass
class Clients:
    """One client per service for a job run (creating a client costs more than most calls).
    ``overrides`` lets a test hand in a stubbed client for an API moto lacks.

    With ``job`` named and ``maintenance_role_arn_template`` set, the services of the job's declared
    actions get clients of the job's own role (assumed from the execution role, cached); every other
    service (the platform's tables and bucket) the execution role's. Without the template, every client
    uses the worker's credentials, as remediations do without ``remediation_role_arn_template``.

    ``account`` and ``region`` (empty: the hub's) say where the declared services' clients act; ``at``
    gives the clients of a job that works in every account and Region (``every_account_and_region``)."""

    settings: Settings
    overrides: dict[str, Any] = field(default_factory=dict)
    job: str = ""
    account: str = ""
    region: str = ""
    _made: dict[str, Any] = field(default_factory=dict)

    def __call__(self, service: str):
        if service in self.overrides:
            return self.overrides[service]
        if service not in self._made:
            self._made[service] = self._make(service)
        return self._made[service]

    def at(self, account: str, region: str) -> Clients:
        """The same job's clients, acting in ``account`` and ``region`` (a test's ``overrides`` stand in
        there too)."""
        return Clients(self.settings, overrides=self.overrides, job=self.job, account=account, region=region)

    def _make(self, service: str):
        template = self.settings.maintenance.maintenance_role_arn_template
        declared = self._declared_services(template)
        if declared is not None and service not in declared:
            return hub_client(service, self.settings)  # the platform's own: the hub's, the execution role's
        region = self.region or self.settings.platform.region
        if not template:
            if self.account and self.account != hub_account(self.settings):
                raise ValueError(
                    f"maintenance_role_arn_template is not set: the worker's own credentials cannot act "
                    f"in account {self.account}"
                )
            return hub_client(service, self.settings, region=region)
        session = assumed_session(
            template.format(account=self.account or hub_account(self.settings), job=self.job),
            region=region,
            session_name=f"aiops-{self.job}",
            settings=self.settings,
        )
        return session_client(session, service, region)

    def _declared_services(self, template: str) -> frozenset[str] | None:
        """The boto3 services of the job's declared actions; None (every service is the worker's) without
        the role template and a declared job."""
        if template and not self.job:
            raise ValueError(
                "maintenance_role_arn_template is set but the job's Clients names no job: "
                "pass Clients(settings, job=JOB)"
            )
        from matcarv_aiops.maintenance import job_permissions  # the job modules import this one

        declared = job_permissions().get(self.job) if self.job else None
        if declared is None and template:
            raise ValueError(
                f"maintenance job {self.job!r} declares no PERMISSIONS: it has no role to act with"
            )
        return declared.services if declared else None


@dataclass(frozen=True)
class RunInfo:
    """The scheduled run a job belongs to; it is the audit records' trigger."""

    job: str
    run_id: str
    logical_date: datetime

    def trigger(self) -> str:
        return json.dumps(
            {
                "source": "aiops.schedule",
                "detail-type": "Scheduled maintenance",
                "dag": self.job,
                "runId": self.run_id,
                "time": iso_utc(self.logical_date),
            }
        )

    @property
    def safe_run_id(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.run_id)


def audit(
    run: RunInfo,
    *,
    key: str,
    target: str,
    action: str,
    outcome: Outcome,
    rollback: str,
    operator: str = "automated",
) -> AuditRecord:
    """One resource's record. ``key`` names the change (resource + action) and fixes the execution id."""
    return AuditRecord(
        execution_id=execution_id(run.job, key),
        timestamp=iso_utc(),
        trigger=run.trigger(),
        runbook=run.job,
        target_resource=target,
        action=action,
        outcome=outcome,
        operator=operator,
        rollback_plan=rollback,
    )


def audit_writer(settings: Settings) -> AuditWriter:
    return AuditWriter(settings)


def audited(settings: Settings, execution_ids: Iterable[str]) -> set[str]:
    """Which of these executions already have their audit record (BatchGetItem, 100 keys per call): a
    cleared and re-run deleting task finds its items gone, and must not rewrite their records."""
    keys = [{"executionId": {"S": e}} for e in dict.fromkeys(execution_ids)]
    if not keys:
        return set()
    table = settings.platform.audit_table
    return {item["executionId"]["S"] for item in batch_get(hub_client("dynamodb", settings), table, keys)}


# --- plan files: JSON lines in the diagnostics bucket, streamed both ways ---------------------------
class PlanWriter:
    """Writes a plan line by line to a temporary file, then uploads it in one go: memory stays flat
    however many resources the plan holds."""

    def __init__(self, header: dict):
        # The file is the writer's state across add() calls, so no `with` here: upload() closes it.
        self._file = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115
        self._sha256 = hashlib.sha256()
        self.count = 0
        self._line(header)

    def _line(self, obj: dict) -> None:
        line = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        self._file.write(line)
        self._sha256.update(line)

    @property
    def digest(self) -> str:
        """sha256 (hex) of the plan's bytes as uploaded."""
        return self._sha256.hexdigest()

    def add(self, entry: dict) -> None:
        self._line(entry)
        self.count += 1

    def discard(self) -> None:
        """Drop a plan that will not be uploaded."""
        self._file.close()

    def upload(self, clients: Clients, key: str) -> str:
        self._file.seek(0)
        clients("s3").upload_fileobj(self._file, clients.settings.platform.diagnostics_bucket, key)
        self._file.close()
        return f"s3://{clients.settings.platform.diagnostics_bucket}/{key}"


def read_plan(clients: Clients, key: str) -> tuple[dict, Iterator[dict]]:
    """(header, entries) of a plan file, the entries streamed from a temporary copy."""
    lines = _plan_lines(clients, key)
    header = next(lines)  # downloads the file now, as before; the entries stream on demand
    return header, lines


def read_verified_plan(clients: Clients, key: str, digest: str) -> tuple[dict, Iterator[dict]]:
    """``read_plan``, but only if the file's sha256 is ``digest``; else ``PlanTampered``, before any
    entry is read."""
    lines = _plan_lines(clients, key, digest)
    header = next(lines)
    return header, lines


def _file_digest(handle: IO[bytes]) -> str:
    sha256 = hashlib.sha256()
    handle.seek(0)
    for block in iter(lambda: handle.read(1 << 20), b""):
        sha256.update(block)
    handle.seek(0)
    return sha256.hexdigest()


def _plan_lines(clients: Clients, key: str, digest: str | None = None) -> Iterator[dict]:
    """The header, then every entry, of a plan file; the temporary copy is closed when the stream ends."""
    bucket = clients.settings.platform.diagnostics_bucket
    with tempfile.TemporaryFile(mode="w+b") as handle:
        clients("s3").download_fileobj(bucket, key, handle)
        if digest is not None and (found := _file_digest(handle)) != digest:
            raise PlanTampered(
                f"plan s3://{bucket}/{key} was changed after it was made: its sha256 is {found}, "
                f"the recorded (and approved) plan's is {digest}"
            )
        handle.seek(0)
        yield json.loads(handle.readline())
        for line in handle:
            if line.strip():
                yield json.loads(line)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last one shorter), streamed."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def put_json(clients: Clients, key: str, obj: dict) -> None:
    clients("s3").put_object(
        Bucket=clients.settings.platform.diagnostics_bucket,
        Key=key,
        Body=json.dumps(obj).encode(),
        ContentType="application/json",
    )


def get_json(clients: Clients, key: str) -> dict | None:
    s3 = clients("s3")
    try:
        return json.loads(
            s3.get_object(Bucket=clients.settings.platform.diagnostics_bucket, Key=key)["Body"].read()
        )
    except s3.exceptions.NoSuchKey:
        return None


def delete_key(clients: Clients, key: str) -> None:
    clients("s3").delete_object(Bucket=clients.settings.platform.diagnostics_bucket, Key=key)


# --- approval of a plan, through the core approval store ------------------------------------------
def plan_approval_id(job: str, run_id: str) -> str:
    """The execution id of a run's plan approval request: derived from the run, never read from XCom."""
    return execution_id(job, run_id, "approval")


def request_plan_approval(
    settings: Settings,
    run: RunInfo,
    *,
    target: str,
    action: str,
    plan_uri: str,
    plan_digest: str,
    rollback: str,
    why: str,
) -> dict:
    """Ask a human to approve a whole plan (one request per run, not one per resource), through the same
    approval API, table and ``approve_remediation`` DAG as a remediation's. The request carries the
    plan's digest: the approval holds for those exact bytes only."""
    return approvals.request(
        settings,
        execution_id=plan_approval_id(run.job, run.run_id),
        remediation=run.job,
        dag_id=run.job,
        run_id=run.run_id,
        target=target,
        action=action,
        diagnostics_uri=plan_uri,
        rollback_plan=rollback,
        why=why,
        plan_digest=plan_digest,
    )


# --- the plan as recorded when it was made, and who may act on it now -----------------------------
_PLAN_RECORD_DAYS = 90


@dataclass(frozen=True)
class RecordedPlan:
    """A run's plan as its plan step recorded it in the state table: the source of truth for the deleting
    task (XCom only carries a copy, which a UI user can edit)."""

    plan_key: str | None
    plan_uri: str | None
    digest: str | None
    needs_approval: bool
    summary: dict


def _plan_pk(job: str, run_id: str) -> str:
    return f"maintenance-plan#{job}#{run_id}"


def record_plan(
    settings: Settings,
    run: RunInfo,
    *,
    plan_key: str | None,
    plan_uri: str | None,
    digest: str | None,
    needs_approval: bool,
    summary: dict,
) -> RecordedPlan:
    """Record the run's plan with a conditional write. The first record stands: a retried plan step gets
    it back rather than replace a plan that a human may already have approved."""
    item: dict[str, Any] = {
        "pk": {"S": _plan_pk(run.job, run.run_id)},
        "runId": {"S": run.run_id},
        "needsApproval": {"BOOL": needs_approval},
        "summary": {"S": json.dumps(summary, sort_keys=True)},
        "recordedAt": {"S": iso_utc()},
        "ttl": {"N": str(int(time.time() + _PLAN_RECORD_DAYS * 86400))},
    }
    for name, value in (("planKey", plan_key), ("planUri", plan_uri), ("planDigest", digest)):
        if value is not None:
            item[name] = {"S": value}
    try:
        hub_client("dynamodb", settings).put_item(
            TableName=settings.platform.state_table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as exc:
        if not is_condition_failed(exc):
            raise
        existing = recorded_plan(settings, run.job, run.run_id)
        if existing is None:  # recorded a moment ago, gone now: the table is not what we think
            raise RuntimeError(f"the plan record of run {run.run_id} exists and cannot be read") from exc
        return existing
    return RecordedPlan(plan_key, plan_uri, digest, needs_approval, json.loads(item["summary"]["S"]))


def recorded_plan(settings: Settings, job: str, run_id: str) -> RecordedPlan | None:
    item = (
        hub_client("dynamodb", settings)
        .get_item(
            TableName=settings.platform.state_table,
            Key={"pk": {"S": _plan_pk(job, run_id)}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    if not item:
        return None
    return RecordedPlan(
        plan_key=item.get("planKey", {}).get("S"),
        plan_uri=item.get("planUri", {}).get("S"),
        digest=item.get("planDigest", {}).get("S"),
        needs_approval=item["needsApproval"]["BOOL"],
        summary=json.loads(item["summary"]["S"]),
    )


def plan_decision(settings: Settings, job: str, run_id: str) -> tuple[bool, dict | None]:
    """For the approval sensor: (done, decision). Done at once, with no decision, when the run's recorded
    plan needs no approval (or there is none: a dry run); else the decision once a human made it."""
    plan = recorded_plan(settings, job, run_id)
    if plan is None or not plan.needs_approval:
        return True, None
    decided = approvals.decision(settings, plan_approval_id(job, run_id))
    return decided is not None, decided


@dataclass(frozen=True)
class Authority:
    """What a deleting task may do, read from the recorded plan and the approval store."""

    plan: RecordedPlan
    approval: ApprovalRecord | None

    @property
    def operator(self) -> str:
        """Who decided on the plan, for the audit records (automated when nobody had to)."""
        return (self.approval.approver if self.approval else None) or "automated"

    def verdict(self) -> str:
        """The decision in words, as it stands now: "approved by alice", "rejected by bob: ...", ..."""
        return _verdict(self.plan, self.approval)

    def approved_now(self) -> bool:
        """Whether items that need a human may be deleted at this moment: the request is APPROVED and
        unexpired now. Asked before each such item, so an approval that lapses mid-run stops the rest."""
        return (
            self.approval is not None
            and self.approval.status == ApprovalStatus.APPROVED
            and not self.approval.expired()
        )

    @property
    def approver(self) -> str | None:
        if self.approval is not None and self.approval.status == ApprovalStatus.APPROVED:
            return self.approval.approver
        return None


def without_approval(summary: dict) -> dict:
    """A plan step's summary less its approval request, i.e. what was recorded."""
    return {k: v for k, v in summary.items() if k != "approval"}


def refuse(settings: Settings, run: RunInfo, target: str, reason: str) -> NoReturn:
    """Refuse the whole plan: one FAILURE audit record for the run saying why (a retry refused again
    leaves the first one standing), nothing deleted, and the task fails."""
    audit_writer(settings).write(
        audit(
            run,
            key=f"{run.run_id}|refused",
            target=target,
            action=f"refused to delete anything: {reason}",
            outcome=Outcome.FAILURE,
            rollback="nothing changed",
        )
    )
    raise PlanRefused(reason)


def _decision_view(decision: dict | None) -> dict | None:
    if decision is None:
        return None
    return {"decision": decision.get("decision"), "operator": decision.get("operator")}


def _show(decision: dict | None) -> str:
    return "no decision" if decision is None else f"{decision['decision']} by {decision['operator']}"


def authorise(settings: Settings, run: RunInfo, *, target: str, xcom: dict | None = None) -> Authority:
    """Who may delete what in this run, from the plan recorded for it and its approval request as they
    stand now. ``xcom`` holds what Airflow handed the task (``summary``, ``decision``): never used to
    decide, only compared, and any difference refuses the whole plan (XCom was edited). Every refusal
    writes its audit record and raises ``PlanRefused``."""
    plan = recorded_plan(settings, run.job, run.run_id)
    if plan is None:
        refuse(
            settings,
            run,
            target,
            f"no plan is recorded for run {run.run_id} (its plan step never finished, or it is a dry run)",
        )
    if xcom is not None and xcom.get("summary") is not None:
        claimed_plan = without_approval(xcom["summary"])
        if claimed_plan != plan.summary:
            fields = sorted(
                k
                for k in claimed_plan.keys() | plan.summary.keys()
                if claimed_plan.get(k) != plan.summary.get(k)
            )
            refuse(
                settings,
                run,
                target,
                f"the plan in XCom differs from the plan recorded for run {run.run_id} in "
                f"{', '.join(fields)}: XCom was edited",
            )
    approval = None
    if plan.needs_approval:
        approval = approvals.current(settings, plan_approval_id(run.job, run.run_id))
        if approval is None:
            refuse(settings, run, target, f"the plan of run {run.run_id} needs approval and has no request")
        if approval.run_id != run.run_id:
            refuse(
                settings,
                run,
                target,
                f"the approval request belongs to run {approval.run_id}, not {run.run_id}",
            )
        if approval.plan_digest != plan.digest:
            refuse(
                settings,
                run,
                target,
                f"the approval was asked for plan sha256 {approval.plan_digest}, "
                f"the plan recorded for run {run.run_id} is {plan.digest}",
            )
        # As a remediation's execute step does: an APPROVED record counts only if its deciders still may
        # decide now (the group may have changed; a record written around `decide` must not count).
        refusal = (
            approvals.approval_refusal(settings, approval)
            if approval.status == ApprovalStatus.APPROVED
            else None
        )
        if refusal:
            refuse(settings, run, target, f"the approval of run {run.run_id} does not count: {refusal}")
    if xcom is not None:
        stored = (
            None
            if approval is None or approval.status == ApprovalStatus.PENDING
            else {"decision": approval.status.value.lower(), "operator": approval.approver or "automated"}
        )
        claimed = _decision_view(xcom.get("decision"))
        if claimed != stored:
            refuse(
                settings,
                run,
                target,
                f"the decision in XCom ({_show(claimed)}) is not the approval store's ({_show(stored)}) "
                f"for run {run.run_id}: XCom was edited",
            )
    return Authority(plan, approval)


def _verdict(plan: RecordedPlan, approval: ApprovalRecord | None) -> str:
    if not plan.needs_approval or approval is None:
        return "the plan asked no approval for them (none was needed when it was made)"
    who = approval.approver or "nobody"
    if approval.status == ApprovalStatus.APPROVED:
        if approval.expired():
            return f"approved by {who}, but the approval expired at {approval.expires_at} before deletion"
        return f"approved by {who}"
    if approval.status == ApprovalStatus.REJECTED:
        return f"rejected by {who}: {approval.decision_reason or '(no reason given)'}"
    if approval.status == ApprovalStatus.EXPIRED:
        return f"the request expired at {approval.expires_at} with no decision"
    return "not decided"


# --- for the DAG files (no Airflow import here: plain values from the task context) ----------------
def maintenance_dag_args(job: str, doc: str | None, settings: Settings, *, tag: str, **own: Any) -> dict:
    """What every maintenance DAG is declared with beside its schedule (which the DAG file names itself):
    one run at a time and no catch-up (a missed run is not made up; the next one does its work), the
    platform's retries; ``own`` adds the job's own arguments (``dagrun_timeout``, ``params``)."""
    return {
        "dag_id": job,
        "doc_md": doc,
        "start_date": datetime(2026, 1, 1, tzinfo=UTC),
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["aiops", "maintenance", tag],
        "default_args": default_args(settings),
        **own,
    }


def default_args(settings: Settings) -> dict:
    return {
        "owner": "aiops",
        "retries": settings.airflow.task_retries,
        "retry_delay": timedelta(seconds=settings.airflow.task_retry_delay_seconds),
        "retry_exponential_backoff": True,
    }


def run_info(job: str, context: dict) -> RunInfo:
    """The run's facts from an Airflow task context. A run triggered by hand may have no logical date:
    its run_after stands in."""
    dag_run = context["dag_run"]
    moment = context.get("logical_date") or getattr(dag_run, "logical_date", None) or dag_run.run_after
    return RunInfo(job, dag_run.run_id, moment)
