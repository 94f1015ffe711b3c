from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matcarv_aiops import dynamo
from matcarv_aiops.maintenance import securityhub_sync
from matcarv_aiops.maintenance.common import JobFailed
from matcarv_aiops.models import iso_utc

NOW = datetime.now(UTC)


def _finding(i: int, updated: datetime) -> dict:
    return {
        "SchemaVersion": "2018-10-08",
        "Id": f"finding-{i}",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        "GeneratorId": "g",
        "AwsAccountId": "123456789012",
        "Types": ["Software and Configuration Checks"],
        "CreatedAt": iso_utc(updated),
        "UpdatedAt": iso_utc(updated),
        "Severity": {"Label": "HIGH"},
        "Title": f"finding {i}",
        "Description": "d",
        "Resources": [{"Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::b{i}"}],
    }


@pytest.fixture
def hub(aws):
    client = boto3.client("securityhub", region_name="us-east-1")
    client.enable_security_hub()
    return client


def _table(aws) -> dict[str, dict]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    items = ddb.scan(TableName=aws.platform.findings_table)["Items"]
    return {i["findingId"]["S"]: i for i in items}


def test_sync_upserts_pages_and_moves_the_watermark(aws, hub, clients, run_for, audit_rows):
    base = NOW - timedelta(hours=2)
    hub.batch_import_findings(Findings=[_finding(i, base + timedelta(seconds=i)) for i in range(130)])
    summary = securityhub_sync.sync(aws, clients, run_for("securityhub_findings_sync"), now=NOW)
    assert summary["findings"] == 130 and summary["pages"] == 2
    assert summary["watermark"] == iso_utc(base + timedelta(seconds=129))
    table = _table(aws)
    assert len(table) == 130 and table["finding-7"]["severity"]["S"] == "HIGH"
    assert securityhub_sync.read_watermark(aws, clients) == summary["watermark"]
    [row] = audit_rows("securityhub_findings_sync")
    assert "upserted 130" in row["action"]

    # Next run: only the finding updated since the watermark is written again.
    hub.batch_import_findings(Findings=[{**_finding(3, NOW - timedelta(minutes=1)), "Title": "changed"}])
    again = securityhub_sync.sync(aws, clients, run_for("securityhub_findings_sync", "r2"), now=NOW)
    assert again["findings"] == 2  # the changed one, and the one at the watermark (inclusive)
    assert _table(aws)["finding-3"]["title"]["S"] == "changed" and len(_table(aws)) == 130


def test_the_request_filters_by_updated_at_sorted_100_per_page(aws, hub, clients, run_for):
    seen = []

    def record(params, **_):
        seen.append(params)

    events = clients("securityhub").meta.events  # clients are shared by the process: unregister after
    events.register("provide-client-params.securityhub.GetFindings", record)
    try:
        securityhub_sync.sync(aws, clients, run_for("securityhub_findings_sync"), now=NOW)
    finally:
        events.unregister("provide-client-params.securityhub.GetFindings", record)
    assert seen[0]["MaxResults"] == 100
    assert seen[0]["Filters"]["UpdatedAt"] == [{"Start": securityhub_sync.EPOCH, "End": iso_utc(NOW)}]
    assert seen[0]["SortCriteria"] == [{"Field": "UpdatedAt", "SortOrder": "asc"}]


def test_failed_write_keeps_the_watermark_and_the_rerun_completes(aws, hub, clients, run_for, monkeypatch):
    base = NOW - timedelta(hours=1)
    hub.batch_import_findings(Findings=[_finding(i, base + timedelta(seconds=i)) for i in range(60)])
    ddb = clients("dynamodb")
    real = ddb.batch_write_item
    calls = {"n": 0}

    def unprocessed_forever_after_two(**kwargs):
        if aws.platform.findings_table not in kwargs["RequestItems"]:
            return real(**kwargs)  # the audit writer shares the process's client
        calls["n"] += 1
        if calls["n"] <= 2:
            return real(**kwargs)
        return {"UnprocessedItems": kwargs["RequestItems"]}

    monkeypatch.setattr(ddb, "batch_write_item", unprocessed_forever_after_two)
    monkeypatch.setattr(dynamo.time, "sleep", lambda s: None)
    with pytest.raises(JobFailed):
        securityhub_sync.sync(aws, clients, run_for("securityhub_findings_sync"), now=NOW)
    assert securityhub_sync.read_watermark(aws, clients) == securityhub_sync.EPOCH
    assert len(_table(aws)) == 50

    monkeypatch.setattr(ddb, "batch_write_item", real)
    summary = securityhub_sync.sync(aws, clients, run_for("securityhub_findings_sync", "retry"), now=NOW)
    assert summary["findings"] == 60 and len(_table(aws)) == 60
    assert summary["watermark"] == iso_utc(base + timedelta(seconds=59))


def test_unprocessed_items_are_retried(aws, hub, clients, run_for, monkeypatch):
    hub.batch_import_findings(Findings=[_finding(i, NOW - timedelta(minutes=5)) for i in range(10)])
    ddb = clients("dynamodb")
    real = ddb.batch_write_item
    state = {"first": True}

    def half_then_rest(**kwargs):
        if aws.platform.findings_table not in kwargs["RequestItems"]:
            return real(**kwargs)  # the audit writer shares the process's client
        items = kwargs["RequestItems"][aws.platform.findings_table]
        if state["first"]:
            state["first"] = False
            real(RequestItems={aws.platform.findings_table: items[:4]})
            return {"UnprocessedItems": {aws.platform.findings_table: items[4:]}}
        return real(**kwargs)

    monkeypatch.setattr(ddb, "batch_write_item", half_then_rest)
    assert (
        securityhub_sync.sync(aws, clients, run_for("securityhub_findings_sync"), now=NOW)["findings"] == 10
    )
    assert len(_table(aws)) == 10


def test_throttled_get_findings_is_retried(aws, hub, clients, run_for, throttle):
    hub.batch_import_findings(Findings=[_finding(i, NOW - timedelta(minutes=5)) for i in range(3)])
    throttled = throttle("GetFindings", 3)
    throttle("BatchWriteItem", 1)
    assert securityhub_sync.sync(aws, clients, run_for("securityhub_findings_sync"), now=NOW)["findings"] == 3
    assert throttled["GetFindings"] == 3 and throttled["BatchWriteItem"] == 1
    assert len(_table(aws)) == 3
