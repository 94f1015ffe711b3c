"""ebs_snapshot_retention: delete this account's EBS snapshots older than the retention period,
non-production only.

Deleting data needs a human unless it can be undone (humans approve what cannot be undone). A snapshot
that a Recycle Bin retention rule covers can be restored for the rule's retention period, so it is
deleted directly; the rest of the plan waits for a human approval of the whole plan. Never deleted:
production snapshots, snapshots an AMI uses, snapshots AWS Backup manages, exempt snapshots (tag or
exemption table).

Two steps, so a crash costs nothing:
- ``plan``: stream every page of DescribeSnapshots, write the plan (one line per snapshot) to S3, record
  it (key, sha256, summary) in the state table and point ``in-progress.json`` at it. A plan left in
  progress by a run that died is settled first: its authorised snapshots that are gone were deleted by
  that run and get their audit record now.
- ``execute``: from the recorded plan and the approval store (never from XCom, see ``common.authorise``),
  delete the plan's snapshots one by one (there is no batch delete), each re-checked just before, an
  audit record per snapshot (written 25 at a time), then clear the pointer. A retried task deletes what
  is left; a snapshot already gone counts as deleted by the attempt that died, unless it is recorded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from matcarv_aiops.maintenance.common import (
    Authority,
    Clients,
    JobFailed,
    JobPermissions,
    PlanTampered,
    PlanWriter,
    RecordedPlan,
    RunInfo,
    audit,
    audit_writer,
    audited,
    authorise,
    chunked,
    delete_key,
    execution_id,
    get_json,
    put_json,
    read_plan,
    read_verified_plan,
    record_plan,
    recorded_plan,
    refuse,
    request_plan_approval,
    without_approval,
)
from matcarv_aiops.models import Outcome, Target, iso_utc
from matcarv_aiops.safety import SafetyStore, is_production
from matcarv_aiops.settings import Settings

JOB = "ebs_snapshot_retention"
# Lists snapshots, the AMIs that use them and the Recycle Bin rules that would keep them, and deletes
# the expired ones; plans, approvals and audit records are the platform's (execution role).
PERMISSIONS = JobPermissions(
    actions=(
        "ec2:DescribeSnapshots",
        "ec2:DescribeImages",
        "ec2:DeleteSnapshot",
        "rbin:ListRules",
        "rbin:GetRule",
    )
)
BACKUP_DESCRIPTION = "This snapshot is created by the AWS Backup service"
_EXEMPTION_CHUNK = 100  # BatchGetItem's limit
_RECOVERY_CHUNK = 200  # snapshot ids per DescribeSnapshots filter
# Snapshots re-checked together (one DescribeSnapshots, one DescribeImages, one exemption read) just
# before they are deleted: the facts are at most this many deletions old when each one is acted on.
_RECHECK_CHUNK = 50
_ALL_SNAPSHOTS = "arn:aws:ec2:{region}::snapshot/*"


def _prefix(settings: Settings) -> str:
    return f"maintenance/{JOB}/{settings.platform.region}"


def _pointer_key(settings: Settings) -> str:
    return f"{_prefix(settings)}/in-progress.json"


# --- Recycle Bin --------------------------------------------------------------------------------
def recycle_bin_rules(clients: Clients) -> list[dict]:
    """The region's available retention rules for EBS snapshots, with their tags (GetRule per rule:
    ListRules does not say which resources a rule covers)."""
    rbin = clients("rbin")
    rules, token = [], None
    while True:
        page = rbin.list_rules(ResourceType="EBS_SNAPSHOT", **({"NextToken": token} if token else {}))
        for summary in page.get("Rules", []):
            rule = rbin.get_rule(Identifier=summary["Identifier"])
            if rule.get("Status", "available") == "available":
                rules.append(rule)
        token = page.get("NextToken")
        if not token:
            return rules


def _tag_matches(tags: dict[str, str], wanted: list[dict]) -> bool:
    return any(
        t["ResourceTagKey"] in tags and t.get("ResourceTagValue") in (None, "", tags[t["ResourceTagKey"]])
        for t in wanted
    )


def covering_rule(rules: list[dict], tags: dict[str, str]) -> dict | None:
    """The rule that would keep this snapshot in the Recycle Bin when deleted, or None."""
    for rule in rules:
        if rule.get("ResourceTags"):
            if _tag_matches(tags, rule["ResourceTags"]):
                return rule
        elif not _tag_matches(tags, rule.get("ExcludeResourceTags") or []):
            return rule
    return None


def _retention(rule: dict) -> str:
    period = rule.get("RetentionPeriod", {})
    return f"{period.get('RetentionPeriodValue', '?')} {period.get('RetentionPeriodUnit', 'DAYS').lower()}"


def _rollback(entry: dict) -> str:
    if entry.get("rule"):
        return (
            f"restore from the Recycle Bin within {entry['retention']} of deletion (rule {entry['rule']}): "
            f"aws ec2 restore-snapshot-from-recycle-bin --snapshot-id {entry['id']}"
        )
    return "none: deleted with human approval, no Recycle Bin rule covered it (data cannot be restored)"


# --- plan ---------------------------------------------------------------------------------------
def _ami_snapshots(clients: Clients) -> set[str]:
    used = set()
    for page in clients("ec2").get_paginator("describe_images").paginate(Owners=["self"]):
        for image in page["Images"]:
            for mapping in image.get("BlockDeviceMappings", []):
                if mapping.get("Ebs", {}).get("SnapshotId"):
                    used.add(mapping["Ebs"]["SnapshotId"])
    return used


def _arn(settings: Settings, snapshot: dict) -> str:
    owner = snapshot.get("OwnerId", "")
    return f"arn:aws:ec2:{settings.platform.region}:{owner}:snapshot/{snapshot['SnapshotId']}"


def _skip_reason(
    settings: Settings, snapshot: dict, tags: dict[str, str], ami_snapshots: set[str], safety: SafetyStore
) -> str | None:
    target = Target(
        arn=_arn(settings, snapshot),
        resource_id=snapshot["SnapshotId"],
        region=settings.platform.region,
        account=snapshot.get("OwnerId", ""),
    )
    if is_production(target, tags, settings):
        return "production"
    if snapshot["SnapshotId"] in ami_snapshots:
        return "used_by_ami"
    if any(k.startswith("aws:backup:") for k in tags) or snapshot.get("Description", "").startswith(
        BACKUP_DESCRIPTION
    ):
        return "aws_backup"
    if safety.tag_exemption(tags):
        return "exempt"
    return None


def plan(settings: Settings, clients: Clients, run: RunInfo, *, now: datetime, dry_run: bool = False) -> dict:
    """List, filter and write the plan, and record it (S3 key, sha256, summary) in the state table, where
    the deleting task reads it. Returns a summary (no resource lists: those are in S3). A retried plan
    step returns the plan already recorded for this run instead of making another."""
    if not dry_run:
        recorded = recorded_plan(settings, JOB, run.run_id)
        if recorded is not None:
            return _plan_made(settings, clients, run, recorded)
        settle_interrupted(settings, clients, run)
    rules = recycle_bin_rules(clients)
    ami_snapshots = _ami_snapshots(clients)
    safety = SafetyStore(settings)
    cutoff = now - timedelta(days=settings.maintenance.snapshot_retention_days)
    writer = PlanWriter(
        {
            "job": JOB,
            "runId": run.run_id,
            "createdAt": iso_utc(now),
            "cutoff": iso_utc(cutoff),
            "dryRun": dry_run,
        }
    )
    skipped: dict[str, int] = {}
    covered = uncovered = 0
    sample: list[str] = []
    pending: list[dict] = []  # candidates waiting for the exemption-table lookup, <= 100

    def flush() -> None:
        nonlocal covered, uncovered
        exempt = safety.table_exemptions([entry["arn"] for entry in pending])
        for entry in pending:
            if entry["arn"] in exempt:
                skipped["exempt"] = skipped.get("exempt", 0) + 1
                continue
            writer.add(entry)
            covered += bool(entry["rule"])
            uncovered += not entry["rule"]
            if len(sample) < 20:
                sample.append(entry["id"])
        pending.clear()

    paginator = clients("ec2").get_paginator("describe_snapshots")
    for page in paginator.paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 1000}):
        for snapshot in page["Snapshots"]:
            if snapshot.get("State") != "completed" or snapshot["StartTime"] >= cutoff:
                continue
            tags = {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}
            reason = _skip_reason(settings, snapshot, tags, ami_snapshots, safety)
            if reason:
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            rule = covering_rule(rules, tags)
            pending.append(
                {
                    "id": snapshot["SnapshotId"],
                    "arn": _arn(settings, snapshot),
                    "startTime": iso_utc(snapshot["StartTime"]),
                    "volumeId": snapshot.get("VolumeId", ""),
                    "sizeGiB": snapshot.get("VolumeSize", 0),
                    "rule": rule["Identifier"] if rule else None,
                    "retention": _retention(rule) if rule else None,
                }
            )
            if len(pending) == _EXEMPTION_CHUNK:
                flush()
    flush()

    kind = "dry-runs" if dry_run else "plans"
    plan_key = f"{_prefix(settings)}/{kind}/{run.safe_run_id}.jsonl"
    plan_uri = writer.upload(clients, plan_key)
    summary = {
        "plan_key": plan_key,
        "plan_uri": plan_uri,
        "plan_digest": writer.digest,
        "dry_run": dry_run,
        "to_delete": covered + uncovered,
        "recycle_bin": covered,
        "needs_approval": uncovered,
        "skipped": skipped,
        "sample": sample,
        "cutoff": iso_utc(cutoff),
        "approval": None,
    }
    if dry_run:
        return summary
    recorded = record_plan(
        settings,
        run,
        plan_key=plan_key,
        plan_uri=plan_uri,
        digest=writer.digest,
        needs_approval=bool(uncovered),
        summary=without_approval(summary),
    )
    return _plan_made(settings, clients, run, recorded)


def _plan_made(settings: Settings, clients: Clients, run: RunInfo, recorded: RecordedPlan) -> dict:
    """After the plan is recorded (or found recorded by a retried plan step): its approval request, bound
    to the plan's digest (a retry finds it there), and the pointer to the plan in progress."""
    summary = {**recorded.summary, "approval": None}
    if recorded.needs_approval:
        summary["approval"] = request_plan_approval(
            settings,
            run,
            target=_ALL_SNAPSHOTS.format(region=settings.platform.region),
            action=f"delete {summary['needs_approval']} EBS snapshots older than "
            f"{settings.maintenance.snapshot_retention_days} days "
            f"that no Recycle Bin rule covers (plan: {summary['plan_uri']}, sha256 {summary['plan_digest']})",
            plan_uri=summary["plan_uri"],
            plan_digest=summary["plan_digest"],
            rollback=_rollback({}),
            why="deleting data that no Recycle Bin rule keeps cannot be undone",
        )
    put_json(
        clients,
        _pointer_key(settings),
        {"plan_key": summary["plan_key"], "runId": run.run_id, "approved": False},
    )
    return summary


