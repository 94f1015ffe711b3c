"""The SNS topic for approval requests and alerts, encrypted with its own rotating key.

A customer managed key because CloudWatch alarms can publish to an encrypted topic only if the key
policy lets cloudwatch.amazonaws.com use the key; the AWS managed SNS key cannot allow that.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

# Key administration for the account (through IAM policies), action by action instead of kms:*.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
KEY_USE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, topic_name: str, email: str = "") -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="MatCarv AIOps notifications topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AccountAdministersKey",
                        actions=list(KEY_ADMIN_ACTIONS),
                        principals=[iam.AccountRootPrincipal()],
                        resources=["*"],
                    ),
                    iam.PolicyStatement(
                        sid="CloudWatchAlarmsPublish",
                        actions=list(KEY_USE_ACTIONS),
                        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                        resources=["*"],
                        conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
                    ),
                    iam.PolicyStatement(
                        sid="AccountPrincipalsUseKeyThroughSns",
                        actions=list(KEY_USE_ACTIONS),
                        principals=[iam.AccountRootPrincipal()],
                        resources=["*"],
                        conditions={"StringEquals": {"kms:ViaService": f"sns.{stack.region}.amazonaws.com"}},
                    ),
                ]
            ),
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=topic_name,
            display_name="MatCarv AIOps",
            master_key=self.key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def allow_publish(self, principals: list[iam.IPrincipal]) -> None:
        """Let principals of other accounts (member-account runbooks) publish, and use the key to do so."""
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"], resources=[self.topic.topic_arn], principals=principals
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=list(KEY_USE_ACTIONS),
                resources=["*"],
                principals=principals,
                conditions={
                    "StringEquals": {"kms:ViaService": f"sns.{cdk.Stack.of(self).region}.amazonaws.com"}
                },
            )
        )
