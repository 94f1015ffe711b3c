from __future__ import annotations

import json
import urllib.error
from datetime import date

import boto3
import pytest
from botocore.stub import Stubber

from matcarv_aiops.maintenance import cost_anomalies
from matcarv_aiops.maintenance.common import Clients
from tests.slack_server import slack_webhook

DAY = date(2026, 11, 26)
INTERVAL = {"StartDate": "2026-11-26", "EndDate": "2026-11-27"}


def _anomaly(i: int, impact: float) -> dict:
    """The documented GetAnomalies Anomaly shape."""
    return {
        "AnomalyId": f"anomaly-{i}",
        "AnomalyStartDate": "2026-11-26",
        "AnomalyEndDate": "2026-11-26",
        "DimensionValue": "Amazon Elastic Compute Cloud - Compute",
        "RootCauses": [
            {
                "Service": "Amazon EC2",
                "Region": "us-east-1",
                "LinkedAccount": "123456789012",
                "UsageType": "BoxUsage:m5.large",
            }
        ],
        "AnomalyScore": {"MaxScore": 0.9, "CurrentScore": 0.8},
        "Impact": {"MaxImpact": impact / 2, "TotalImpact": impact, "TotalImpactPercentage": 150.0},
        "MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/1a2b3c4d-aaaa-bbbb-cccc-1234567890ab",
        "Feedback": "YES",
    }


@pytest.fixture
def slack(monkeypatch):
    """A real HTTP server on 127.0.0.1 standing in for Slack's incoming webhook; the Airflow connection
    points the provider's hook at it."""
    with slack_webhook(monkeypatch, "slack_aiops") as received:
        yield received


def _ce(pages: list[list[dict]], runs: int = 1):
    client = boto3.client("ce", region_name="us-east-1")
    stubber = Stubber(client)
    for n, page in [(n, page) for _ in range(runs) for n, page in enumerate(pages)]:
        expected = {"DateInterval": INTERVAL, "MaxResults": 100}
        response = {"Anomalies": page}
        if n:
            expected["NextPageToken"] = f"token-{n}"
        if n + 1 < len(pages):
            response["NextPageToken"] = f"token-{n + 1}"
        stubber.add_response("get_anomalies", response, expected)
    stubber.activate()
    return client, stubber


def test_report_posts_top_anomalies_to_slack_and_keeps_the_full_report(aws, slack, run_for, audit_rows):
    ce, stubber = _ce(
        [[_anomaly(i, 10.0 * i) for i in range(1, 8)], [_anomaly(i, 10.0 * i) for i in range(8, 13)]]
    )
    clients = Clients(aws, overrides={"ce": ce})
    result = cost_anomalies.report(aws, clients, run_for("cost_anomaly_report"), day=DAY)
    stubber.assert_no_pending_responses()
    assert result["anomalies"] == 12 and result["posted"]

    [post] = slack
    assert post["path"] == "/services/T000/B000/XXXX"
    text = post["body"]["text"]
    assert "12 cost anomalies on 2026-11-26" in text and "$780.00" in text
    assert text.index("$120.00") < text.index("$110.00")  # by impact
    assert "anomaly-detection/monitors/1a2b3c4d-aaaa-bbbb-cccc-1234567890ab/anomalies/anomaly-12" in text
    assert "…and 2 more" in text and "Amazon EC2 / us-east-1 / BoxUsage:m5.large" in text

    s3 = boto3.client("s3", region_name="us-east-1")
    stored = json.loads(
        s3.get_object(Bucket=aws.platform.diagnostics_bucket, Key="reports/cost-anomalies/2026-11-26.json")[
            "Body"
        ].read()
    )
    assert (
        stored["count"] == 12
        and len(stored["anomalies"]) == 12
        and stored["anomalies"][0]["AnomalyId"] == "anomaly-12"
    )
    [row] = audit_rows("cost_anomaly_report")
    assert "12 anomalies" in row["action"] and row["outcome"] == "SUCCESS"


def test_a_quiet_day_posts_an_all_clear(aws, slack, run_for):
    ce, _ = _ce([[]])
    cost_anomalies.report(aws, Clients(aws, overrides={"ce": ce}), run_for("cost_anomaly_report"), day=DAY)
    assert slack[0]["body"]["text"] == ":white_check_mark: No cost anomalies on 2026-11-26."


def test_rerun_after_a_crash_rewrites_the_report_posts_once_and_keeps_the_first_record(
    aws, slack, run_for, audit_rows, monkeypatch
):
    ce, _ = _ce([[_anomaly(1, 50.0)]], runs=3)
    clients = Clients(aws, overrides={"ce": ce})

    def slack_down(message):
        raise ConnectionError("slack unreachable")

    with pytest.raises(ConnectionError):
        cost_anomalies.report(aws, clients, run_for("cost_anomaly_report"), day=DAY, send=slack_down)
    assert slack == [] and audit_rows() == []
    cost_anomalies.report(aws, clients, run_for("cost_anomaly_report"), day=DAY)
    again = cost_anomalies.report(aws, clients, run_for("cost_anomaly_report"), day=DAY)
    assert len(slack) == 1 and again["posted"] is False
    [row] = audit_rows()  # one record: the run that posted wrote it, and the re-run leaves it standing
    assert row["action"].endswith("; posted to Slack") and "already" not in row["action"]


def test_throttled_report_upload_is_retried(aws, slack, run_for, throttle):
    ce, _ = _ce([[_anomaly(1, 5.0)]])
    throttled = throttle("PutObject", 2)
    cost_anomalies.report(aws, Clients(aws, overrides={"ce": ce}), run_for("cost_anomaly_report"), day=DAY)
    assert throttled["PutObject"] == 2 and len(slack) == 1


def test_slack_refusing_the_post_fails_the_run(aws, run_for, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_AIOPS",
        json.dumps({"conn_type": "slackwebhook", "password": "http://127.0.0.1:9/x"}),
    )
    ce, _ = _ce([[]])
    with pytest.raises(urllib.error.URLError):  # the webhook's connection is refused
        cost_anomalies.report(
            aws, Clients(aws, overrides={"ce": ce}), run_for("cost_anomaly_report"), day=DAY
        )
