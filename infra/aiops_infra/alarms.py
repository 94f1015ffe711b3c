"""Alarms on the platform itself, to the notifications topic: events that could not be delivered (DLQ
depth), trigger invocations kept for a redrive (depth, and age long before the queue's retention ends),
trigger Lambda errors, and remediations that ended in FAILURE."""

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
# A kept event older than this has outlived every redrive pass for days: a human must look before SQS's
# 14-day retention drops it.
KEPT_EVENT_MAX_AGE = cdk.Duration.days(3)


class OperationalAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        dead_letter_queue: sqs.IQueue,
        trigger_function: lambda_.IFunction,
        failed_events_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        period = cdk.Duration.minutes(5)

        def above(construct_id: str, description: str, metric: cloudwatch.IMetric, threshold: float = 0):
            """An alarm when one 5-minute period of ``metric`` is above ``threshold``; no data is fine."""
            return cloudwatch.Alarm(
                self,
                construct_id,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        self.dlq_depth = above(
            "DeadLetterQueueDepth",
            "Events EventBridge could not deliver to the trigger Lambda",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=period, statistic="Maximum"
            ),
        )
        self.lambda_errors = above(
            "TriggerErrors",
            "The trigger Lambda failed",
            trigger_function.metric_errors(period=period, statistic="Sum"),
        )
        self.remediation_failures = above(
            "RemediationFailures",
            "A remediation ended with outcome FAILURE",
            cloudwatch.Metric(
                namespace=METRIC_NAMESPACE,
                metric_name=METRIC_NAME,
                dimensions_map={"Outcome": "FAILURE"},
                period=period,
                statistic="Sum",
            ),
        )
        alarms = [self.dlq_depth, self.lambda_errors, self.remediation_failures]
        if failed_events_queue is not None:
            self.failed_events_depth = above(
                "FailedEventsDepth",
                "Trigger invocations failed and were kept; the redrive replays them once MWAA answers "
                "(aiops redrive by hand)",
                failed_events_queue.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum"
                ),
            )
            self.failed_events_age = above(
                "FailedEventsAge",
                "A kept trigger event is days old: replay or inspect it (aiops redrive) before the queue's "
                "retention drops it",
                failed_events_queue.metric_approximate_age_of_oldest_message(
                    period=period, statistic="Maximum"
                ),
                threshold=KEPT_EVENT_MAX_AGE.to_seconds(),
            )
            alarms += [self.failed_events_depth, self.failed_events_age]
        for alarm in alarms:
            alarm.add_alarm_action(actions.SnsAction(topic))
