"""Notifications that reach people: SNS always, Slack (the provider's webhook hook, through a real Airflow
connection to an HTTP server on 127.0.0.1) for what a human must act on, and SES for a key's owner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto.ses.models import ses_backends

from matcarv_aiops import METRIC_NAMESPACE, approvals
from matcarv_aiops.notifications import FAILURE_METRIC, Kind, notify, notify_owner
from matcarv_aiops.settings import reload_settings
from tests.events import ACCOUNT
from tests.remediations.notifications import TopicInbox
from tests.slack_server import slack_webhook

CONN = "slack_aiops_alerts"
SENDER = "aiops@example.com"


@pytest.fixture
def with_slack(aws, monkeypatch):
    monkeypatch.setenv("AIOPS_SLACK_CONN_ID", CONN)
    return reload_settings()


def _failures(channel: str) -> float:
    stats = boto3.client("cloudwatch", region_name="us-east-1").get_metric_statistics(
        Namespace=METRIC_NAMESPACE,
        MetricName=FAILURE_METRIC,
        Dimensions=[{"Name": "Channel", "Value": channel}, {"Name": "Kind", "Value": "approval_request"}],
        StartTime=datetime.now(UTC) - timedelta(minutes=5),
        EndTime=datetime.now(UTC) + timedelta(minutes=5),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(point["Sum"] for point in stats)


def test_an_approval_request_reaches_slack_with_kind_subject_and_link(with_slack, monkeypatch):
    inbox = TopicInbox(with_slack)
    with slack_webhook(monkeypatch, CONN) as posts:
        approvals.request(
            with_slack,
            execution_id="exec-slack-1",
            remediation="s3_public_access",
            dag_id="remediate_s3_public_access",
            run_id="ev_1",
            target="arn:aws:s3:::team-share",
            action="PutPublicAccessBlock on bucket team-share",
            diagnostics_uri="s3://aiops-diagnostics/x",
            rollback_plan="none",
            why="this remediation cannot be undone, so it always needs a human",
        )
    [post] = posts
    text = post["body"]["text"]
    assert "[approval_request] AIOps approval needed: s3_public_access on arn:aws:s3:::team-share" in text
    assert f"{with_slack.airflow.airflow_base_url}/dags/approve_remediation" in text  # the approval link
    assert "exec-slack-1" in text and post["body"]["blocks"][0]["type"] == "header"
    [sns] = inbox.messages("approval_request")  # and SNS has it too
    assert "exec-slack-1" in sns["Message"]


@pytest.mark.parametrize("kind", [Kind.FAILURE, Kind.APPROVAL_EXPIRED, Kind.INCIDENT, Kind.ESCALATION])
def test_failures_expirations_incidents_and_escalations_go_to_slack(with_slack, monkeypatch, kind):
    with slack_webhook(monkeypatch, CONN) as posts:
        notify(with_slack, kind, "AIOps: something for a human", {"executionId": "e-1"})
    assert [f"[{kind.value}] AIOps: something for a human" in p["body"]["text"] for p in posts] == [True]


def test_owner_notices_and_anomalies_stay_on_the_topic(with_slack, monkeypatch):
    with slack_webhook(monkeypatch, CONN) as posts:
        notify(with_slack, Kind.OWNER_NOTICE, "Your key was disabled", {"owner": "x"})
        notify(with_slack, Kind.ANOMALY, "anomaly", {"metric": "x"})
    assert posts == []


def test_a_slack_failure_keeps_the_sns_message_and_is_logged_and_counted(with_slack, monkeypatch, caplog):
    inbox = TopicInbox(with_slack)
    with slack_webhook(monkeypatch, CONN, status=403) as posts:
        message_id = notify(
            with_slack, Kind.APPROVAL_REQUEST, "AIOps approval needed", {"executionId": "e-2"}
        )
    assert len(posts) == 1  # Slack was tried, and refused
    [sns] = inbox.messages("approval_request")
    assert sns["MessageId"] == message_id
    assert f"the SNS message {message_id} was sent" in caplog.text and CONN in caplog.text
    assert _failures("slack") == 1


def test_a_missing_slack_connection_is_a_counted_failure_not_a_lost_message(with_slack, caplog):
    inbox = TopicInbox(with_slack)
    notify(with_slack, Kind.APPROVAL_REQUEST, "AIOps approval needed", {"executionId": "e-3"})
    assert len(inbox.messages("approval_request")) == 1
    assert CONN in caplog.text and _failures("slack") == 1


def test_without_a_slack_connection_only_sns_is_used(aws, monkeypatch):
    with slack_webhook(monkeypatch, CONN) as posts:
        notify(aws, Kind.FAILURE, "AIOps remediation FAILED", {"executionId": "e-4"})
    assert posts == []


@pytest.fixture
def with_sender(aws, monkeypatch):
    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress=SENDER)
    monkeypatch.setenv("AIOPS_OWNER_EMAIL_SENDER", SENDER)
    return reload_settings()


def _emails() -> list:
    return list(ses_backends[ACCOUNT]["us-east-1"].sent_messages)


def test_an_owner_with_an_address_is_emailed_through_ses(with_sender):
    inbox = TopicInbox(with_sender)
    where = notify_owner(
        with_sender, "team-payments@example.com", "Your IAM access key was disabled", {"k": "v"}
    )
    assert where == "email:team-payments@example.com"
    [email] = _emails()
    assert email.source == SENDER and email.destinations["ToAddresses"] == ["team-payments@example.com"]
    assert "k: v" in email.body and inbox.messages("notification") == []


def test_an_owner_without_an_address_is_told_through_the_topic(with_sender):
    inbox = TopicInbox(with_sender)
    assert notify_owner(with_sender, "payments-team", "Your key", {"k": "v"}).startswith("topic:")
    [note] = inbox.messages("notification")
    assert json.loads(note["MessageAttributes"]["payload"]["Value"])["owner"] == "payments-team"
    assert _emails() == []


def test_an_unverified_sender_falls_back_to_the_topic(aws, monkeypatch, caplog):
    monkeypatch.setenv("AIOPS_OWNER_EMAIL_SENDER", "not-verified@example.com")
    settings = reload_settings()
    inbox = TopicInbox(settings)
    assert notify_owner(settings, "owner@example.com", "Your key", {"k": "v"}).startswith("topic:")
    assert len(inbox.messages("notification")) == 1 and "telling the topic instead" in caplog.text
