"""ebs_snapshot_retention: delete this account's EBS snapshots older than the retention period,
non-production only.

Deleting data needs a human unless it can be undone (humans approve what cannot be undone). A snapshot
that a Recycle Bin retention rule covers can be restored for the rule's retention period, so it is
deleted directly; the rest of the plan waits for a human approval of the whole plan. Never deleted:
production snapshots, snapshots an AMI uses, snapshots AWS Backup manages, exempt snapshots (tag or
exemption table).

Two steps, so a crash costs nothing:
- ``plan``: stream every page of DescribeSnapshots, write the plan (one line per snapshot) to S3 and
  point ``in-progress.json`` at it. A plan left in progress by a run that died is settled first: its
  authorised snapshots that are gone were deleted by that run and get their audit record now.
- ``execute``: delete the plan's snapshots one by one (there is no batch delete), an audit record per
  snapshot (written 25 at a time), then clear the pointer. A retried task deletes what is left; a
  snapshot already gone counts as deleted by the attempt that died.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from matcarv_aiops.maintenance.common import (
    Clients,
    JobFailed,
    PlanWriter,
    RunInfo,
    audit,
    audit_writer,
    delete_key,
    get_json,
    put_json,
    read_plan,
    request_plan_approval,
)
from matcarv_aiops.models import Outcome, Target, iso_utc
from matcarv_aiops.safety import SafetyStore, is_production
from matcarv_aiops.settings import Settings

JOB = "ebs_snapshot_retention"
BACKUP_DESCRIPTION = "This snapshot is created by the AWS Backup service"
_EXEMPTION_CHUNK = 100  # BatchGetItem's limit
_RECOVERY_CHUNK = 200  # snapshot ids per DescribeSnapshots filter


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
    """List, filter and write the plan. Returns a summary (no resource lists: those are in S3)."""
    if not dry_run:
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
    if uncovered:
        summary["approval"] = request_plan_approval(
            settings,
            run,
            target=f"arn:aws:ec2:{settings.platform.region}::snapshot/*",
            action=f"delete {uncovered} EBS snapshots older than "
            f"{settings.maintenance.snapshot_retention_days} days "
            f"that no Recycle Bin rule covers (plan: {plan_uri})",
            plan_uri=plan_uri,
            rollback=_rollback({}),
            why="deleting data that no Recycle Bin rule keeps cannot be undone",
        )
    put_json(clients, _pointer_key(settings), {"plan_key": plan_key, "runId": run.run_id, "approved": False})
    return summary


# --- execute ------------------------------------------------------------------------------------
def _delete_all(
    settings: Settings,
    clients: Clients,
    run: RunInfo,
    entries: Iterator[dict],
    approved: bool,
    operator: str,
    failures: list[str],
):
    ec2 = clients("ec2")
    for entry in entries:
        if not entry["rule"] and not approved:
            continue
        by = "automated" if entry["rule"] else operator  # Recycle Bin-covered ones needed no approval
        note = ""
        try:
            ec2.delete_snapshot(SnapshotId=entry["id"])
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "InvalidSnapshot.NotFound":
                note = " (already gone on retry: deleted by an interrupted attempt of this run)"
            else:
                failures.append(entry["id"])
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
        yield _deleted_record(settings, run, entry, by, note)


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


def execute(settings: Settings, clients: Clients, run: RunInfo, summary: dict, decision: dict | None) -> dict:
    """Delete what the plan authorises: Recycle Bin-covered snapshots always, the rest only when a
    human approved the plan."""
    if summary["dry_run"]:
        return {
            "deleted": 0,
            "dry_run": True,
            "would_delete": summary["to_delete"],
            "plan_uri": summary["plan_uri"],
        }
    approved = bool(decision and decision["decision"] == "approved")
    operator = decision["operator"] if decision and approved else "automated"
    writer = audit_writer(settings)
    if summary["needs_approval"] and not approved:
        verdict = decision["decision"] if decision else "not decided"
        writer.write_batch(
            [
                audit(
                    run,
                    key=f"{run.run_id}|approval",
                    target=f"arn:aws:ec2:{settings.platform.region}::snapshot/*",
                    action=f"did not delete {summary['needs_approval']} EBS snapshots without a "
                    f"Recycle Bin rule: approval {verdict} (plan {summary['plan_uri']})",
                    outcome=Outcome.SKIPPED,
                    rollback="nothing changed",
                    operator=(decision or {}).get("operator", "automated"),
                )
            ]
        )
    put_json(
        clients,
        _pointer_key(settings),
        {"plan_key": summary["plan_key"], "runId": run.run_id, "approved": approved, "operator": operator},
    )
    _, entries = read_plan(clients, summary["plan_key"])
    failures: list[str] = []
    deleted = writer.write_batch(_delete_all(settings, clients, run, entries, approved, operator, failures))
    deleted -= len(failures)
    if failures:
        raise JobFailed(
            f"{len(failures)} snapshots could not be deleted (first: {failures[:5]}); "
            f"{deleted} were, each audited"
        )
    delete_key(clients, _pointer_key(settings))
    return {"deleted": deleted, "approved": approved, "plan_uri": summary["plan_uri"]}


# --- a plan left in progress by a run that died -------------------------------------------------
def settle_interrupted(settings: Settings, clients: Clients, run: RunInfo) -> int:
    """Audit the snapshots an interrupted run deleted but did not audit; returns how many."""
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

    settled = audit_writer(settings).write_batch(records())
    delete_key(clients, _pointer_key(settings))
    return settled
