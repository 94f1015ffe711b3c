"""securityhub_findings_sync: copy Security Hub findings updated since the last sync into DynamoDB.

GetFindings filtered by UpdatedAt from the stored watermark (inclusive: a finding updated in the same
instant is read again rather than missed), sorted by UpdatedAt, 100 per page; each page is upserted with
BatchWriteItem, 25 items per call, UnprocessedItems retried with backoff. The watermark moves to the
newest UpdatedAt written only after every page is written, so a run that dies re-reads from the old
watermark and rewrites the same items (keyed by finding id): nothing lost, nothing doubled.

It changes no AWS resource, only the platform's own findings table; the run gets one audit record.
"""

from __future__ import annotations

import json
from datetime import datetime

from matcarv_aiops.dynamo import UnprocessedError, batch_put
from matcarv_aiops.maintenance.common import Clients, JobFailed, JobPermissions, RunInfo, audit, audit_writer
from matcarv_aiops.models import Outcome, iso_utc
from matcarv_aiops.settings import Settings

JOB = "securityhub_findings_sync"
# Reads findings only; the findings table and the watermark are the platform's (execution role).
PERMISSIONS = JobPermissions(actions=("securityhub:GetFindings",))
WATERMARK_PK = "securityhub-sync#watermark"
_PAGE = 100  # GetFindings' maximum
EPOCH = "1970-01-01T00:00:00.000Z"


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _item(finding: dict, synced_at: str) -> dict:
    resources = finding.get("Resources") or [{}]
    return {
        "findingId": {"S": finding["Id"]},
        "productArn": {"S": finding.get("ProductArn", "")},
        "awsAccountId": {"S": finding.get("AwsAccountId", "")},
        "title": {"S": finding.get("Title", "") or "(untitled)"},
        "severity": {"S": (finding.get("Severity") or {}).get("Label", "INFORMATIONAL")},
        "workflowStatus": {"S": (finding.get("Workflow") or {}).get("Status", "NEW")},
        "recordState": {"S": finding.get("RecordState", "ACTIVE")},
        "complianceStatus": {"S": (finding.get("Compliance") or {}).get("Status", "")},
        "resourceId": {"S": resources[0].get("Id", "")},
        "resourceType": {"S": resources[0].get("Type", "")},
        "updatedAt": {"S": finding["UpdatedAt"]},
        "createdAt": {"S": finding.get("CreatedAt", "")},
        "syncedAt": {"S": synced_at},
        "finding": {"S": json.dumps(finding, default=str)},
    }


def read_watermark(settings: Settings, clients: Clients) -> str:
    item = (
        clients("dynamodb")
        .get_item(
            TableName=settings.platform.state_table, Key={"pk": {"S": WATERMARK_PK}}, ConsistentRead=True
        )
        .get("Item")
    )
    return item["updatedAt"]["S"] if item else EPOCH


def _write(clients: Clients, settings: Settings, items: list[dict]) -> None:
    try:
        batch_put(clients("dynamodb"), settings.platform.findings_table, items)
    except UnprocessedError as exc:
        raise JobFailed(f"{exc}; the watermark stays where it was") from exc


def sync(settings: Settings, clients: Clients, run: RunInfo, *, now: datetime) -> dict:
    watermark = read_watermark(settings, clients)
    until = iso_utc(now)
    hub = clients("securityhub")
    newest = watermark
    written = pages = 0
    synced_at = iso_utc()
    token = None
    while True:
        kwargs = {
            "Filters": {"UpdatedAt": [{"Start": watermark, "End": until}]},
            "SortCriteria": [{"Field": "UpdatedAt", "SortOrder": "asc"}],
            "MaxResults": _PAGE,
        }
        if token:
            kwargs["NextToken"] = token
        page = hub.get_findings(**kwargs)
        pages += 1
        # The filter is the API's; checking it here too keeps the copy right under an API that ignores it.
        findings = [
            f for f in page.get("Findings", []) if watermark <= iso_utc(_parse(f["UpdatedAt"])) <= until
        ]
        if findings:
            _write(clients, settings, [_item(f, synced_at) for f in findings])
            written += len(findings)
            newest = max(newest, max(iso_utc(_parse(f["UpdatedAt"])) for f in findings))
        token = page.get("NextToken")
        if not token:
            break
    if newest != watermark:
        clients("dynamodb").put_item(
            TableName=settings.platform.state_table,
            Item={
                "pk": {"S": WATERMARK_PK},
                "updatedAt": {"S": newest},
                "runId": {"S": run.run_id},
                "syncedAt": {"S": iso_utc()},
            },
        )
    table_arn = f"arn:aws:dynamodb:{settings.platform.region}::table/{settings.platform.findings_table}"
    audit_writer(settings).write(
        audit(
            run,
            key=f"{run.run_id}|sync",
            target=table_arn,
            action=f"upserted {written} Security Hub findings updated from {watermark} to {until} "
            f"({pages} pages); watermark {watermark} -> {newest}",
            outcome=Outcome.SUCCESS,
            rollback="none needed: a copy of Security Hub data; the next sync rewrites it",
        )
    )
    return {"findings": written, "pages": pages, "watermark_before": watermark, "watermark": newest}
