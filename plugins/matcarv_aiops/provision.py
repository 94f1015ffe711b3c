"""Create the platform's own resources (tables, diagnostics bucket, topic) in an account, with the
names and keys the CDK app uses. For moto: tests, `make demo` and the local stack. In AWS the CDK app
owns them."""

from __future__ import annotations

from botocore.exceptions import ClientError

from matcarv_aiops.aws import hub_client
from matcarv_aiops.settings import Settings, get_settings

# table name setting -> its hash key
TABLE_KEYS = {
    "audit_table": "executionId",
    "approvals_table": "executionId",
    "state_table": "pk",
    "findings_table": "findingId",
    "anomaly_state_table": "seriesId",
}


def provision_platform(settings: Settings | None = None) -> dict[str, str]:
    settings = settings or get_settings()
    ddb = hub_client("dynamodb", settings)
    for setting, key in TABLE_KEYS.items():
        name = getattr(settings.platform, setting)
        try:
            ddb.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
    s3 = hub_client("s3", settings)
    try:
        if settings.platform.region == "us-east-1":
            s3.create_bucket(Bucket=settings.platform.diagnostics_bucket)
        else:
            s3.create_bucket(
                Bucket=settings.platform.diagnostics_bucket,
                CreateBucketConfiguration={"LocationConstraint": settings.platform.region},
            )
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    topic = hub_client("sns", settings).create_topic(Name=settings.platform.sns_topic_name)["TopicArn"]
    return {
        "topic_arn": topic,
        "bucket": settings.platform.diagnostics_bucket,
        **{setting: getattr(settings.platform, setting) for setting in TABLE_KEYS},
    }
