"""S3 buckets: the MWAA source bucket (dags/, plugins.zip, requirements.txt, startup script), the
diagnostics bucket, and the access-log bucket they log to. All versioned, private, TLS-only, encrypted."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct


def _private_bucket(
    scope: Construct, construct_id: str, *, access_logs: s3.IBucket | None, log_prefix: str, **props
) -> s3.Bucket:
    return s3.Bucket(
        scope,
        construct_id,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=log_prefix if access_logs else None,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        **props,
    )


class AccessLogsBucket(Construct):
    """Server access logs of the other buckets, kept a year."""

    def __init__(self, scope: Construct, construct_id: str, *, retention_days: int = 365) -> None:
        super().__init__(scope, construct_id)
        self.bucket = _private_bucket(
            self,
            "Bucket",
            access_logs=None,
            log_prefix="",
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                )
            ],
        )


class SourceBucket(Construct):
    """What MWAA reads: dags/, plugins.zip, requirements.txt and the startup script (``make bundle``).

    Versioned because MWAA pins plugins.zip, requirements.txt and the startup script by object version.
    """

    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        # No expiry of old versions: the environment may still be pinned to one of them.
        self.bucket = _private_bucket(self, "Bucket", access_logs=access_logs, log_prefix="source/")


class DiagnosticsBucket(Construct):
    """State captured before every action (observe before acting), kept for ``retention_days``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket, retention_days: int = 400
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = _private_bucket(
            self,
            "Bucket",
            access_logs=access_logs,
            log_prefix="diagnostics/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                )
            ],
        )
