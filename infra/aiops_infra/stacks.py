"""The stacks: the source bucket (deployed first, so the bundle can be uploaded before MWAA starts), the
hub that runs AIOps, and the member-account stack that StackSets deploy into every other account."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from aiops_infra.alarms import OperationalAlarms
from aiops_infra.buckets import (
    AccessLogsBucket,
    AuditArchiveBucket,
    BundleUpload,
    DiagnosticsBucket,
    SourceBucket,
)
from aiops_infra.config import DeploymentConfig
from aiops_infra.event_rules import EVENTBRIDGE_ROLE_NAME, CatalogueRules, rule_name
from aiops_infra.maintenance_roles import MAINTENANCE_ROLE_ARN_TEMPLATE, MaintenanceRoles
from aiops_infra.mwaa import HubResources, MwaaEnvironment
from aiops_infra.network import Network
from aiops_infra.notifications import Notifications
from aiops_infra.recycle_bin import SnapshotRecycleBin
from aiops_infra.remediation_roles import REMEDIATION_ROLE_ARN_TEMPLATE, RemediationRoles
from aiops_infra.ssm_documents import DIAGNOSTICS_PREFIX, SSM_AUTOMATION_ROLE_NAME, SsmAutomation
from aiops_infra.state_tables import StateTables
from aiops_infra.trigger_function import TriggerFunction
from aiops_infra.trust import service_principal
from matcarv_aiops.catalogue import CatalogueEntry
from matcarv_aiops.maintenance import job_permissions
from matcarv_aiops.settings import Platform

TOPIC_NAME = Platform.sns_topic_name
SOURCE_BUCKET_EXPORT = "AIOpsSource-SourceBucketArn"


class SourceStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, bundle_dir: Path | None = None, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, description="MatCarv AIOps: MWAA source bucket", **kwargs)
        self.access_logs = AccessLogsBucket(self, "AccessLogs")
        self.source = SourceBucket(self, "Source", access_logs=self.access_logs.bucket)
        if bundle_dir is not None:
            # The bundle is uploaded by this stack, which the hub stack depends on: `cdk deploy --all`
            # creates the environment only once dags/, plugins.zip, requirements.txt and startup.sh are there.
            self.upload = BundleUpload(self, "Bundle", bundle_dir=bundle_dir, bucket=self.source.bucket)
        cdk.CfnOutput(
            self,
            "SourceBucketName",
            value=self.source.bucket.bucket_name,
            description="Upload the output of `make bundle` here",
        )
        cdk.CfnOutput(
            self, "SourceBucketArn", value=self.source.bucket.bucket_arn, export_name=SOURCE_BUCKET_EXPORT
        )


class AIOpsStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        source: SourceStack,
        entries: Iterable[CatalogueEntry],
        trigger_code: Path,
        **kwargs,
    ) -> None:
        super().__init__(
            scope, construct_id, description="MatCarv AIOps: MWAA, triggers, state, IAM", **kwargs
        )
        entries = list(entries)
        self.add_stack_dependency(source)
        # Imported by export name, so the source stack can be deployed (and the bundle uploaded) first.
        source_bucket = s3.Bucket.from_bucket_arn(
            self, "SourceBucket", cdk.Fn.import_value(SOURCE_BUCKET_EXPORT)
        )
        access_logs = AccessLogsBucket(self, "AccessLogs")
        diagnostics = DiagnosticsBucket(self, "Diagnostics", access_logs=access_logs.bucket)
        audit_archive = AuditArchiveBucket(
            self,
            "AuditArchive",
            access_logs=access_logs.bucket,
            retention_days=config.audit_archive_retention_days,
        )
        tables = StateTables(self, "Tables")
        notifications = Notifications(self, "Notifications", topic_name=TOPIC_NAME, email=config.alarm_email)
        network = Network(
            self,
            "Network",
            existing=config.existing_vpc,
            nat_gateways=config.nat_gateways,
            webserver_allowed_from=config.webserver_allowed_from,
        )

        # AIOPS_* settings for the DAGs (via the startup script) and the trigger Lambda.
        settings = {
            **{setting: table.table_name for setting, table in tables.tables.items()},
            "diagnostics_bucket": diagnostics.bucket.bucket_name,
            "audit_archive_bucket": audit_archive.bucket.bucket_name,
            "sns_topic_arn": notifications.topic.topic_arn,
            "sns_topic_name": TOPIC_NAME,
            "region": self.region,
            "remediation_role_arn_template": REMEDIATION_ROLE_ARN_TEMPLATE,
            "maintenance_role_arn_template": MAINTENANCE_ROLE_ARN_TEMPLATE,
            "ssm_automation_role_arn": "arn:aws:iam::{account}:role/" + SSM_AUTOMATION_ROLE_NAME,
            "production_accounts": ",".join(config.production_account_ids),
            # The DAGs read the environment's WebserverUrl (mwaa:GetEnvironment) for approval links.
            "mwaa_environment_name": config.environment_name,
        }
        self.mwaa = MwaaEnvironment(
            self,
            "Mwaa",
            config=config,
            hub=HubResources(
                source_bucket=source_bucket,
                diagnostics_bucket=diagnostics.bucket,
                audit_archive_bucket=audit_archive.bucket,
                tables=tables.tables,
                topic=notifications.topic,
                topic_key=notifications.key,
            ),
            subnet_ids=network.private_subnet_ids,
            security_group_id=network.security_group_id,
            settings=settings,
        )
        # Created only once its network is complete: subnets, routes, NAT, endpoints, security group rules.
        self.mwaa.environment.node.add_dependency(network)
        # The DAGs' audit writer runs as the execution role: the only principal that may put a record.
        tables.make_audit_append_only(self.mwaa.role.role_arn)

        self.remediation_roles = RemediationRoles(
            self, "RemediationRoles", entries=entries, trusted_role_arn=self.mwaa.role.role_arn
        )
        # One ARN per account, by the remediation roles' name prefix: exact names (entries x accounts) would
        # outgrow IAM's 10,240-character limit on a role's inline policies with a few dozen accounts.
        self.mwaa.allow_assume(
            (
                REMEDIATION_ROLE_ARN_TEMPLATE.format(account=account, remediation="*")
                for account in (self.account, *config.member_account_ids)
            ),
            reason="only the per-entry remediation roles (AIOpsRemediation-<id>), in this account and the "
            "member accounts given by context; each holds exactly its catalogue entry's actions",
        )

        # Each scheduled job acts with its own role (what its module declares), in the hub account only.
        self.maintenance_roles = MaintenanceRoles(
            self, "MaintenanceRoles", jobs=job_permissions(), trusted_role_arn=self.mwaa.role.role_arn
        )
        self.mwaa.allow_assume(
            self.maintenance_roles.role_arns,
            reason="exactly the maintenance jobs' roles (AIOpsMaintenance-<job>) of this stack",
            policy_id="AssumeMaintenanceRoles",
        )

        self.trigger = TriggerFunction(
            self,
            "Trigger",
            code_dir=trigger_code,
            environment_name=config.environment_name,
            airflow_api_role=config.airflow_api_role,
            reserved_concurrency=config.trigger_reserved_concurrency,
            environment={
                "AIOPS_TRIGGER_BACKEND": "mwaa",
                "AIOPS_MWAA_ENVIRONMENT_NAME": config.environment_name,
                "AIOPS_PRODUCTION_ACCOUNTS": settings["production_accounts"],
                # Whose events it handles: this account's and the members'; any other's are ignored.
                "AIOPS_HUB_ACCOUNT": self.account,
                "AIOPS_MEMBER_ACCOUNTS": ",".join(config.member_account_ids),
            },
        )
        self.rules = CatalogueRules(
            self,
            "Rules",
            entries=entries,
            function=self.trigger.function,
            member_account_ids=config.member_account_ids,
        )
        # Events EventBridge could not hand to the function are replayed with the failed invocations.
        self.trigger.redrive_from(self.rules.dead_letter_queue)
        self.ssm = SsmAutomation(
            self,
            "Ssm",
            diagnostics_bucket_arn=diagnostics.bucket.bucket_arn,
            topic_arn=notifications.topic.topic_arn,
        )
        if config.member_account_ids:
            # Member-account runbooks write their diagnostics here and may notify through the topic.
            member_runbooks = [
                iam.ArnPrincipal(f"arn:aws:iam::{account}:role/{SSM_AUTOMATION_ROLE_NAME}")
                for account in config.member_account_ids
            ]
            diagnostics.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    actions=["s3:PutObject"],
                    resources=[diagnostics.bucket.arn_for_objects(f"{DIAGNOSTICS_PREFIX}*")],
                    principals=member_runbooks,
                )
            )
            notifications.allow_publish(member_runbooks)
        SnapshotRecycleBin(self, "RecycleBin", retention_days=config.snapshot_retention_days)
        OperationalAlarms(
            self,
            "Alarms",
            topic=notifications.topic,
            dead_letter_queue=self.rules.dead_letter_queue,
            trigger_function=self.trigger.function,
            failed_events_queue=self.trigger.failed_events,
        )

        cdk.CfnOutput(self, "MwaaEnvironmentName", value=config.environment_name)
        cdk.CfnOutput(
            self,
            "MwaaExecutionRoleArn",
            value=self.mwaa.role.role_arn,
            description="HubExecutionRoleArn parameter of the member-account stack",
        )
        cdk.CfnOutput(self, "DiagnosticsBucketName", value=diagnostics.bucket.bucket_name)
        cdk.CfnOutput(self, "NotificationsTopicArn", value=notifications.topic.topic_arn)


class MemberAccountStack(cdk.Stack):
    """For StackSets, in the hub's region: the remediation roles (trusting the hub's MWAA execution role),
    the runbooks, and rules that forward the catalogue's events to the hub's default event bus."""

    def __init__(
        self, scope: Construct, construct_id: str, *, entries: Iterable[CatalogueEntry], **kwargs
    ) -> None:
        super().__init__(
            scope, construct_id, description="MatCarv AIOps: member account (StackSets)", **kwargs
        )
        entries = list(entries)
        hub_role = cdk.CfnParameter(
            self,
            "HubExecutionRoleArn",
            type="String",
            allowed_pattern=r"arn:aws[a-z-]*:iam::\d{12}:role/.+",
            description="MwaaExecutionRoleArn output of the hub stack",
        )
        hub_account = cdk.CfnParameter(
            self,
            "HubAccountId",
            type="String",
            allowed_pattern=r"\d{12}",
            description="The account that runs AIOps",
        )
        hub_diagnostics = cdk.CfnParameter(
            self,
            "HubDiagnosticsBucketName",
            type="String",
            description="DiagnosticsBucketName output of the hub stack",
        )
        RemediationRoles(
            self,
            "RemediationRoles",
            entries=entries,
            trusted_role_arn=hub_role.value_as_string,
            hub_account=hub_account.value_as_string,
        )
        hub_topic = cdk.CfnParameter(
            self,
            "HubNotificationsTopicArn",
            type="String",
            allowed_pattern=r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+",
            description="NotificationsTopicArn output of the hub stack",
        )
        SsmAutomation(
            self,
            "Ssm",
            diagnostics_bucket_arn=f"arn:aws:s3:::{hub_diagnostics.value_as_string}",
            topic_arn=hub_topic.value_as_string,
        )
        hub_bus = f"arn:aws:events:{self.region}:{hub_account.value_as_string}:event-bus/default"
        forwarding_role = iam.Role(
            self,
            "ForwardingRole",
            role_name=EVENTBRIDGE_ROLE_NAME,
            assumed_by=service_principal(
                "events.amazonaws.com",
                account=self.account,
                source_arn=f"arn:aws:events:{self.region}:{self.account}:rule/*",
            ),
            description="MatCarv AIOps EventBridge targets: forward catalogue events to the hub",
            inline_policies={
                "ForwardToHub": iam.PolicyDocument(
                    statements=[iam.PolicyStatement(actions=["events:PutEvents"], resources=[hub_bus])]
                )
            },
        )
        for entry in entries:
            events.CfnRule(
                self,
                f"Forward-{entry.id}",
                name=rule_name(entry),
                description=f"MatCarv AIOps {entry.id}: forward to the hub"[:512],
                event_pattern=entry.trigger,
                targets=[
                    events.CfnRule.TargetProperty(id="hub", arn=hub_bus, role_arn=forwarding_role.role_arn)
                ],
            )
