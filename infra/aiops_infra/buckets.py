"""S3 buckets: the MWAA source bucket (dags/, plugins.zip, requirements.txt, startup script), the
diagnostics bucket, and the access-log bucket they log to. All versioned, private, TLS-only, encrypted."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import custom_resources as cr
from constructs import Construct

from aiops_infra.nag import acknowledge, skip_checkov


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
        skip_checkov(
            self.bucket,
            "CKV_AWS_18",
            "this is the access-log bucket the others log to; logging it into itself would log its own "
            "log deliveries without end",
        )


class SourceBucket(Construct):
    """What MWAA reads: dags/, plugins.zip, requirements.txt and the startup script (``make bundle``).

    Versioned because MWAA pins plugins.zip, requirements.txt and the startup script by object version.
    """

    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        # No expiry of old versions: the environment may still be pinned to one of them.
        self.bucket = _private_bucket(self, "Bucket", access_logs=access_logs, log_prefix="source/")


class AuditArchiveBucket(Construct):
    """A copy of every audit record (``audit/<executionId>.json``), written by the audit writer, under
    S3 Object Lock in compliance mode: no principal, root included, can delete a version or shorten its
    retention before ``retention_days``. A rewrite only adds a version; the first one stays."""

    def __init__(
        self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket, retention_days: int
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = _private_bucket(
            self,
            "Bucket",
            access_logs=access_logs,
            log_prefix="audit-archive/",
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(
                cdk.Duration.days(retention_days)
            ),
        )


def diagnostics_bucket_name(account: str, region: str) -> str:
    """The diagnostics bucket's name, known in advance: the member accounts' runbooks write into it, and
    their stacks cannot refer to the hub stack's resources (another account)."""
    return f"aiops-diagnostics-{account}-{region}"


class DiagnosticsBucket(Construct):
    """State captured before every action (observe before acting), kept for ``retention_days``; named
    ``diagnostics_bucket_name`` of its own account and region."""

    def __init__(
        self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket, retention_days: int = 400
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.bucket = _private_bucket(
            self,
            "Bucket",
            bucket_name=diagnostics_bucket_name(stack.account, stack.region),
            access_logs=access_logs,
            log_prefix="diagnostics/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                )
            ],
        )


