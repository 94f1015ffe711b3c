"""The stacks: the source bucket (deployed first, so the bundle can be uploaded before MWAA starts), the
hub that runs AIOps, and one member stack per other account (``AIOpsMember-<account>``), deployed after
the hub by the same ``cdk deploy --all`` through each member's CDK bootstrap trust of the hub account."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from aiops_infra.alarms import OperationalAlarms
from aiops_infra.audit_writer import AuditWriterRole, audit_writer_role_arn
from aiops_infra.buckets import (
    AccessLogsBucket,
    AuditArchiveBucket,
    BundleObjectVersions,
    BundleUpload,
    DiagnosticsBucket,
    SourceBucket,
    diagnostics_bucket_name,
)
from aiops_infra.config import DeploymentConfig
from aiops_infra.config_rules import ConfigRules
from aiops_infra.event_rules import (
    EVENTBRIDGE_ROLE_NAME,
    CatalogueRules,
    add_forwarding_rules,
    default_bus_arn,
    rule_source_arns,
)
from aiops_infra.maintenance_roles import (
    MAINTENANCE_ROLE_ARN_TEMPLATE,
    MaintenanceRoles,
    cross_account_jobs,
    maintenance_role_name,
)
from aiops_infra.mwaa import (
    EXECUTION_ROLE_NAME,
    PLUGINS_PATH,
    REQUIREMENTS_PATH,
    STARTUP_PATH,
    HubResources,
    MwaaEnvironment,
)
from aiops_infra.network import Network
from aiops_infra.notifications import Notifications
from aiops_infra.recycle_bin import SnapshotRecycleBin
from aiops_infra.remediation_roles import REMEDIATION_ROLE_ARN_TEMPLATE, RemediationRoles
from aiops_infra.ssm_documents import (
    DIAGNOSTICS_PREFIX,
    SSM_AUTOMATION_ROLE_NAME,
    SsmAutomation,
    add_runbook_documents,
)
from aiops_infra.state_tables import StateTables
from aiops_infra.trigger_function import TriggerFunction
from aiops_infra.trust import service_principal
from matcarv_aiops.catalogue import CatalogueEntry
from matcarv_aiops.maintenance import job_permissions
from matcarv_aiops.settings import Platform

TOPIC_NAME = Platform.sns_topic_name
SOURCE_BUCKET_EXPORT = "AIOpsSource-SourceBucketArn"


@dataclass(frozen=True)
class HubAddresses:
    """What a member or regional stack refers to in the hub, by the names the hub stack gives them (a stack
    in another account or Region cannot import the hub stack's outputs); ``region`` is the hub's."""

    account: str
    region: str

    @property
    def execution_role_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role/{EXECUTION_ROLE_NAME}"

    @property
    def diagnostics_bucket_arn(self) -> str:
        return f"arn:aws:s3:::{diagnostics_bucket_name(self.account, self.region)}"

    @property
    def topic_arn(self) -> str:
        return f"arn:aws:sns:{self.region}:{self.account}:{TOPIC_NAME}"

    @property
    def event_bus_arn(self) -> str:
        return default_bus_arn(self.account, self.region)


class SourceStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, bundle_dir: Path | None = None, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, description="MatCarv AIOps: MWAA source bucket", **kwargs)
        self.bundle_dir = bundle_dir
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
        other_regions: tuple[str, ...] = (),
        **kwargs,
    ) -> None:
        # First, before anything is built: without the production accounts the hub would fail open.
        production_accounts = config.hub_production_accounts()
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
            "audit_writer_role_arn": audit_writer_role_arn(self),
            "sns_topic_arn": notifications.topic.topic_arn,
            "sns_topic_name": TOPIC_NAME,
            "region": self.region,
            "remediation_role_arn_template": REMEDIATION_ROLE_ARN_TEMPLATE,
            "maintenance_role_arn_template": MAINTENANCE_ROLE_ARN_TEMPLATE,
            "ssm_automation_role_arn": "arn:aws:iam::{account}:role/" + SSM_AUTOMATION_ROLE_NAME,
            "production_accounts": ",".join(production_accounts),
            "non_production_accounts": ",".join(config.non_production_account_ids),
            # The DAGs read the environment's WebserverUrl (mwaa:GetEnvironment) for approval links.
            "mwaa_environment_name": config.environment_name,
            # Where the jobs that work in every account and Region (alarm_sync) act: this account and the
            # members, in each Region (none given: the hub's only, the setting's default).
            "hub_account": self.account,
            "member_accounts": ",".join(config.member_account_ids),
            "regions": ",".join(config.regions),
        }
        # The versions the source stack's upload left; read again whenever one of the files changes.
        object_versions = (
            BundleObjectVersions(
                self,
                "BundleVersions",
                bucket=source_bucket,
                bundle_dir=source.bundle_dir,
                keys=(PLUGINS_PATH, REQUIREMENTS_PATH, STARTUP_PATH),
            ).versions
            if source.bundle_dir is not None
            else {}
        )
        self.mwaa = MwaaEnvironment(
            self,
            "Mwaa",
            config=config,
            hub=HubResources(
                source_bucket=source_bucket,
                diagnostics_bucket=diagnostics.bucket,
                tables=tables.tables,
                topic=notifications.topic,
                topic_key=notifications.key,
            ),
            subnet_ids=network.private_subnet_ids,
            security_group_id=network.security_group_id,
            settings=settings,
            object_versions=object_versions,
        )
        # Created only once its network is complete: subnets, routes, NAT, endpoints, security group rules.
        self.mwaa.environment.node.add_dependency(network)
        # The DAGs add audit records through the writer's own role: the only principal that may put one.
        self.audit_writer = AuditWriterRole(
            self,
            "AuditWriter",
            table=tables.audit,
            archive_bucket=audit_archive.bucket,
            trusted_role=self.mwaa.role,
        )
        self.mwaa.environment.node.add_dependency(self.audit_writer.assume_policy)
        tables.make_audit_append_only(audit_writer_role_arn(self))

        self.remediation_roles = RemediationRoles(
            self,
            "RemediationRoles",
            entries=entries,
            trusted_role_arn=self.mwaa.role.role_arn,
            other_regions=other_regions,
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

        # Each scheduled job acts with its own role (what its module declares): in the hub account, and for
        # the jobs that work in every account and Region, the same role in each member account too.
        self.maintenance_roles = MaintenanceRoles(
            self,
            "MaintenanceRoles",
            jobs=job_permissions(),
            trusted_role_arn=self.mwaa.role.role_arn,
            other_regions=other_regions,
        )
        member_maintenance_roles = [
            f"arn:aws:iam::{account}:role/{maintenance_role_name(job)}"
            for account in config.member_account_ids
            for job in sorted(cross_account_jobs(job_permissions()))
        ]
        self.mwaa.allow_assume(
            [*self.maintenance_roles.role_arns, *member_maintenance_roles],
            reason="exactly the maintenance jobs' roles (AIOpsMaintenance-<job>) of this stack, and those "
            "of the jobs that act in every account in the member accounts given by context",
            policy_id="AssumeMaintenanceRoles",
            set_source_identity=False,
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
            other_regions=other_regions,
        )
        # Events EventBridge could not hand to the function are replayed with the failed invocations.
        self.trigger.redrive_from(self.rules.dead_letter_queue)
        self.ssm = SsmAutomation(
            self,
            "Ssm",
            diagnostics_bucket_arn=diagnostics.bucket.bucket_arn,
            topic_arn=notifications.topic.topic_arn,
            other_regions=other_regions,
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
            description="The role the member accounts' remediation roles trust",
        )
        cdk.CfnOutput(self, "DiagnosticsBucketName", value=diagnostics.bucket.bucket_name)
        cdk.CfnOutput(self, "NotificationsTopicArn", value=notifications.topic.topic_arn)


class MemberAccountStack(cdk.Stack):
    """One member account, in the hub's region: the remediation roles and the roles of the maintenance
    jobs that act in every account (trusting the hub's MWAA execution role), the runbooks and their role,
    and rules that forward the catalogue's events to the hub's default
    event bus. Everything it names in the hub comes from ``hub`` (no parameters), so ``cdk deploy --all``
    deploys it with no input; never into the hub account, whose hub stack holds the same roles and rules.
    Its roles (IAM is global) also act in ``other_regions``, whose ``RegionalStack`` names them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entries: Iterable[CatalogueEntry],
        hub_account: str,
        existing_config_rules: Iterable[str] = (),
        other_regions: tuple[str, ...] = (),
        **kwargs,
    ) -> None:
        super().__init__(
            scope, construct_id, description="MatCarv AIOps: member account (trusts the hub)", **kwargs
        )
        entries = list(entries)
        hub = HubAddresses(account=hub_account, region=self.region)
        # The Config rules the Config-driven entries start on, less those the organisation already has.
        ConfigRules(self, "ConfigRules", entries=entries, existing=existing_config_rules)
        RemediationRoles(
            self,
            "RemediationRoles",
            entries=entries,
            trusted_role_arn=hub.execution_role_arn,
            hub_account=hub.account,
            other_regions=other_regions,
        )
        SsmAutomation(
            self,
            "Ssm",
            diagnostics_bucket_arn=hub.diagnostics_bucket_arn,
            topic_arn=hub.topic_arn,
            other_regions=other_regions,
        )
        # The maintenance jobs that act in every account (alarm_sync), with their roles here.
        MaintenanceRoles(
            self,
            "MaintenanceRoles",
            jobs=cross_account_jobs(job_permissions()),
            trusted_role_arn=hub.execution_role_arn,
            other_regions=other_regions,
        )
        forwarding_role = iam.Role(
            self,
            "ForwardingRole",
            role_name=EVENTBRIDGE_ROLE_NAME,
            assumed_by=service_principal(
                "events.amazonaws.com",
                account=self.account,
                source_arn=rule_source_arns(self.account, (self.region, *other_regions)),
            ),
            description="MatCarv AIOps EventBridge targets: forward catalogue events to the hub",
            inline_policies={
                "ForwardToHub": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(actions=["events:PutEvents"], resources=[hub.event_bus_arn])
                    ]
                )
            },
        )
        add_forwarding_rules(
            self, entries=entries, bus_arn=hub.event_bus_arn, role_arn=forwarding_role.role_arn
        )


class RegionalStack(cdk.Stack):
    """One account (the hub's or a member's) in one Region besides the hub's: what is regional only. Rules
    forwarding the catalogue's events to the hub's bus in the hub's Region, the runbooks (they run in the
    target's Region) and the Config rules. The roles are global: it names those of its account's home
    stack (``AIOps`` or ``AIOpsMember-<account>``), which is deployed first and lets them act here."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entries: Iterable[CatalogueEntry],
        hub: HubAddresses,
        existing_config_rules: Iterable[str] = (),
        **kwargs,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="MatCarv AIOps: one more Region (forwards its events to the hub's Region)",
            **kwargs,
        )
        if cdk.Token.is_unresolved(self.region) or self.region == hub.region:
            raise ValueError(f"{construct_id}: a regional stack is for a named Region other than the hub's")
        entries = list(entries)
        ConfigRules(self, "ConfigRules", entries=entries, existing=existing_config_rules)
        add_runbook_documents(self)
        add_forwarding_rules(
            self,
            entries=entries,
            bus_arn=hub.event_bus_arn,
            role_arn=f"arn:aws:iam::{self.account}:role/{EVENTBRIDGE_ROLE_NAME}",
        )