# --- execute ------------------------------------------------------------------------------------
_SKIP_WORDS = {
    "production": "it is production now",
    "used_by_ami": "an AMI uses it now",
    "aws_backup": "AWS Backup manages it",
    "exempt": "it is exempt now",
    "not_completed": "it is not in state completed",
    "not_older_than_cutoff": "it is not older than the plan's cutoff",
}


@dataclass
class _Tally:
    deleted: int = 0
    not_authorised: int = 0  # needed a human, and no unexpired approval when its turn came
    skipped: Counter = field(default_factory=Counter)  # failed the re-check, by reason
    failures: list[str] = field(default_factory=list)


def _describe(ec2, ids: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for page in ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": ids}]
    ):
        found.update((s["SnapshotId"], s) for s in page["Snapshots"])
    return found


def _recheck(
    settings: Settings,
    snapshot: dict,
    tags: dict[str, str],
    ami_snapshots: set[str],
    table_exempt: dict[str, str],
    safety: SafetyStore,
    cutoff: datetime,
) -> str | None:
    """Why this planned snapshot must not be deleted now, from facts read just before; None: go ahead."""
    if snapshot.get("State") != "completed":
        return "not_completed"
    reason = _skip_reason(settings, snapshot, tags, ami_snapshots, safety)
    if reason:
        return reason
    if _arn(settings, snapshot) in table_exempt:
        return "exempt"
    if snapshot["StartTime"] >= cutoff:
        return "not_older_than_cutoff"
    return None