class BundleUpload(Construct):
    """The MWAA bundle (``make bundle``'s layout) copied into the source bucket by CDK's
    ``BucketDeployment`` at deploy time: dags/ synced (pruned), plugins.zip, requirements.txt, startup.sh.

    Its handler's role gets the exact actions ``aws s3 sync`` uses instead of the construct's wildcard
    grants (``s3:GetObject*``, ``s3:List*``, ...), on the same resources (the staged asset, this bucket).
    """

    def __init__(self, scope: Construct, construct_id: str, *, bundle_dir: Path, bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            sources=[s3deploy.Source.asset(str(bundle_dir))],
            destination_bucket=bucket,
            prune=True,
            retain_on_delete=True,
            memory_limit=256,
        )
        stack = cdk.Stack.of(self)
        self.handler = next(
            child for child in stack.node.children if child.node.id.startswith("Custom::CDKBucketDeployment")
        )
        policy = self.handler.node.find_child("ServiceRole").node.find_child("DefaultPolicy")
        document = stack.resolve(policy.document)
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = sorted({a for action in actions for a in _EXACT.get(action, (action,))})
        policy.node.default_child.policy_document = document
        acknowledge(
            self.handler.node.find_child("ServiceRole"),
            "IAM4",
            "CDK's BucketDeployment handler writes its own logs with AWSLambdaBasicExecutionRole; it "
            "runs only during deployments",
            finding="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        )
        acknowledge(
            policy,
            "IAM5",
            "the handler reads every object of the staged bundle asset in CDK's bootstrap asset bucket",
            finding="Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
            f"{_nag_name(stack.account, 'AWS::AccountId')}-{_nag_name(stack.region, 'AWS::Region')}/*",
        )
        acknowledge(
            policy,
            "IAM5",
            "the handler syncs the bundle into the MWAA source bucket and prunes what "
            "the bundle no longer has",
            finding=f"Resource::<{stack.get_logical_id(bucket.node.default_child)}.Arn>/*",
        )
        for check, reason in _DEPLOYMENT_HANDLER_SKIPS.items():
            skip_checkov(self.handler, check, reason)
        acknowledge(
            self.handler,
            "L1",
            "CDK's BucketDeployment handler runtime is chosen by aws-cdk-lib (with its "
            "AWS CLI layer); it runs only during deployments",
        )


class BundleObjectVersions(Construct):
    """The S3 version of each of ``keys`` (plugins.zip, requirements.txt, startup.sh) as the source
    stack's ``BucketDeployment`` left it, read at deploy time with S3 HeadObject (one ``AwsCustomResource``
    each), for the MWAA environment to pin: ``versions[key]``.

    The read runs again exactly when the file changes: its physical id carries the sha256 of the file in
    ``bundle_dir`` (the bundle the source stack uploads, built reproducibly), so a new plugins.zip gives a
    new version and MWAA updates the environment, while a DAG-only change leaves it alone. The versions
    are read in the stack that uses them, not exported by the source stack: CloudFormation refuses to
    change an export another stack imports, and these change with every bundle.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        bundle_dir: Path,
        keys: Iterable[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.versions: dict[str, str] = {}
        for key in keys:
            path = bundle_dir / key
            if not path.is_file():
                raise FileNotFoundError(f"bundle {bundle_dir}: no {key} to pin a version of")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            head = cr.AwsSdkCall(
                service="S3",
                action="headObject",
                parameters={"Bucket": bucket.bucket_name, "Key": key},
                physical_resource_id=cr.PhysicalResourceId.of(f"{key}@sha256:{digest}"),
                output_paths=["VersionId"],
            )
            reader = cr.AwsCustomResource(
                self,
                key,
                on_create=head,
                on_update=head,
                # HeadObject of the current version needs s3:GetObject, on this one key only.
                policy=cr.AwsCustomResourcePolicy.from_statements(
                    [iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(key)])]
                ),
                install_latest_aws_sdk=False,
            )
            self.versions[key] = reader.get_response_field("VersionId")
        # The one function CDK shares between every AwsCustomResource of the stack.
        handler = cdk.Stack.of(self).node.find_child(_AWS_CUSTOM_RESOURCE_SINGLETON)
        acknowledge(
            handler.node.find_child("ServiceRole"),
            "IAM4",
            "CDK's AwsCustomResource handler writes its own logs with AWSLambdaBasicExecutionRole; it runs "
            "only during deployments, here to read the bundle's object versions",
            finding="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        )
        for check, reason in _VERSION_READER_SKIPS.items():
            skip_checkov(handler, check, reason)


# aws-cdk-lib's fixed id of the AwsCustomResource singleton function (its UUID).
_AWS_CUSTOM_RESOURCE_SINGLETON = "AWS679f53fac002430cb0da5b7982bd2287"


# CDK's BucketDeployment handler: synchronous, deploy-time only, shaped by aws-cdk-lib.
_DEPLOYMENT_HANDLER_SKIPS = {
    "CKV_AWS_115": "CDK's BucketDeployment handler runs once per deployment, never concurrently with itself",
    "CKV_AWS_116": "CloudFormation invokes CDK's BucketDeployment handler synchronously and fails the "
    "deployment on error; there is no async event to keep",
    "CKV_AWS_117": "CDK's BucketDeployment handler only copies from the CDK asset bucket to the source "
    "bucket through the S3 API; it reaches no private resource",
    "CKV_AWS_173": "CDK's BucketDeployment handler's environment holds no secret (aws-cdk-lib sets it)",
}


# CDK's AwsCustomResource handler: synchronous, deploy-time only, shaped by aws-cdk-lib.
_VERSION_READER_SKIPS = {
    "CKV_AWS_115": "CDK's AwsCustomResource handler makes a few HeadObject calls per deployment, "
    "one at a time",
    "CKV_AWS_116": "CloudFormation invokes CDK's AwsCustomResource handler synchronously and fails the "
    "deployment on error; there is no async event to keep",
    "CKV_AWS_117": "CDK's AwsCustomResource handler only calls S3 HeadObject on the source bucket; it "
    "reaches no private resource",
    "CKV_AWS_173": "CDK's AwsCustomResource handler's environment holds no secret (aws-cdk-lib sets it)",
}


# What the BucketDeployment handler's `aws s3 sync` / `cp` calls, for the construct's wildcard grants.
_EXACT = {
    "s3:GetObject*": ("s3:GetObject",),
    "s3:GetBucket*": ("s3:GetBucketLocation",),
    "s3:List*": ("s3:ListBucket",),
    "s3:DeleteObject*": ("s3:DeleteObject",),
    "s3:Abort*": ("s3:AbortMultipartUpload",),
}


def _nag_name(value: str, pseudo: str) -> str:
    """How cdk-nag renders an account or region in a finding: the value in an environment-specific stack
    (as `cdk deploy` synthesizes), ``<AWS::...>`` in an environment-agnostic one."""
    return f"<{pseudo}>" if cdk.Token.is_unresolved(value) else value
