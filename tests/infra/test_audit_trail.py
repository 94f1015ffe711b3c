"""An audit trail that cannot be rewritten: the writer's puts are conditional, one at a time and 100 to a
call (moto), every record is copied to an Object Lock bucket whose versions cannot be deleted (moto), and
the synthesized hub stack lets no principal update, delete or batch-write an item, and only the writer
put into the table (static). The writer's own role under moto's IAM enforcement: test_audit_writer_role."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from aiops_infra.state_tables import AUDIT_REWRITE_ACTIONS, AUDIT_WRITE_ACTIONS
from matcarv_aiops.audit import AuditWriter, archive_key
from tests.records import audit_record


def _archived(settings, execution_id: str) -> list[dict]:
    s3 = boto3.client("s3", region_name=settings.platform.region)
    versions = s3.list_object_versions(
        Bucket=settings.platform.audit_archive_bucket, Prefix=archive_key(execution_id)
    ).get("Versions", [])
    return versions


def _archived_bodies(settings, execution_id: str) -> list[dict]:
    s3 = boto3.client("s3")
    bucket, key = settings.platform.audit_archive_bucket, archive_key(execution_id)
    # Order-free: versions written within one second share LastModified.
    bodies = [
        json.loads(s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read())
        for v in _archived(settings, execution_id)
    ]
    return sorted(bodies, key=lambda body: json.dumps(body, sort_keys=True))


def test_the_writer_cannot_overwrite_aaudit_record(aws):
    writer = AuditWriter(aws)
    first = audit_record(outcome="SUCCESS")
    assert writer.write(first) is True
    assert writer.write(audit_record(first.execution_id, outcome="FAILURE", action="rewritten")) is False
    assert writer.read(first.execution_id) == first
    # Nor does the copy change: one version, the first record's.
    assert _archived_bodies(aws, first.execution_id) == [first.to_item()]


def test_a_rerun_of_many_records_leaves_the_first_standing(aws):
    # A maintenance job's re-run writes what its first attempt did not; what that attempt wrote stands.
    writer = AuditWriter(aws)
    first = audit_record(outcome="FAILURE")
    rerun, missing = audit_record(first.execution_id, outcome="SUCCESS", action="re-run"), audit_record()
    assert writer.write_all([first]) == 1
    assert writer.write_all([rerun, missing]) == 1
    assert writer.read(first.execution_id) == first
    assert writer.read(missing.execution_id) == missing
    assert _archived_bodies(aws, first.execution_id) == [first.to_item()]
    assert _archived_bodies(aws, missing.execution_id) == [missing.to_item()]


def test_write_all_writes_each_new_record_and_copies_it(aws):
    records = [audit_record() for _ in range(5)]  # 100 to a call: tests/core/test_dynamo.py
    assert AuditWriter(aws).write_all(iter(records)) == 5
    for record in records:
        assert AuditWriter(aws).read(record.execution_id) == record
        assert _archived_bodies(aws, record.execution_id) == [record.to_item()]


def test_write_all_writes_an_id_given_twice_once(aws):
    first = audit_record()
    again = audit_record(first.execution_id, action="again")
    assert AuditWriter(aws).write_all([first, again, again]) == 1
    assert AuditWriter(aws).read(first.execution_id) == first
    assert _archived_bodies(aws, first.execution_id) == [first.to_item()]


def test_write_all_restores_the_missing_copy_of_a_record_that_stands(aws):
    record = audit_record()
    boto3.client("dynamodb").put_item(
        TableName=aws.platform.audit_table, Item={k: {"S": v} for k, v in record.to_item().items()}
    )
    assert AuditWriter(aws).write_all([audit_record(record.execution_id, action="re-run")]) == 0
    assert _archived_bodies(aws, record.execution_id) == [record.to_item()]


def test_a_retried_write_restores_a_missing_copy(aws):
    # A crash between the table put and the copy: the record is there, its copy is not.
    record = audit_record()
    boto3.client("dynamodb").put_item(
        TableName=aws.platform.audit_table, Item={k: {"S": v} for k, v in record.to_item().items()}
    )
    assert _archived(aws, record.execution_id) == []
    assert AuditWriter(aws).write(record) is False
    assert len(_archived(aws, record.execution_id)) == 1


def test_the_copy_cannot_be_deleted(aws):
    record = audit_record()
    AuditWriter(aws).write(record)
    s3 = boto3.client("s3")
    bucket, key = aws.platform.audit_archive_bucket, archive_key(record.execution_id)
    (version,) = _archived(aws, record.execution_id)
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    for bypass in (False, True):  # compliance mode: no governance bypass either
        with pytest.raises(ClientError) as refused:
            s3.delete_object(
                Bucket=bucket, Key=key, VersionId=version["VersionId"], BypassGovernanceRetention=bypass
            )
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert len(_archived(aws, record.execution_id)) == 1


def _statements(document) -> list[dict]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _actions(statement) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def _audit_table(synth) -> tuple[str, dict]:
    ((logical_id, table),) = [
        item
        for item in synth.resources("AIOps", "AWS::DynamoDB::Table").items()
        if item[0].startswith("TablesAuditLog")
    ]
    return logical_id, table


def test_the_table_policy_denies_rewrites_to_all_and_puts_to_all_but_the_writer(any_synth):
    _, table = _audit_table(any_synth)
    statements = {s["Sid"]: s for s in _statements(table["Properties"]["ResourcePolicy"]["PolicyDocument"])}
    append_only, only_writer = statements["AppendOnly"], statements["OnlyTheAuditWriterPuts"]
    for statement in (append_only, only_writer):
        assert statement["Effect"] == "Deny" and statement["Principal"] == {"AWS": "*"}
        assert json.dumps(statement["Resource"]).endswith(':table/AutomationAuditLog"]]}')
    assert (
        set(_actions(append_only))
        == set(AUDIT_REWRITE_ACTIONS)
        >= {"dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    )
    assert set(_actions(append_only)) >= {
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    }
    assert set(_actions(only_writer)) == set(AUDIT_WRITE_ACTIONS) == {"dynamodb:PutItem"}
    writer = only_writer["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert json.dumps(writer).endswith(':role/AIOpsAuditWriter"]]}')


def test_the_archive_bucket_locks_in_compliance_mode_for_the_configured_days(synth, synth_variant):
    for built, days in ((synth, 2557), (synth_variant, 3650)):
        (bucket,) = [
            b
            for lid, b in built.resources("AIOps", "AWS::S3::Bucket").items()
            if lid.startswith("AuditArchive")
        ]
        assert bucket["Properties"]["ObjectLockEnabled"] is True
        assert bucket["Properties"]["ObjectLockConfiguration"] == {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": days}},
        }
