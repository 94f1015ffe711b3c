"""The MWAA environment (Airflow 3.3.1) and its execution role.

The execution role does what MWAA itself needs (read the source bucket, its logs, metrics, its Celery
queue) and what the DAGs do in the hub: assume the remediation roles, write audit records and the
platform's state, diagnostics, approval notifications and the ``RemediationExecuted`` metric. Nothing else:
every action on a target resource goes through that entry's remediation role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_mwaa as mwaa
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from aiops_infra.airflow_tuning import AIRFLOW_TUNING
from aiops_infra.alarms import METRIC_NAMESPACE
from aiops_infra.config import DeploymentConfig, check_airflow_options
from aiops_infra.iam_actions import actions_like
from aiops_infra.nag import skip_checkov
from aiops_infra.notifications import KEY_USE_ACTIONS
from aiops_infra.remediation_roles import acknowledge_scoped_wildcards
from aiops_infra.trust import source_conditions
from matcarv_aiops.settings import MaintenanceSettings

STARTUP_SCRIPT = Path(__file__).with_name("startup.sh")
# Where `make bundle` puts things in the source bucket.
DAGS_PATH, PLUGINS_PATH, REQUIREMENTS_PATH, STARTUP_PATH = (
    "dags",
    "plugins.zip",
    "requirements.txt",
    "startup.sh",
)
LOG_TYPES = ("dag_processing_logs", "scheduler_logs", "task_logs", "webserver_logs", "worker_logs")
# The platform's Airflow configuration (beyond the `aiops` section of settings).
AIRFLOW_OPTIONS = {
    # A remediation DAG must run the moment the trigger Lambda starts it.
    "core.dags_are_paused_at_creation": "False",
    "core.default_timezone": "utc",
    "scheduler.catchup_by_default": "False",
    "core.max_active_runs_per_dag": "16",
}
# Where the execution role may put metrics: MWAA's own namespace and the platform's.
METRIC_NAMESPACES = ("AmazonMWAA", METRIC_NAMESPACE, MaintenanceSettings.anomaly_metric_namespace)
# What each table is used for by the DAGs, as exact DynamoDB actions.
TABLE_ACTIONS = {
    # GetItem: execute refuses an execution already audited; the audit step and the reconciler read the
    # record that stands.
    # No UpdateItem or DeleteItem (the table's resource policy denies them to all). BatchWriteItem stays
    # for the maintenance jobs, whose re-run rewrites its own record; every write is also copied to the
    # Object Lock archive, so a rewrite adds a version there and the first one stays.
    # Query only on its indexes (QueryAuditIndexes below), never the table itself.
    "audit_table": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem"),
    "approvals_table": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    "state_table": (
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:Scan",  # audit_reconciler lists the claims not yet settled
    ),
    "findings_table": (
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    ),
    "anomaly_state_table": (
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:Query",
    ),
}


@dataclass(frozen=True)
class HubResources:
    source_bucket: s3.IBucket
    diagnostics_bucket: s3.IBucket
    audit_archive_bucket: s3.IBucket
    tables: dict[str, dynamodb.ITable]
    topic: sns.ITopic
    topic_key: kms.IKey


class MwaaEnvironment(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        hub: HubResources,
        subnet_ids: list[str],
        security_group_id: str,
        settings: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        stack = cdk.Stack.of(self)
        name = config.environment_name
        self.environment_arn = f"arn:aws:airflow:{stack.region}:{stack.account}:environment/{name}"
        self.log_group_prefix_arn = f"arn:aws:logs:{stack.region}:{stack.account}:log-group:airflow-{name}-*"
        self.role = iam.Role(
            self,
            "ExecutionRole",
            # MWAA assumes it for this one environment only (its confused-deputy guard).
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal("airflow.amazonaws.com"),
                iam.ServicePrincipal("airflow-env.amazonaws.com"),
            ).with_conditions(source_conditions(account=stack.account, source_arn=self.environment_arn)),
            description=f"MatCarv AIOps MWAA execution role ({name})",
        )
        self._platform_policy(stack, hub)
        self.environment = mwaa.CfnEnvironment(
            self,
            "Environment",
            name=name,
            airflow_version=config.airflow_version,
            environment_class=config.environment_class,
            min_workers=config.min_workers,
            max_workers=config.max_workers,
            schedulers=config.schedulers,
            webserver_access_mode=config.webserver_access_mode,
            execution_role_arn=self.role.role_arn,
            source_bucket_arn=hub.source_bucket.bucket_arn,
            dag_s3_path=DAGS_PATH,
            plugins_s3_path=PLUGINS_PATH,
            plugins_s3_object_version=config.plugins_version or None,
            requirements_s3_path=REQUIREMENTS_PATH,
            requirements_s3_object_version=config.requirements_version or None,
            startup_script_s3_path=STARTUP_PATH,
            startup_script_s3_object_version=config.startup_script_version or None,
            network_configuration=mwaa.CfnEnvironment.NetworkConfigurationProperty(
                subnet_ids=subnet_ids, security_group_ids=[security_group_id]
            ),
            logging_configuration=mwaa.CfnEnvironment.LoggingConfigurationProperty(
                **{
                    log_type: mwaa.CfnEnvironment.ModuleLoggingConfigurationProperty(
                        enabled=True, log_level="INFO"
                    )
                    for log_type in LOG_TYPES
                }
            ),
            airflow_configuration_options=airflow_options(config, settings),
            weekly_maintenance_window_start="SUN:03:00",
            tags={"project": "matcarv-aiops"},
        )
        # The role's policies must exist before MWAA validates the environment with it.
        self.environment.node.add_dependency(self.platform_policy)

    def _platform_policy(self, stack: cdk.Stack, hub: HubResources) -> None:
        bucket = hub.source_bucket
        # MWAA's documented execution-role minimum for its source bucket (s3:GetObject*, s3:GetBucket*,
        # s3:List* on the bucket and its objects), as the explicit actions those wildcards grant there.
        object_reads = actions_like("s3:GetObject", "object") + actions_like("s3:List", "object")
        bucket_reads = [
            *actions_like("s3:GetBucket", "bucket"),
            *actions_like("s3:List", "bucket"),
            "s3:GetEncryptionConfiguration",
        ]
        statements = [
            iam.PolicyStatement(
                sid="PublishEnvironmentMetrics",
                actions=["airflow:PublishMetrics"],
                resources=[self.environment_arn],
            ),
            # The DAGs read this environment's own WebserverUrl for the links in approval requests.
            iam.PolicyStatement(
                sid="ReadOwnEnvironment", actions=["airflow:GetEnvironment"], resources=[self.environment_arn]
            ),
            # The decision task asks Airflow how its own run was triggered (UI or REST API, not the CLI),
            # and the audit step writes its run's note (PATCH dagRuns): a run note needs User, Viewer is
            # read-only.
            iam.PolicyStatement(
                sid="ReadAndAnnotateOwnRuns",
                actions=["airflow:InvokeRestApi"],
                resources=[
                    f"arn:aws:airflow:{stack.region}:{stack.account}:role/{self.config.environment_name}/User"
                ],
            ),
            iam.PolicyStatement(
                sid="ReadSourceBucket", actions=object_reads, resources=[bucket.arn_for_objects("*")]
            ),
            iam.PolicyStatement(sid="ListSourceBucket", actions=bucket_reads, resources=[bucket.bucket_arn]),
            iam.PolicyStatement(
                sid="CheckAccountPublicAccess", actions=["s3:GetAccountPublicAccessBlock"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="EnvironmentLogs",
                actions=[
                    "logs:CreateLogStream",
                    "logs:CreateLogGroup",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:GetLogRecord",
                    "logs:GetLogGroupFields",
                    "logs:GetQueryResults",
                ],
                resources=[self.log_group_prefix_arn],
            ),
            iam.PolicyStatement(sid="FindLogGroups", actions=["logs:DescribeLogGroups"], resources=["*"]),
            # MWAA documents cloudwatch:PutMetricData on *: its own metrics (AmazonMWAA) and the DAGs'
            # (AIOps/Automation from the audit step, AIOps/Anomaly from the anomaly job).
            iam.PolicyStatement(
                sid="Metrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": list(METRIC_NAMESPACES)}},
            ),
            # MWAA's Celery queue lives in an AWS service account, hence the account wildcard.
            iam.PolicyStatement(
                sid="CeleryQueue",
                actions=[
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                    "sqs:SendMessage",
                ],
                resources=[f"arn:aws:sqs:{stack.region}:*:airflow-celery-*"],
            ),
            # The Celery queue is encrypted with an AWS owned key (outside this account), used only
            # through SQS.
            iam.PolicyStatement(
                sid="CeleryQueueKey",
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:Encrypt"],
                not_resources=[f"arn:aws:kms:*:{stack.account}:key/*"],
                conditions={"StringLike": {"kms:ViaService": [f"sqs.{stack.region}.amazonaws.com"]}},
            ),
            iam.PolicyStatement(
                sid="WriteDiagnostics",
                actions=["s3:PutObject"],
                resources=[hub.diagnostics_bucket.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                # The audit writer's copy of each record; GetObject for HeadObject, whether a retried
                # write's copy is there. Object Lock keeps each version; the role cannot delete any.
                sid="CopyAuditRecords",
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[hub.audit_archive_bucket.arn_for_objects("audit/*")],
            ),
            iam.PolicyStatement(sid="Notify", actions=["sns:Publish"], resources=[hub.topic.topic_arn]),
            iam.PolicyStatement(
                sid="NotifyEncrypted", actions=list(KEY_USE_ACTIONS), resources=[hub.topic_key.key_arn]
            ),
        ]
        for setting, table in hub.tables.items():
            statements.append(
                iam.PolicyStatement(actions=list(TABLE_ACTIONS[setting]), resources=[table.table_arn])
            )
        audit_indexes = f"{hub.tables['audit_table'].table_arn}/index/*"
        # The audit trail is read by target and by day through its indexes (matcarv_aiops.audit), never
        # scanned.
        statements.append(
            iam.PolicyStatement(
                sid="QueryAuditIndexes",
                actions=["dynamodb:Query"],
                resources=[audit_indexes],
            )
        )
        self.platform_policy = policy = iam.Policy(self, "Platform", statements=statements)
        skip_checkov(
            policy,
            "CKV_AWS_108",
            "s3:GetObject and its kin on the MWAA source bucket only (DAGs, plugins.zip, requirements): "
            "MWAA's documented minimum for the environment to load its code",
        )
        self.role.attach_inline_policy(policy)
        acknowledge_scoped_wildcards(
            policy,
            statements,
            "",
            reasons={
                self.log_group_prefix_arn: (
                    "MWAA creates one log group per log type, named airflow-<environment>-<type>"
                ),
                f"arn:aws:sqs:{stack.region}:*:airflow-celery-*": (
                    "MWAA's Celery queue is created by the service, in its own account, with a generated name"
                ),
                bucket.arn_for_objects("*"): (
                    "MWAA reads every object of its own source bucket (dags/, plugins.zip, requirements.txt, "
                    "startup.sh)"
                ),
                audit_indexes: "the audit log's own indexes (by target, by day), for Query only",
                hub.diagnostics_bucket.arn_for_objects("*"): (
                    "diagnostics are written under keys named by execution id, only into the diagnostics "
                    "bucket"
                ),
                hub.audit_archive_bucket.arn_for_objects("audit/*"): (
                    "the audit writer copies each record to audit/<executionId>.json of the Object Lock "
                    "archive bucket, where no version can be deleted"
                ),
            },
        )

    def allow_assume(self, role_arns: Iterable[str], *, reason: str) -> None:
        """Let the DAGs assume these (remediation) roles, and nothing else."""
        statements = [iam.PolicyStatement(actions=["sts:AssumeRole"], resources=list(role_arns))]
        policy = iam.Policy(self, "AssumeRemediationRoles", statements=statements)
        self.role.attach_inline_policy(policy)
        self.environment.node.add_dependency(policy)
        acknowledge_scoped_wildcards(policy, statements, reason)


def airflow_options(config: DeploymentConfig, settings: dict[str, str]) -> dict[str, str]:
    """Airflow configuration options: the platform's, the `aiops` settings section, then the operator's,
    in one dict. An option with no value is left out (MWAA refuses empty values, and a setting left out
    takes its default); every other key and value is checked against MWAA's API model, naming the option."""
    options = {**AIRFLOW_OPTIONS, **AIRFLOW_TUNING}
    options.update({f"aiops.{key}": value for key, value in settings.items()})
    options.update({f"aiops.{key}": value for key, value in approval_settings(config).items()})
    options.update(config.extra_airflow_options)
    options = {key: value for key, value in options.items() if value != ""}
    check_airflow_options(options)
    return options


def approval_settings(config: DeploymentConfig) -> dict[str, str]:
    """Who may decide, as ``aiops.*`` settings (AIOPS_APPROVERS, ...); an empty one is left out."""
    return {
        "approvers": ",".join(config.approvers),
        "approver_role": config.approver_role,
        "production_approvals": str(config.production_approvals),
        "service_users": ",".join(config.service_users),
    }
