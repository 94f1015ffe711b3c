"""DynamoDB tables. Names match ``matcarv_aiops.settings.Settings``; keys match the core's writers
(``matcarv_aiops.audit``, ``approvals``, ``safety``). Every table has point-in-time recovery; the audit
log also has deletion protection and keeps its items forever, the others expire items through ``ttl``."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from aiops_infra.nag import skip_checkov

TTL_ATTRIBUTE = "ttl"  # epoch seconds, written by the core where an item can lapse


@dataclass(frozen=True)
class TableSpec:
    construct_id: str
    name: str
    partition_key: str
    ttl: bool
    purpose: str
    # The settings key that names the table (AIOPS_<KEY>), exported to MWAA by the startup script.
    setting: str


TABLES = (
    TableSpec(
        "AuditLog",
        "AutomationAuditLog",
        "executionId",
        ttl=False,
        setting="audit_table",
        purpose="one record per automated action (the AutomationAuditLog audit trail)",
    ),
    TableSpec(
        "Approvals",
        "AIOpsApprovals",
        "executionId",
        ttl=True,
        setting="approvals_table",
        purpose="approval requests and decisions, bound to one execution",
    ),
    TableSpec(
        "RemediationState",
        "AIOpsRemediationState",
        "pk",
        ttl=True,
        setting="state_table",
        purpose="idempotency claims, per-resource locks, cooldown history, exemptions",
    ),
    TableSpec(
        "SecurityHubFindings",
        "AIOpsSecurityHubFindings",
        "findingId",
        ttl=True,
        setting="findings_table",
        purpose="mirror of Security Hub findings, synced every 15 minutes",
    ),
    TableSpec(
        "AnomalyState",
        "AIOpsAnomalyState",
        "seriesId",
        ttl=True,
        setting="anomaly_state_table",
        purpose="per-series state of the anomaly detection model, run every 5 minutes",
    ),
)


class StateTables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, specs: tuple[TableSpec, ...] = TABLES) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in specs:
            audit = not spec.ttl
            table = dynamodb.Table(
                self,
                spec.construct_id,
                table_name=spec.name,
                partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                deletion_protection=audit,
                time_to_live_attribute=TTL_ATTRIBUTE if spec.ttl else None,
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            skip_checkov(
                table,
                "CKV_AWS_119",
                "encrypted at rest with the AWS managed key (alias/aws/dynamodb), used only by this "
                "account's principals through DynamoDB; a customer key would add a key policy every "
                "reader, the audit copy and a point-in-time restore must be granted, for no cross-account "
                "or key-revocation need",
            )
            cdk.Tags.of(table).add("aiops:purpose", spec.purpose)
            self.tables[spec.setting] = table

    @property
    def audit(self) -> dynamodb.Table:
        return self.tables["audit_table"]