def _skipped_record(run: RunInfo, entry: dict, reason: str, cutoff: datetime):
    why = _SKIP_WORDS[reason] + (f" ({iso_utc(cutoff)})" if reason == "not_older_than_cutoff" else "")
    return audit(
        run,
        key=f"{entry['id']}|delete-skipped|{run.run_id}",
        target=entry["arn"],
        action=f"did not delete EBS snapshot {entry['id']} of the plan: {why} (re-checked just before "
        "deletion)",
        outcome=Outcome.SKIPPED,
        rollback="nothing changed",
    )


def _delete_checked(
    settings: Settings,
    clients: Clients,
    run: RunInfo,
    entries: Iterator[dict],
    authority: Authority,
    cutoff: datetime,
    tally: _Tally,
):
    """Delete the plan's snapshots that pass the re-check, yielding one audit record per snapshot acted
    on or skipped. Whether a snapshot needs a human is decided again from the live Recycle Bin rules and
    tags: a plan's word that a rule covers it is not enough."""
    ec2 = clients("ec2")
    safety = SafetyStore(settings)
    rules = recycle_bin_rules(clients)
    for chunk in chunked(entries, _RECHECK_CHUNK):
        live = _describe(ec2, [entry["id"] for entry in chunk])
        ami_snapshots = _ami_snapshots(clients)
        table_exempt = safety.table_exemptions([entry["arn"] for entry in chunk])
        recorded = audited(
            settings,
            [execution_id(JOB, f"{entry['id']}|delete") for entry in chunk if entry["id"] not in live],
        )
        for entry in chunk:
            snapshot = live.get(entry["id"])
            if snapshot is None:  # an interrupted attempt of this run deleted it, while it was allowed to
                if execution_id(JOB, f"{entry['id']}|delete") in recorded:
                    continue  # and recorded it: a cleared, re-run task leaves the record as it is
                if entry["rule"] or authority.approver:
                    tally.deleted += 1
                    by = "automated" if entry["rule"] else authority.operator
                    yield _deleted_record(settings, run, entry, by, _GONE_ON_RETRY)
                continue
            tags = {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}
            reason = _recheck(settings, snapshot, tags, ami_snapshots, table_exempt, safety, cutoff)
            if reason:
                tally.skipped[reason] += 1
                yield _skipped_record(run, entry, reason, cutoff)
                continue
            rule = covering_rule(rules, tags)
            if rule is None and not authority.approved_now():
                tally.not_authorised += 1
                continue
            fresh = {**entry, "rule": rule["Identifier"] if rule else None}
            fresh["retention"] = _retention(rule) if rule else None
            by = "automated" if rule else authority.operator  # Recycle Bin-covered ones need no approval
            note = ""
            try:
                ec2.delete_snapshot(SnapshotId=entry["id"])
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code == "InvalidSnapshot.InUse":  # an AMI registered since the re-check: EC2 refuses
                    tally.skipped["used_by_ami"] += 1
                    yield _skipped_record(run, entry, "used_by_ami", cutoff)
                    continue
                if code == "InvalidSnapshot.NotFound":
                    note = _GONE_ON_RETRY
                else:
                    tally.failures.append(entry["id"])
                    yield audit(
                        run,
                        key=f"{entry['id']}|delete|failed|{run.run_id}",
                        target=entry["arn"],
                        action=f"delete EBS snapshot {entry['id']} failed: {code}: "
                        f"{exc.response['Error'].get('Message', '')}",
                        outcome=Outcome.FAILURE,
                        rollback="nothing changed",
                        operator=by,
                    )
                    continue
            tally.deleted += 1
            yield _deleted_record(settings, run, fresh, by, note)


