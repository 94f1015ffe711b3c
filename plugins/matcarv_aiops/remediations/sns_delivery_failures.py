"""Alert on-call and disable the one subscription that makes an SNS topic fail its deliveries.

SNS has no way to pause a subscription, and deleting it would lose its confirmation (an HTTP or email
endpoint would have to confirm again). So "disabled" means a filter policy that matches nothing: it
requires a message attribute, ``aiops-disabled-by``, carrying this execution's id, which no publisher
sends. The subscription's own filter policy and scope are recorded first, and rollback puts them back.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from botocore.exceptions import ClientError

from matcarv_aiops.notifications import Kind
from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list, unrecorded
from matcarv_aiops.remediations.metric_reads import total

DISABLED_ATTRIBUTE = "aiops-disabled-by"
# SetSubscriptionAttributes with "{}" removes a filter policy (documented in the SNS CLI reference).
NO_FILTER_POLICY = "{}"
DEFAULT_SCOPE = "MessageAttributes"


def disabling_policy(execution_id: str) -> dict:
    return {DISABLED_ATTRIBUTE: [execution_id]}


def _code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


@register
class SnsDeliveryFailures(Remediation):
    remediation_id = "sns_delivery_failures"

    def _failures_by_destination(self, ctx, topic: str) -> dict[str, int] | None:
        """Failed deliveries per destination from the delivery status logs; None when the topic logs none."""
        group = f"sns/{ctx.target.region}/{ctx.target.account}/{topic}/Failure"
        since = int((time.time() - ctx.threshold("lookback_minutes") * 60) * 1000)
        counts: Counter[str] = Counter()
        read, limit = 0, int(ctx.threshold("max_log_events"))
        try:
            for page in (
                ctx.client("logs")
                .get_paginator("filter_log_events")
                .paginate(logGroupName=group, startTime=since)
            ):
                for event in page.get("events", []):
                    read += 1
                    try:
                        record = json.loads(event["message"])
                    except ValueError:
                        continue
                    if record.get("status") == "FAILURE" and record.get("delivery", {}).get("destination"):
                        counts[record["delivery"]["destination"]] += 1
                if read >= limit:
                    break
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        return dict(counts)

    def _subscription_attributes(self, ctx, arn: str) -> dict:
        return ctx.client("sns").get_subscription_attributes(SubscriptionArn=arn)["Attributes"]

    def collect_diagnostics(self, ctx):
        sns, topic_arn, topic = ctx.client("sns"), ctx.target.arn, ctx.target.resource_id
        try:
            sns.get_topic_attributes(TopicArn=topic_arn)
        except ClientError as exc:
            if _code(exc) == "NotFound":
                return None
            raise
        minutes = ctx.threshold("lookback_minutes")
        cloudwatch = ctx.client("cloudwatch")
        failed = total(
            cloudwatch, "AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": topic}, minutes=minutes
        )
        delivered = total(
            cloudwatch, "AWS/SNS", "NumberOfNotificationsDelivered", {"TopicName": topic}, minutes=minutes
        )
        subscriptions = [
            s
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
            for s in page["Subscriptions"]
            if s["SubscriptionArn"].startswith("arn:")
        ]
        failures = self._failures_by_destination(ctx, topic)
        state = {
            "topic": topic,
            "topic_arn": topic_arn,
            "failed": failed,
            "delivered": delivered,
            "failure_rate_percent": 100.0 * failed / (failed + delivered) if failed + delivered else 0.0,
            "failures_by_destination": failures,
            "subscription_count": len(subscriptions),
            "subscription": None,
            "tags": tags_from_list(sns.list_tags_for_resource(ResourceArn=topic_arn).get("Tags")),
        }
        ranked = sorted(((failures or {}).get(s["Endpoint"], 0), s["SubscriptionArn"]) for s in subscriptions)
        ranked = [r for r in ranked if r[0] > 0]
        if ranked and (len(ranked) == 1 or ranked[-1][0] > ranked[-2][0]):
            failing = next(s for s in subscriptions if s["SubscriptionArn"] == ranked[-1][1])
            attributes = self._subscription_attributes(ctx, failing["SubscriptionArn"])
            state["subscription"] = {
                "arn": failing["SubscriptionArn"],
                "protocol": failing["Protocol"],
                "endpoint": failing["Endpoint"],
                "failures": ranked[-1][0],
                "filter_policy": attributes.get("FilterPolicy"),
                "filter_policy_scope": attributes.get("FilterPolicyScope"),
            }
        elif ranked:
            state["tied_subscriptions"] = [arn for count, arn in ranked if count == ranked[-1][0]]
        return state

    def _own_topic(self, ctx, state) -> bool:
        settings = ctx.settings
        return (
            state["topic_arn"] == settings.platform.sns_topic_arn
            or state["topic"] == settings.platform.sns_topic_name
        )

    def check_eligibility(self, ctx, state):
        if self._own_topic(ctx, state):
            return "this is AIOps's own notification topic: disabling a subscription would silence on-call"
        alarm = ctx.entry.metric_alarm  # a percentage of deliveries (percent_of)
        rate, limit = state["failure_rate_percent"], alarm.threshold
        if not alarm.breached(rate):
            return (
                f"already fixed: {rate:.1f} % of deliveries failed in the last "
                f"{ctx.threshold('lookback_minutes'):g} minutes (limit {limit:g} %)"
            )
        if state["failures_by_destination"] is None:
            return (
                "cannot tell which subscription fails: the topic has no delivery status logs "
                f"(log group sns/{ctx.target.region}/{ctx.target.account}/{state['topic']}/Failure)"
            )
        subscription = state["subscription"]
        if subscription is None:
            if state.get("tied_subscriptions"):
                return (
                    f"several subscriptions fail equally often ({state['tied_subscriptions']}): needs a human"
                )
            return "no current subscription delivers to a destination the delivery status logs report failing"
        if subscription["filter_policy"] and DISABLED_ATTRIBUTE in json.loads(subscription["filter_policy"]):
            return f"subscription {subscription['arn']} is already disabled"
        return None

    def plan(self, ctx, state):
        subscription = state["subscription"]
        return (
            f"alert on-call and disable subscription {subscription['arn']} ({subscription['protocol']} to "
            f"{subscription['endpoint']}, {subscription['failures']} failed deliveries) with a filter policy "
            f"that matches nothing; {state['failure_rate_percent']:.1f} % of {state['topic']}'s deliveries "
            "failed"
        )

    def execute(self, ctx, state):
        sns, subscription = ctx.client("sns"), state["subscription"]
        if (subscription["filter_policy_scope"] or DEFAULT_SCOPE) != DEFAULT_SCOPE:
            sns.set_subscription_attributes(
                SubscriptionArn=subscription["arn"],
                AttributeName="FilterPolicyScope",
                AttributeValue=DEFAULT_SCOPE,
            )
        sns.set_subscription_attributes(
            SubscriptionArn=subscription["arn"],
            AttributeName="FilterPolicy",
            AttributeValue=json.dumps(disabling_policy(ctx.execution_id)),
        )
        message_id = ctx.notify(
            Kind.FAILURE,
            f"AIOps: SNS subscription disabled on {state['topic']} ({state['failure_rate_percent']:.0f} % "
            "failing)",
            {
                "executionId": ctx.execution_id,
                "remediation": self.remediation_id,
                "topic": state["topic_arn"],
                "subscription": subscription["arn"],
                "protocol": subscription["protocol"],
                "endpoint": subscription["endpoint"],
                "failedDeliveries": subscription["failures"],
                "failureRatePercent": round(state["failure_rate_percent"], 1),
                "howDisabled": (
                    f"filter policy requiring message attribute {DISABLED_ATTRIBUTE}={ctx.execution_id}"
                ),
                "toRestore": "set its FilterPolicy back to "
                f"{subscription['filter_policy'] or NO_FILTER_POLICY} "
                f"(scope {subscription['filter_policy_scope'] or DEFAULT_SCOPE}) once the endpoint is fixed",
            },
        )
        return {"subscription_arn": subscription["arn"], "alert_message_id": message_id}

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("the subscription it disabled")
        policy = self._subscription_attributes(ctx, result["subscription_arn"]).get("FilterPolicy")
        if not policy or json.loads(policy) != disabling_policy(ctx.execution_id):
            return Validation(
                False, f"subscription's filter policy reads {policy!r}, not the disabling policy"
            )
        return Validation(True, f"subscription {result['subscription_arn']} is disabled; on-call alerted")

    def rollback(self, ctx, state, result):
        sns, subscription = ctx.client("sns"), state["subscription"]
        recorded_scope = subscription["filter_policy_scope"] or DEFAULT_SCOPE
        if recorded_scope != DEFAULT_SCOPE:  # the scope first: SNS checks the policy against it
            sns.set_subscription_attributes(
                SubscriptionArn=subscription["arn"],
                AttributeName="FilterPolicyScope",
                AttributeValue=recorded_scope,
            )
        sns.set_subscription_attributes(
            SubscriptionArn=subscription["arn"],
            AttributeName="FilterPolicy",
            AttributeValue=subscription["filter_policy"] or NO_FILTER_POLICY,
        )
        return (
            f"restored the filter policy of {subscription['arn']} to "
            f"{subscription['filter_policy'] or 'none'} (scope {recorded_scope})"
        )
