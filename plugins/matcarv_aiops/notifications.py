"""Notifications to the people who run AIOps and own the resources: one SNS topic (``AIOpsNotifications``),
a readable body, and the kind as a message attribute, so each team can subscribe to the kinds it wants
with a filter policy on ``kind``.

The kinds a human must act on (approval requests, failures, expired approvals, escalations, incidents)
also go to Slack through the Slack provider's incoming-webhook hook on the Airflow connection
``slack_conn_id`` (empty: SNS only). SNS goes first and stands on its own: a Slack failure is logged and
counted (metric ``NotificationFailed``, dimension ``Channel``) and never fails the run or loses the SNS
message. A resource's owner (``notify_owner``) is emailed through SES when their tag holds an address,
else told through the topic.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from matcarv_aiops import METRIC_NAMESPACE
from matcarv_aiops.aws import hub_client, topic_arn
from matcarv_aiops.settings import Settings

log = logging.getLogger(__name__)

FAILURE_METRIC = "NotificationFailed"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Kind(StrEnum):
    """What a message is about; the value is the ``kind`` attribute subscribers filter on."""

    APPROVAL_REQUEST = "approval_request"  # a human must approve or reject a change
    FAILURE = "alert"  # a remediation or job failed, or found something a human must look at
    APPROVAL_EXPIRED = "approval_expired"  # nobody decided in time: the problem is still there, unfixed
    ESCALATION = "escalation"  # a resource keeps failing or flapping: AIOps stops and hands it over
    INCIDENT = "incident"  # an incident to open (e.g. SEV-2: CloudTrail was turned off)
    OWNER_NOTICE = "notification"  # a resource's owner is told what was done to their resource
    ANOMALY = "anomaly"  # the anomaly detection job's findings


# What a person must act on, so it is also posted to Slack.
SLACK_KINDS = frozenset(
    {Kind.APPROVAL_REQUEST, Kind.FAILURE, Kind.APPROVAL_EXPIRED, Kind.ESCALATION, Kind.INCIDENT}
)
_SLACK_HEADINGS = {
    Kind.APPROVAL_REQUEST: ":raised_hand: approval needed",
    Kind.FAILURE: ":rotating_light: failure",
    Kind.APPROVAL_EXPIRED: ":hourglass: approval expired",
    Kind.ESCALATION: ":sos: escalation",
    Kind.INCIDENT: ":fire: incident",
}


def notify(settings: Settings, kind: Kind, subject: str, message: dict[str, Any]) -> str:
    """Publish one message to the AIOps topic, and post it to Slack when a human must act on it;
    returns its SNS message id."""
    text = "\n".join(f"{key}: {value}" for key, value in message.items())
    response = hub_client("sns", settings).publish(
        TopicArn=topic_arn(settings),
        Subject=subject[:100],
        Message=text,
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": kind.value},
            "payload": {"DataType": "String", "StringValue": json.dumps(message, default=str)[:2000]},
        },
    )
    message_id = response["MessageId"]
    if kind in SLACK_KINDS and settings.platform.slack_conn_id:
        post_to_slack(settings, kind, subject, message, sns_message_id=message_id)
    return message_id


def slack_webhook_sender(conn_id: str) -> Callable[[dict], None]:
    """Post a message ({"text", "blocks"}) through the Slack provider's incoming-webhook hook on the Airflow
    connection ``conn_id`` (type slackwebhook). The provider is imported here, when sending: the core
    imports no Airflow."""

    def send(message: dict) -> None:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id=conn_id).send(text=message["text"], blocks=message["blocks"])

    return send


def slack_message(kind: Kind, subject: str, message: dict[str, Any]) -> dict:
    """The Slack form of a notification: the kind and subject as the heading, every field below (links,
    such as the approval request's, stay clickable)."""
    heading = f"{_SLACK_HEADINGS.get(kind, kind.value)} [{kind.value}] {subject}"
    lines = "\n".join(f"*{key}*: {value}" for key, value in message.items())
    return {
        "text": f"{heading}\n{lines}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": heading[:150], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000] or "-"}},
        ],
    }


def post_to_slack(
    settings: Settings,
    kind: Kind,
    subject: str,
    message: dict[str, Any],
    *,
    sns_message_id: str,
    send: Callable[[dict], None] | None = None,
) -> bool:
    """Post to Slack; on failure log and count it and return False: the SNS message stands."""
    conn_id = settings.platform.slack_conn_id
    try:
        (send or slack_webhook_sender(conn_id))(slack_message(kind, subject, message))
        return True
    except Exception as exc:  # the provider raises many kinds; none may cost the SNS message or the run
        log.warning(
            "Slack post of %s %r through connection %s failed (%s: %s); the SNS message %s was sent, "
            "so subscribers of the topic have it",
            kind.value,
            subject,
            conn_id,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
            sns_message_id,
        )
        count_failure(settings, "slack", kind.value)
        return False


def count_failure(settings: Settings, channel: str, kind: str) -> None:
    """One ``NotificationFailed`` data point (channel, kind) in AIOps/Automation, for an alarm to watch. A
    failure to count is logged, never raised: it must not turn a delivered SNS message into a failed run."""
    try:
        hub_client("cloudwatch", settings).put_metric_data(
            Namespace=METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": FAILURE_METRIC,
                    "Dimensions": [{"Name": "Channel", "Value": channel}, {"Name": "Kind", "Value": kind}],
                    "Value": 1,
                    "Unit": "Count",
                }
            ],
        )
    except Exception as exc:  # counting is best effort; the log line above already says what failed
        log.warning("could not count a %s notification failure (%s): %s", channel, kind, exc)


def email_address(value: str) -> str | None:
    value = value.strip()
    return value if _EMAIL.match(value) else None


def notify_owner(settings: Settings, owner: str, subject: str, message: dict[str, Any]) -> str:
    """Tell a resource's owner what was done: an email through SES from ``owner_email_sender`` when
    ``owner`` is an address and a sender is configured; otherwise, or when SES refuses, the AIOps topic
    (kind ``notification``, with the owner in the message). Returns where it went: ``email:<address>``
    or ``topic:<message id>``."""
    address = email_address(owner)
    sender = settings.platform.owner_email_sender
    if address and sender:
        body = "\n".join(f"{key}: {value}" for key, value in message.items())
        try:
            hub_client("ses", settings).send_email(
                Source=sender,
                Destination={"ToAddresses": [address]},
                Message={
                    "Subject": {"Data": subject[:200], "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
                },
            )
            return f"email:{address}"
        except Exception as exc:  # an unverified sender or a refused address: the topic still tells people
            log.warning(
                "SES email to owner %s from %s failed (%s); telling the topic instead", address, sender, exc
            )
            count_failure(settings, "email", Kind.OWNER_NOTICE.value)
    fallback = {"owner": owner, **message}
    return f"topic:{notify(settings, Kind.OWNER_NOTICE, subject, fallback)}"
