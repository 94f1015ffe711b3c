"""The audit table's indexes (by target, by day), ``query_audit`` over them, and ``aiops audit``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from matcarv_aiops.audit import (
    AUDIT_INDEXES,
    AuditQuery,
    AuditWriter,
    BadAuditQuery,
    query_audit,
)
from matcarv_aiops.aws import hub_client
from matcarv_aiops.cli import main
from matcarv_aiops.models import AuditRecord, Outcome, iso_utc

BUCKET = "arn:aws:s3:::public-bucket"
OTHER = "arn:aws:s3:::other-bucket"
NOW = datetime.now(UTC).replace(microsecond=0)


def record(at: datetime, *, target=BUCKET, outcome=Outcome.SUCCESS, runbook="remediate_s3_public_access"):
    return AuditRecord(
        execution_id=str(uuid.uuid4()),
        timestamp=iso_utc(at),
        trigger="{}",
        runbook=runbook,
        target_resource=target,
        action="SKIPPED: rejected by alice: not during the freeze" if outcome is Outcome.SKIPPED else "fixed",
        outcome=outcome,
        operator="alice",
        rollback_plan="put it back",
    )


def test_records_carry_their_day_and_read_back_without_it(aws):
    at = datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC)
    written = record(at)
    assert AuditWriter(aws).write(written)
    item = hub_client("dynamodb", aws).get_item(
        TableName=aws.platform.audit_table, Key={"executionId": {"S": written.execution_id}}
    )["Item"]
    assert item["day"] == {"S": "2026-11-29"}
    assert AuditWriter(aws).read(written.execution_id) == written


def test_the_audit_table_has_the_two_indexes(aws):
    table = hub_client("dynamodb", aws).describe_table(TableName=aws.platform.audit_table)["Table"]
    indexes = {
        index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
        for index in table["GlobalSecondaryIndexes"]
    }
    assert (
        indexes
        == AUDIT_INDEXES
        == {
            "byTarget": ("targetResource", "timestamp"),
            "byDay": ("day", "timestamp"),
        }
    )


def test_one_targets_history_reads_only_that_targets_items(aws):
    mine = [record(NOW - timedelta(hours=n)) for n in range(5)]
    AuditWriter(aws).write_all([*mine, *(record(NOW - timedelta(hours=n), target=OTHER) for n in range(40))])
    page = query_audit(aws, AuditQuery(since=NOW - timedelta(days=1), until=NOW, target=BUCKET), limit=50)
    assert [r.execution_id for r in page.records] == [r.execution_id for r in mine]  # newest first
    assert page.items_read == 5
    assert page.next_token is None


def test_a_time_range_pages_through_days_newest_first(aws):
    records = [record(NOW - timedelta(hours=7 * n)) for n in range(12)]  # across 3 to 4 days
    AuditWriter(aws).write_all(records)
    query = AuditQuery(since=NOW - timedelta(hours=7 * 11), until=NOW)
    seen, token = [], None
    while True:
        page = query_audit(aws, query, limit=5, start=token)
        assert len(page.records) <= 5
        seen += page.records
        token = page.next_token
        if token is None:
            break
    assert [r.execution_id for r in seen] == [r.execution_id for r in records]


def test_a_range_leaves_out_what_is_outside_it(aws):
    inside, before = record(NOW - timedelta(days=1)), record(NOW - timedelta(days=3))
    AuditWriter(aws).write_all([inside, before])
    page = query_audit(aws, AuditQuery(since=NOW - timedelta(days=2), until=NOW))
    assert [r.execution_id for r in page.records] == [inside.execution_id]


def test_outcome_and_runbook_filter_either_index(aws):
    skipped = record(NOW - timedelta(minutes=1), outcome=Outcome.SKIPPED)
    other = record(NOW - timedelta(minutes=2), runbook="remediate_sg_open_ssh")
    AuditWriter(aws).write_all([skipped, other, record(NOW - timedelta(minutes=3))])
    since = NOW - timedelta(hours=1)
    by_outcome = AuditQuery(since=since, until=NOW, target=BUCKET, outcome=Outcome.SKIPPED)
    assert [r.execution_id for r in query_audit(aws, by_outcome).records] == [skipped.execution_id]
    by_runbook = AuditQuery(since=since, until=NOW, runbooks=("remediate_sg_open_ssh",))
    assert [r.execution_id for r in query_audit(aws, by_runbook).records] == [other.execution_id]


def test_queries_never_scan(aws, monkeypatch):
    client = hub_client("dynamodb", aws)

    def no_scan(**_):
        raise AssertionError("the audit trail must be read through its indexes")

    monkeypatch.setattr(client, "scan", no_scan)
    AuditWriter(aws).write(record(NOW))
    assert query_audit(aws, AuditQuery(since=NOW - timedelta(days=1), until=NOW)).records


def test_bad_queries_are_refused(aws):
    with pytest.raises(BadAuditQuery, match="is after until"):
        AuditQuery(since=NOW, until=NOW - timedelta(days=1))
    with pytest.raises(BadAuditQuery, match="page token"):
        query_audit(aws, AuditQuery(since=NOW - timedelta(days=1), until=NOW), start="not-a-token")
    with pytest.raises(BadAuditQuery, match="limit"):
        query_audit(aws, AuditQuery(since=NOW - timedelta(days=1), until=NOW), limit=0)


def test_the_cli_lists_json_and_a_table(aws, capsys):
    skipped = record(NOW - timedelta(minutes=5), outcome=Outcome.SKIPPED)
    AuditWriter(aws).write_all([skipped, record(NOW - timedelta(minutes=6), target=OTHER)])
    assert main(["audit", "--target", BUCKET, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["executionId"] for r in listed["records"]] == [skipped.execution_id]
    assert listed["nextToken"] is None
    assert main(["audit", "--outcome", "skipped", "--remediation", "s3_public_access", "--since", "1d"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["TIMESTAMP", "OUTCOME", "RUNBOOK", "TARGET", "OPERATOR", "ACTION"]
    assert (
        len(table) == 2 and "SKIPPED" in table[1] and BUCKET in table[1] and "rejected by alice" in table[1]
    )


def test_the_cli_pages(aws, capsys):
    AuditWriter(aws).write_all([record(NOW - timedelta(minutes=n)) for n in range(3)])
    assert main(["audit", "--target", BUCKET, "--limit", "2", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(first["records"]) == 2 and first["nextToken"]
    assert (
        main(["audit", "--target", BUCKET, "--limit", "2", "--json", "--next-token", first["nextToken"]]) == 0
    )
    second = json.loads(capsys.readouterr().out)
    assert len(second["records"]) == 1 and second["nextToken"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "--since", "last tuesday"], "--since 'last tuesday' is neither"),
        (["audit", "--remediation", "no_such_thing"], "--remediation 'no_such_thing' is not"),
        (["audit", "--since", "1d", "--until", "2d"], "is after until"),
    ],
)
def test_the_cli_refuses_bad_input_in_one_line(aws, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_provisioning_adds_the_indexes_to_an_audit_table_made_before_them(settings):
    from moto import mock_aws

    from matcarv_aiops.provision import provision_platform

    with mock_aws():
        ddb = hub_client("dynamodb", settings)
        ddb.create_table(
            TableName=settings.platform.audit_table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "executionId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "executionId", "KeyType": "HASH"}],
        )
        provision_platform(settings)
        provision_platform(settings)  # and again: nothing left to add
        table = ddb.describe_table(TableName=settings.platform.audit_table)["Table"]
        assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == set(AUDIT_INDEXES)
