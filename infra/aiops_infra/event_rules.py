"""One EventBridge rule per catalogue entry, its pattern taken from ``entry.trigger``, each targeting the
trigger Lambda with a retry policy and a shared SQS dead-letter queue. Events from member accounts arrive
on the default bus through the bus policy (see ``member_forwarding``)."""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from aiops_infra.nag import SQS_MANAGED_ENCRYPTION, acknowledge, skip_checkov
from aiops_infra.trust import service_principal
from matcarv_aiops.catalogue import CatalogueEntry

EVENTBRIDGE_ROLE_NAME = "AIOpsEventBridgeRole"
RETRY_ATTEMPTS = 8
MAX_EVENT_AGE = cdk.Duration.hours(2)


def rule_name(entry: CatalogueEntry) -> str:
    return f"aiops-{entry.id}"[:64]


class CatalogueRules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entries: Iterable[CatalogueEntry],
        function: lambda_.IFunction,
        member_account_ids: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        skip_checkov(self.dead_letter_queue, "CKV_AWS_27", SQS_MANAGED_ENCRYPTION)
        acknowledge(
            self.dead_letter_queue,
            "SQS3",
            "this queue is itself the dead-letter queue of the EventBridge rule targets",
        )
        # EventBridge targets use AIOpsEventBridgeRole; it may invoke the trigger Lambda and nothing else.
        self.role = iam.Role(
            self,
            "Role",
            role_name=EVENTBRIDGE_ROLE_NAME,
            assumed_by=service_principal(
                "events.amazonaws.com",
                account=stack.account,
                source_arn=f"arn:aws:events:{stack.region}:{stack.account}:rule/*",
            ),
            description="MatCarv AIOps EventBridge targets: invoke the trigger Lambda",
            inline_policies={
                "InvokeTrigger": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["lambda:InvokeFunction"], resources=[function.function_arn]
                        )
                    ]
                )
            },
        )
        self.rules: dict[str, events.Rule] = {}
        for entry in entries:
            rule = events.Rule(
                self,
                f"Rule-{entry.id}",
                rule_name=rule_name(entry),
                description=f"MatCarv AIOps {entry.id}: {entry.condition}"[:512],
                event_pattern=_event_pattern(entry.trigger),
            )
            rule.add_target(
                targets.LambdaFunction(
                    function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                )
            )
            rule.node.default_child.add_property_override("Targets.0.RoleArn", self.role.role_arn)
            self.rules[entry.id] = rule
        if member_account_ids:
            # Member accounts forward their catalogue events to this account's default bus.
            events.CfnEventBusPolicy(
                self,
                "MemberAccountsPutEvents",
                statement_id="AIOpsMemberAccounts",
                statement={
                    "Sid": "AIOpsMemberAccounts",
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:aws:iam::{account}:root" for account in member_account_ids]},
                    "Action": "events:PutEvents",
                    "Resource": f"arn:aws:events:{stack.region}:{stack.account}:event-bus/default",
                },
            )


def _event_pattern(trigger: dict) -> events.EventPattern:
    """``entry.trigger`` as CDK's EventPattern: top-level keys map to fields, everything else is passed on."""
    known = {
        "source": "source",
        "detail-type": "detail_type",
        "detail": "detail",
        "account": "account",
        "region": "region",
        "resources": "resources",
        "id": "id",
        "time": "time",
        "version": "version",
    }
    unknown = set(trigger) - set(known)
    if unknown:
        raise ValueError(f"EventBridge pattern has top-level keys CDK cannot express: {sorted(unknown)}")
    return events.EventPattern(**{known[key]: value for key, value in trigger.items()})
