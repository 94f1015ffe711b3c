"""cost_anomaly_report: yesterday's Cost Explorer anomalies, posted to Slack, with the full report in S3.

GetAnomalies (every page) for the day before the run's date. The Slack message (through the Slack
provider's incoming-webhook hook) lists the top anomalies by total impact with their root causes and a
console link each; a day without anomalies posts a short all-clear. The whole report (every anomaly as
the API returned it) goes to ``s3://<diagnostics bucket>/reports/cost-anomalies/<date>.json``.

Re-running a day rewrites the same S3 object and does not post again: the post is recorded in the state
table (``cost-report#<date>``) once Slack accepted it. Reads only: it changes no AWS resource.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta

from matcarv_aiops.maintenance.common import Clients, JobPermissions, RunInfo, audit, audit_writer
from matcarv_aiops.models import Outcome, iso_utc
from matcarv_aiops.notifications import slack_webhook_sender
from matcarv_aiops.settings import Settings

JOB = "cost_anomaly_report"
# Cost Explorer's anomalies; the report goes to the diagnostics bucket and Slack with the execution role.
PERMISSIONS = JobPermissions(actions=("ce:GetAnomalies",))
CONSOLE = "https://console.aws.amazon.com/cost-management/home#/anomaly-detection"


def fetch_anomalies(clients: Clients, day: date) -> list[dict]:
    ce = clients("ce")
    anomalies, token = [], None
    interval = {"StartDate": day.isoformat(), "EndDate": (day + timedelta(days=1)).isoformat()}
    while True:
        page = ce.get_anomalies(
            DateInterval=interval, MaxResults=100, **({"NextPageToken": token} if token else {})
        )
        anomalies.extend(page.get("Anomalies", []))
        token = page.get("NextPageToken")
        if not token:
            return anomalies


def _impact(anomaly: dict) -> float:
    return float(
        (anomaly.get("Impact") or {}).get("TotalImpact", (anomaly.get("Impact") or {}).get("MaxImpact", 0.0))
    )


def anomaly_link(anomaly: dict) -> str:
    monitor = anomaly.get("MonitorArn", "").rsplit("/", 1)[-1]
    return f"{CONSOLE}/monitors/{monitor}/anomalies/{anomaly['AnomalyId']}"


def _root_causes(anomaly: dict) -> str:
    causes = []
    for cause in anomaly.get("RootCauses") or []:
        parts = [cause.get(k) for k in ("Service", "Region", "UsageType") if cause.get(k)]
        account = cause.get("LinkedAccountName") or cause.get("LinkedAccount")
        if account:
            parts.append(f"account {account}")
        if parts:
            causes.append(" / ".join(parts))
    return "; ".join(causes[:3]) or "no root cause reported"


def slack_message(anomalies: list[dict], day: date, report_uri: str, top: int) -> dict:
    if not anomalies:
        text = f":white_check_mark: No cost anomalies on {day.isoformat()}."
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    ranked = sorted(anomalies, key=_impact, reverse=True)
    total = sum(_impact(a) for a in anomalies)
    head = (
        f":rotating_light: {len(anomalies)} cost anomalies on {day.isoformat()}, total impact ${total:,.2f}"
    )
    lines = []
    for anomaly in ranked[:top]:
        impact = anomaly.get("Impact") or {}
        pct = impact.get("TotalImpactPercentage")
        lines.append(
            f"• <{anomaly_link(anomaly)}|${_impact(anomaly):,.2f}>"
            + (f" (+{pct:.0f}%)" if pct is not None else "")
            + f" {anomaly.get('DimensionValue', '')}: {_root_causes(anomaly)}"
        )
    more = f"\n…and {len(ranked) - top} more" if len(ranked) > top else ""
    body = "\n".join(lines) + more + f"\nFull report: {report_uri}"
    return {
        "text": f"{head}\n{body}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": head[:150], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
        ],
    }


def report(
    settings: Settings,
    clients: Clients,
    run: RunInfo,
    *,
    day: date,
    send: Callable[[dict], None] | None = None,
) -> dict:
    send = send or slack_webhook_sender(settings.maintenance.slack_webhook_conn_id)
    anomalies = fetch_anomalies(clients, day)
    key = f"reports/cost-anomalies/{day.isoformat()}.json"
    uri = f"s3://{settings.platform.diagnostics_bucket}/{key}"
    document = {
        "date": day.isoformat(),
        "generatedAt": iso_utc(),
        "runId": run.run_id,
        "count": len(anomalies),
        "totalImpact": round(sum(_impact(a) for a in anomalies), 2),
        "anomalies": sorted(anomalies, key=_impact, reverse=True),
    }
    clients("s3").put_object(
        Bucket=settings.platform.diagnostics_bucket,
        Key=key,
        ContentType="application/json",
        Body=json.dumps(document, default=str, indent=1).encode(),
    )
    ddb = clients("dynamodb")
    marker = {"pk": {"S": f"cost-report#{day.isoformat()}"}}
    posted = ddb.get_item(TableName=settings.platform.state_table, Key=marker, ConsistentRead=True).get(
        "Item"
    )
    if not posted:
        send(slack_message(anomalies, day, uri, settings.maintenance.cost_report_top_anomalies))
        ddb.put_item(
            TableName=settings.platform.state_table,
            Item={**marker, "postedAt": {"S": iso_utc()}, "runId": {"S": run.run_id}},
        )
    # One record per day's report: the first stands, so a re-run that finds the report posted leaves the
    # record that says it was posted (or, when the run that posted crashed before its record, writes it).
    audit_writer(settings).write(
        audit(
            run,
            key=f"{day.isoformat()}|report",
            target=f"arn:aws:s3:::{settings.platform.diagnostics_bucket}/{key}",
            action=(
                f"cost anomaly report for {day.isoformat()}: {len(anomalies)} anomalies, total impact "
                f"${document['totalImpact']:,.2f}; "
                + (
                    "posted to Slack"
                    if not posted
                    else f"already posted to Slack at {posted['postedAt']['S']}"
                )
            ),
            outcome=Outcome.SUCCESS,
            rollback="none needed: a report; nothing in AWS changed",
        )
    )
    return {"date": day.isoformat(), "anomalies": len(anomalies), "report_uri": uri, "posted": not posted}
