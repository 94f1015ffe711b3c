"""One EventBridge rule per catalogue entry, its pattern taken from ``entry.trigger``, each targeting the
trigger Lambda with a retry policy and a shared SQS dead-letter queue. Events from member accounts arrive
on the default bus through the bus policy; events of the other Regions, the hub account's own as well,
through the regional stacks' forwarding rules (``add_forwarding_rules``)."""

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


def rule_source_arns(account: str, regions: Iterable[str]) -> list[str]:
    """The rules EventBridge assumes AIOpsEventBridgeRole for: this account's, in each Region covered."""
    return [f"arn:aws:events:{region}:{account}:rule/*" for region in regions]


def default_bus_arn(account: str, region: str) -> str:
    return f"arn:aws:events:{region}:{account}:event-bus/default"


def add_forwarding_rules(
    scope: Construct, *, entries: Iterable[CatalogueEntry], bus_arn: str, role_arn: str
) -> dict[str, events.CfnRule]:
    """One rule per entry, its pattern the entry's, forwarding the matching events to the hub's bus
    (``bus_arn``, in the hub's Region: EventBridge keeps each event's own account and Region) as
    ``role_arn``, which may put events on that bus."""
    return {
        entry.id: events.CfnRule(
            scope,
            f"Forward-{entry.id}",
            name=rule_name(entry),
            description=f"MatCarv AIOps {entry.id}: forward to the hub"[:512],
            event_pattern=entry.trigger,
            targets=[events.CfnRule.TargetProperty(id="hub", arn=bus_arn, role_arn=role_arn)],
        )
        for entry in entries
    }


class CatalogueRules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entries: Iterable[CatalogueEntry],
        function: lambda_.IFunction,
        member_account_ids: tuple[str, ...] = (),
        other_regions: tuple[str, ...] = (),
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
        # EventBridge targets use AIOpsEventBridgeRole; it may invoke the trigger Lambda and nothing else,
        # and, with other Regions, forward their rules' events to this Region's default bus.
        home_bus = default_bus_arn(stack.account, stack.region)
        policies = {
            "InvokeTrigger": iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn])
                ]
            )
        }
        if other_regions:
            policies["ForwardToHub"] = iam.PolicyDocument(
                statements=[iam.PolicyStatement(actions=["events:PutEvents"], resources=[home_bus])]
            )
        self.role = iam.Role(
            self,
            "Role",
            role_name=EVENTBRIDGE_ROLE_NAME,
            assumed_by=service_principal(
                "events.amazonaws.com",
                account=stack.account,
                source_arn=rule_source_arns(stack.account, (stack.region, *other_regions)),
            ),
            description="MatCarv AIOps EventBridge targets: invoke the trigger Lambda"
            + (", forward other Regions' events to it" if other_regions else ""),
            inline_policies=policies,
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
            # Member accounts forward their catalogue events to this account's default bus, from every
            # Region they cover (the account is the principal, whichever Region its rule is in).
            events.CfnEventBusPolicy(
                self,
                "MemberAccountsPutEvents",
                statement_id="AIOpsMemberAccounts",
                statement={
                    "Sid": "AIOpsMemberAccounts",
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:aws:iam::{account}:root" for account in member_account_ids]},
                    "Action": "events:PutEvents",
                    "Resource": home_bus,
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
