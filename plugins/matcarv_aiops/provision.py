"""The platform's own resources (tables, diagnostics and audit archive buckets, topic), created directly
in moto for the in-process tests' ``aws`` fixture: a few calls per test, where CloudFormation would take
seconds. The local stack, ``make demo`` and the end-to-end tests deploy the synthesized templates instead
(``aiops_local.cloudformation``), and AWS gets them from the CDK app.

This is a second description of the hub template's resources, kept only for speed:
``tests/infra/test_provision_matches_template.py`` fails when it differs from the template in a table's
name, keys, attributes, indexes, billing mode or TTL, or in the buckets' versioning and Object Lock mode,
or the topic's name."""

from __future__ import annotations

from botocore.exceptions import ClientError

from matcarv_aiops.audit import AUDIT_INDEXES
from matcarv_aiops.aws import hub_client
from matcarv_aiops.settings import Settings, get_settings

# table name setting -> its global secondary indexes: {name: (partition key, sort key)}
TABLE_INDEXES = {"audit_table": AUDIT_INDEXES}

# table name setting -> its hash key
TABLE_KEYS = {
    "audit_table": "executionId",
    "approvals_table": "executionId",
    "state_table": "pk",
    "findings_table": "findingId",
    "anomaly_state_table": "seriesId",
}
# table name setting -> the attribute its items expire by (the audit log keeps its items forever)
TABLE_TTL = {
    "approvals_table": "ttl",
    "state_table": "ttl",
    "findings_table": "ttl",
    "anomaly_state_table": "ttl",
}


def _index(name: str, keys: tuple[str, str]) -> dict:
    partition, sort = keys
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": sort, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def _add_missing_indexes(ddb, name: str, indexes: dict[str, tuple[str, str]], attributes: list[str]) -> None:
    """A table made before an index was defined (a local stack's persisted state) gets the index now."""
    present = {
        i["IndexName"] for i in ddb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])
    }
    for index_name, keys in indexes.items():
        if index_name not in present:
            ddb.update_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
                GlobalSecondaryIndexUpdates=[{"Create": _index(index_name, keys)}],
            )


LOCAL_ARCHIVE_RETENTION_DAYS = 1


def _create_bucket(s3, name: str, region: str, *, object_lock: bool = False) -> None:
    """A versioned bucket, as every bucket of the CDK app is (Object Lock needs versioning anyway)."""
    options: dict = {"ObjectLockEnabledForBucket": True} if object_lock else {}
    if region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(Bucket=name, **options)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    if not object_lock:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def provision_platform(settings: Settings | None = None) -> dict[str, str]:
    settings = settings or get_settings()
    ddb = hub_client("dynamodb", settings)
    for setting, key in TABLE_KEYS.items():
        name = getattr(settings.platform, setting)
        indexes = TABLE_INDEXES.get(setting, {})
        attributes = sorted({key, *(a for keys in indexes.values() for a in keys)})
        try:
            ddb.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                **({"GlobalSecondaryIndexes": [_index(n, k) for n, k in indexes.items()]} if indexes else {}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
            _add_missing_indexes(ddb, name, indexes, attributes)
        if setting in TABLE_TTL:
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": TABLE_TTL[setting], "Enabled": True}
            )
    s3 = hub_client("s3", settings)
    _create_bucket(s3, settings.platform.diagnostics_bucket, settings.platform.region)
    # As the CDK app's AuditArchiveBucket: Object Lock, compliance mode (retention shorter than a
    # deployment's: nothing here outlives the process).
    _create_bucket(s3, settings.platform.audit_archive_bucket, settings.platform.region, object_lock=True)
    s3.put_object_lock_configuration(
        Bucket=settings.platform.audit_archive_bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": LOCAL_ARCHIVE_RETENTION_DAYS}},
        },
    )
    topic = hub_client("sns", settings).create_topic(Name=settings.platform.sns_topic_name)["TopicArn"]
    return {
        "topic_arn": topic,
        "bucket": settings.platform.diagnostics_bucket,
        "audit_archive_bucket": settings.platform.audit_archive_bucket,
        **{setting: getattr(settings.platform, setting) for setting in TABLE_KEYS},
    }
