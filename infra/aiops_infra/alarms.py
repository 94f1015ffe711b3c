"""Alarms on the platform itself, to the notifications topic: events that could not be delivered (DLQ
depth), trigger Lambda errors, and remediations that ended in FAILURE."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

METRIC_NAMESPACE = "AIOps/Automation"
METRIC_NAME = "RemediationExecuted"


class OperationalAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        dead_letter_queue: sqs.IQueue,
        trigger_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        period = cdk.Duration.minutes(5)
        self.dlq_depth = cloudwatch.Alarm(
            self,
            "DeadLetterQueueDepth",
            alarm_description="Events EventBridge could not deliver to the trigger Lambda",
            metric=dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=period, statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.lambda_errors = cloudwatch.Alarm(
            self,
            "TriggerErrors",
            alarm_description="The trigger Lambda failed",
            metric=trigger_function.metric_errors(period=period, statistic="Sum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.remediation_failures = cloudwatch.Alarm(
            self,
            "RemediationFailures",
            alarm_description="A remediation ended with outcome FAILURE",
            metric=cloudwatch.Metric(
                namespace=METRIC_NAMESPACE,
                metric_name=METRIC_NAME,
                dimensions_map={"Outcome": "FAILURE"},
                period=period,
                statistic="Sum",
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.dlq_depth, self.lambda_errors, self.remediation_failures):
            alarm.add_alarm_action(actions.SnsAction(topic))