_GONE_ON_RETRY = " (already gone on retry: deleted by an interrupted attempt of this run)"


def _deleted_record(settings: Settings, run: RunInfo, entry: dict, operator: str, note: str = ""):
    return audit(
        run,
        key=f"{entry['id']}|delete",
        target=entry["arn"],
        action=f"deleted EBS snapshot {entry['id']} of {entry['volumeId'] or 'unknown volume'} "
        f"({entry['sizeGiB']} GiB, started {entry['startTime']}), older than "
        f"{settings.maintenance.snapshot_retention_days} days{note}",
        outcome=Outcome.SUCCESS,
        rollback=_rollback(entry),
        operator=operator,
    )


def _dry_run_result(settings: Settings, clients: Clients, run: RunInfo) -> dict:
    key = f"{_prefix(settings)}/dry-runs/{run.safe_run_id}.jsonl"
    _, entries = read_plan(clients, key)
    return {
        "deleted": 0,
        "dry_run": True,
        "would_delete": sum(1 for _ in entries),
        "plan_uri": f"s3://{settings.platform.diagnostics_bucket}/{key}",
    }


def execute(
    settings: Settings, clients: Clients, run: RunInfo, *, dry_run: bool, xcom: dict | None = None
) -> dict:
    """Delete what this run's recorded plan authorises: Recycle Bin-covered snapshots always, the rest
    only while this run's approval request is APPROVED for this plan's digest and unexpired. The plan
    and the decision come from the state table, the approval store and S3 (digest checked), never from
    XCom: ``xcom`` (what Airflow handed the task) is only compared with them, and any difference, a plan
    changed in S3, or no recorded plan refuses everything (``PlanRefused``, with its audit record).
    Each snapshot is re-checked just before deletion; one that fails is skipped, with its record."""
    if dry_run:  # from the run's params, not from the plan step's result
        return _dry_run_result(settings, clients, run)
    target = _ALL_SNAPSHOTS.format(region=settings.platform.region)
    authority = authorise(settings, run, target=target, xcom=xcom)
    plan = authority.plan
    if plan.plan_key is None or plan.digest is None:
        refuse(settings, run, target, f"the plan recorded for run {run.run_id} names no plan file")
    try:
        _, entries = read_verified_plan(clients, plan.plan_key, plan.digest)
    except PlanTampered as exc:
        refuse(settings, run, target, str(exc))
    approved = authority.approver is not None
    put_json(
        clients,
        _pointer_key(settings),
        {
            "plan_key": plan.plan_key,
            "runId": run.run_id,
            "approved": approved,
            "operator": authority.operator,
        },
    )
    cutoff = datetime.fromisoformat(plan.summary["cutoff"].replace("Z", "+00:00"))
    tally = _Tally()
    writer = audit_writer(settings)
    writer.write_all(_delete_checked(settings, clients, run, entries, authority, cutoff, tally))
    if tally.not_authorised:
        writer.write(
            audit(
                run,
                key=f"{run.run_id}|approval",
                target=target,
                action=f"did not delete {tally.not_authorised} EBS snapshots without a Recycle Bin rule: "
                f"{authority.verdict()} (plan {plan.plan_uri})",
                outcome=Outcome.SKIPPED,
                rollback="nothing changed",
                operator=authority.operator,
            )
        )
    if tally.failures:
        raise JobFailed(
            f"{len(tally.failures)} snapshots could not be deleted (first: {tally.failures[:5]}); "
            f"{tally.deleted} were, each audited"
        )
    delete_key(clients, _pointer_key(settings))
    return {
        "deleted": tally.deleted,
        "approved": approved,
        "plan_uri": plan.plan_uri,
        "skipped": dict(tally.skipped),
        "not_authorised": tally.not_authorised,
    }


