"""An audit trail that cannot be rewritten: the writer's put is conditional (moto), every record is
copied to an Object Lock bucket whose versions cannot be deleted (moto), and the synthesized hub stack
lets no principal update or delete an item, and only the writer put into the table (static)."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from aiops_infra.state_tables import AUDIT_REWRITE_ACTIONS, AUDIT_WRITE_ACTIONS
from matcarv_aiops.audit import AuditWriter, archive_key
from matcarv_aiops.models import AuditRecord, iso_utc


def _record(execution_id: str | None = None, **overrides) -> AuditRecord:
    values = dict(
        execution_id=execution_id or str(uuid.uuid4()),
        timestamp=iso_utc(),
        trigger="{}",
        runbook="sqs_dlq_depth_high",
        target_resource="arn:aws:sqs:us-east-1:123456789012:orders-dlq",
        action="redrove 12 messages",
        outcome="SUCCESS",
        operator="automated",
        rollback_plan="none needed",
    )
    values.update(overrides)
    return AuditRecord(**values)


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


def test_the_writer_cannot_overwrite_a_record(aws):
    writer = AuditWriter(aws)
    first = _record(outcome="SUCCESS")
    assert writer.write(first) is True
    assert writer.write(_record(first.execution_id, outcome="FAILURE", action="rewritten")) is False
    assert writer.read(first.execution_id) == first
    # Nor does the copy change: one version, the first record's.
    assert _archived_bodies(aws, first.execution_id) == [first.to_item()]


def test_a_batch_rewrite_keeps_the_first_copy(aws):
    # The maintenance jobs' batch puts rewrite their own record on a re-run; the archive keeps both.
    writer = AuditWriter(aws)
    first = _record(outcome="FAILURE")
    rerun = _record(first.execution_id, outcome="SUCCESS", action="re-run")
    assert writer.write_batch([first]) == 1
    assert writer.write_batch([rerun]) == 1
    assert writer.read(first.execution_id) == rerun
    expected = sorted([first.to_item(), rerun.to_item()], key=lambda body: json.dumps(body, sort_keys=True))
    assert _archived_bodies(aws, first.execution_id) == expected


def test_write_batch_writes_each_new_record_and_copies_it(aws):
    records = [_record() for _ in range(3)]
    assert AuditWriter(aws).write_batch(records) == 3
    for record in records:
        assert AuditWriter(aws).read(record.execution_id) == record
        assert len(_archived(aws, record.execution_id)) == 1


def test_a_retried_write_restores_a_missing_copy(aws):
    # A crash between the table put and the copy: the record is there, its copy is not.
    record = _record()
    boto3.client("dynamodb").put_item(
        TableName=aws.platform.audit_table, Item={k: {"S": v} for k, v in record.to_item().items()}
    )
    assert _archived(aws, record.execution_id) == []
    assert AuditWriter(aws).write(record) is False
    assert len(_archived(aws, record.execution_id)) == 1


def test_the_copy_cannot_be_deleted(aws):
    record = _record()
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


def test_no_role_may_update_or_delete_audit_items(any_synth):
    logical_id, _ = _audit_table(any_synth)
    grants: list[str] = []
    for policy in any_synth.resources("AIOps", "AWS::IAM::Policy").values():
        for statement in _statements(policy["Properties"]["PolicyDocument"]):
            if statement["Effect"] == "Allow" and logical_id in json.dumps(statement.get("Resource")):
                grants.extend(_actions(statement))
    assert sorted(grants) == [
        "dynamodb:BatchWriteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ]


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
    assert (
        set(_actions(only_writer))
        == set(AUDIT_WRITE_ACTIONS)
        == {"dynamodb:PutItem", "dynamodb:BatchWriteItem"}
    )
    writer = only_writer["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert writer["Fn::GetAtt"][0].startswith("MwaaExecutionRole")


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
