"""The audit writer's own role, ``AIOpsAuditWriter``: the only principal that may add to the audit trail.

It may put a record into the audit table (``dynamodb:PutItem``, which also governs the Puts of the
writer's TransactWriteItems calls) and copy it to the Object Lock archive (``s3:PutObject``, and
``s3:GetObject`` for the HeadObject that checks a retried write's copy). Nothing else: no update, no
delete, no BatchWriteItem, no read of the table (the DAGs read with the execution role).

Only the MWAA execution role may assume it, and only under the session name the core uses
(``matcarv_aiops.audit.WRITER_SESSION_NAME``), so CloudTrail shows every audit write under one name. The
table's resource policy and the archive's bucket policy refuse puts from every other principal.

DynamoDB has no condition key that says whether a put is conditional (its keys: LeadingKeys,
Attributes, Select, ReturnValues, ReturnConsumedCapacity, EnclosingOperation), so "never overwrite" is
held by the writer's ``attribute_not_exists`` condition in code; what IAM holds is that nobody else can
put, and nobody at all can update, delete or batch-write.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from aiops_infra.nag import acknowledge
from aiops_infra.remediation_roles import nag_finding
from matcarv_aiops.audit import ARCHIVE_PREFIX, WRITER_SESSION_NAME

AUDIT_WRITER_ROLE_NAME = "AIOpsAuditWriter"
# What the writer may do, and nothing more.
AUDIT_WRITER_TABLE_ACTIONS = ("dynamodb:PutItem",)
AUDIT_WRITER_ARCHIVE_ACTIONS = ("s3:PutObject", "s3:GetObject")


def audit_writer_role_arn(stack: cdk.Stack) -> str:
    """The writer's ARN by its fixed name: the audit table's resource policy names it without a reference
    to the role, whose own policy refers to the table (a reference both ways would be a cycle)."""
    return f"arn:{stack.partition}:iam::{stack.account}:role/{AUDIT_WRITER_ROLE_NAME}"


class AuditWriterRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        archive_bucket: s3.IBucket,
        trusted_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        archive_objects = archive_bucket.arn_for_objects(f"{ARCHIVE_PREFIX}*")
        statements = [
            iam.PolicyStatement(
                sid="AddAuditRecords", actions=list(AUDIT_WRITER_TABLE_ACTIONS), resources=[table.table_arn]
            ),
            iam.PolicyStatement(
                sid="CopyAuditRecords",
                actions=list(AUDIT_WRITER_ARCHIVE_ACTIONS),
                resources=[archive_objects],
            ),
        ]
        self.role = iam.Role(
            self,
            "Role",
            role_name=AUDIT_WRITER_ROLE_NAME,
            assumed_by=iam.ArnPrincipal(trusted_role.role_arn).with_conditions(
                {"StringEquals": {"sts:RoleSessionName": WRITER_SESSION_NAME}}
            ),
            description="MatCarv AIOps audit writer: adds audit records and their archive copies only",
            max_session_duration=cdk.Duration.hours(1),
            inline_policies={"AppendAuditRecords": iam.PolicyDocument(statements=statements)},
        )
        acknowledge(
            self.role,
            "IAM5",
            f"each record's copy is {ARCHIVE_PREFIX}<executionId>.json in the Object Lock archive bucket, "
            "named by the execution; compliance mode keeps every version from deletion",
            finding=nag_finding(archive_objects, cdk.Stack.of(self)),
        )
        # The execution role may assume this one role (its DAGs write the records through it).
        self.assume_policy = iam.Policy(
            self,
            "AssumeAuditWriter",
            statements=[iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[self.role.role_arn])],
        )
        trusted_role.attach_inline_policy(self.assume_policy)
        # Only the writer adds copies: any other principal's put into the archive is refused.
        archive_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheAuditWriterCopies",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[archive_bucket.arn_for_objects("*")],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": audit_writer_role_arn(cdk.Stack.of(self))}},
            )
        )