# --- a plan left in progress by a run that died -------------------------------------------------
def settle_interrupted(settings: Settings, clients: Clients, run: RunInfo) -> int:
    """Audit the snapshots an interrupted run deleted but did not audit; returns how many. The records
    it did write stand: only the missing ones are added."""
    pointer = get_json(clients, _pointer_key(settings))
    if not pointer:
        return 0
    previous = RunInfo(JOB, pointer["runId"], run.logical_date)
    _, entries = read_plan(clients, pointer["plan_key"])
    ec2 = clients("ec2")

    def records():
        chunk: list[dict] = []

        def gone(batch: list[dict]):
            present: set[str] = set()
            ids = [entry["id"] for entry in batch]
            for page in ec2.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": ids}]
            ):
                present.update(s["SnapshotId"] for s in page["Snapshots"])
            for entry in batch:
                if entry["id"] not in present:
                    yield _deleted_record(
                        settings,
                        previous,
                        entry,
                        "automated" if entry["rule"] else pointer.get("operator", "automated"),
                        " (audited by the next run: the run that deleted it was interrupted)",
                    )

        for entry in entries:
            if entry["rule"] or pointer.get("approved"):
                chunk.append(entry)
            if len(chunk) == _RECOVERY_CHUNK:
                yield from gone(chunk)
                chunk = []
        if chunk:
            yield from gone(chunk)

    settled = audit_writer(settings).write_all(records())
    delete_key(clients, _pointer_key(settings))
    return settled
