"""Notifications to the people who run AIOps and own the resources: one SNS topic (``AIOpsNotifications``),
a readable body, and the kind as a message attribute, so each team can subscribe to the kinds it wants
with a filter policy on ``kind``."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from matcarv_aiops.aws import hub_client, topic_arn
from matcarv_aiops.settings import Settings


class Kind(StrEnum):
    """What a message is about; the value is the ``kind`` attribute subscribers filter on."""

    APPROVAL_REQUEST = "approval_request"  # a human must approve or reject a change
    FAILURE = "alert"  # a remediation or job failed, or found something a human must look at
    APPROVAL_EXPIRED = "approval_expired"  # nobody decided in time: the problem is still there, unfixed
    ESCALATION = "escalation"  # a resource keeps failing or flapping: AIOps stops and hands it over
    INCIDENT = "incident"  # an incident to open (e.g. SEV-2: CloudTrail was turned off)
    OWNER_NOTICE = "notification"  # a resource's owner is told what was done to their resource
    ANOMALY = "anomaly"  # the anomaly detection job's findings


def notify(settings: Settings, kind: Kind, subject: str, message: dict[str, Any]) -> str:
    """Publish one message to the AIOps topic; returns its SNS message id."""
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
    return response["MessageId"]
