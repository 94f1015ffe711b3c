"""DynamoDB tables. Names match ``matcarv_aiops.settings.Settings``; keys match the core's writers
(``matcarv_aiops.audit``, ``approvals``, ``safety``). Every table has point-in-time recovery; the audit
log also has deletion protection and keeps its items forever, the others expire items through ``ttl``.
The audit log's indexes (by target, by day) are ``matcarv_aiops.audit.AUDIT_INDEXES``, the same
definition the local and test tables get from ``matcarv_aiops.provision``."""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from aiops_infra.nag import skip_checkov
from matcarv_aiops.audit import AUDIT_INDEXES

# What no principal may do to the audit table's items (its resource policy): rewrite one in place, remove
# it, or batch-write (a BatchWriteItem put cannot be conditional, so it could overwrite a record).
AUDIT_REWRITE_ACTIONS = (
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)
# What only the audit writer's role may do there (PutItem also governs the Puts of TransactWriteItems).
AUDIT_WRITE_ACTIONS = ("dynamodb:PutItem",)
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
    # Global secondary indexes: {name: (partition key, sort key)}, string keys, all attributes projected.
    indexes: dict[str, tuple[str, str]] = field(default_factory=dict)


TABLES = (
    TableSpec(
        "AuditLog",
        "AutomationAuditLog",
        "executionId",
        ttl=False,
        setting="audit_table",
        purpose="one record per automated action (the AutomationAuditLog audit trail)",
        indexes=AUDIT_INDEXES,
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
        self.names = {spec.setting: spec.name for spec in specs}
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
            for index_name, (partition, sort) in spec.indexes.items():
                table.add_global_secondary_index(
                    index_name=index_name,
                    partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING),
                    projection_type=dynamodb.ProjectionType.ALL,
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

    def make_audit_append_only(self, writer_role_arn: str) -> None:
        """The audit table's resource policy: nobody (admins included) may update, delete or batch-write
        its items, and only the audit writer's role may put them. Holds even against an identity policy
        that grants more."""
        stack = cdk.Stack.of(self)
        # By its literal name: a Ref to the table inside its own properties would be a circular reference.
        table_arn = f"arn:aws:dynamodb:{stack.region}:{stack.account}:table/{self.names['audit_table']}"
        document = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="AppendOnly",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=list(AUDIT_REWRITE_ACTIONS),
                    resources=[table_arn],
                ),
                iam.PolicyStatement(
                    sid="OnlyTheAuditWriterPuts",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=list(AUDIT_WRITE_ACTIONS),
                    resources=[table_arn],
                    conditions={"ArnNotEquals": {"aws:PrincipalArn": writer_role_arn}},
                ),
            ]
        )
        self.audit.node.default_child.resource_policy = dynamodb.CfnTable.ResourcePolicyProperty(
            policy_document=stack.resolve(document.to_json())
        )
