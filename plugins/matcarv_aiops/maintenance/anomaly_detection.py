"""anomaly_detection: score the configured CloudWatch metrics with the anomaly model every 5 minutes.

Each run:
per batch of 500 series (so memory does not grow with the number of series):
1. reads the series' stored states (BatchGetItem, 100 per call) from the anomaly state table, and any
   anomalies a run that died had stored but maybe not published;
2. pulls each series' datapoints since its last scored point with one GetMetricData of 500 queries
   (and its pages; a new series starts ``anomaly_first_lookback_hours`` back);
3. scores only the new points, in time order, from the stored state: the model is causal, so a point's
   score depends only on the points before it, however the series is split between runs;
4. stores the new states (BatchWriteItem, 25 per call) together with their anomalies;
then, once for the run:
5. publishes the anomalies (score >= ``anomaly_threshold``): ``AnomalyScore`` per anomalous point and
   ``AnomaliesDetected`` per run in CloudWatch, and one SNS alert; then clears them from the states.

A batch that dies before 4 leaves its states as they were, and the next run scores the same points
again; anomalies stored in 4 but not published are published by the next run. Each alert carries a
deterministic ``alertId`` (series + point time), so the one window left (dying between 5 and its clear)
sends an alert whose receiver can recognise it as a repeat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from matcarv_aiops.dynamo import batch_get, batch_put
from matcarv_aiops.maintenance.common import Clients, IncompleteListing, JobPermissions, RunInfo
from matcarv_aiops.models import iso_utc
from matcarv_aiops.notifications import Kind, notify
from matcarv_aiops.settings import MaintenanceSettings, Settings

JOB = "anomaly_detection"
# Reads the watched metrics and publishes its scores (in its own namespace only); the model's state
# table and the alert topic are the platform's (execution role).
PERMISSIONS = JobPermissions(
    actions=("cloudwatch:GetMetricData", "cloudwatch:PutMetricData"),
    metric_namespaces=(MaintenanceSettings.anomaly_metric_namespace,),
)
QUERIES_PER_CALL = 500  # GetMetricData's limit
_METRIC_DATA_BATCH = 1000  # PutMetricData's limit

# (values, stored state or None) -> (scores in [0, 1], new state with to_dict() or a dict)
Scorer = Callable[[list[float], dict | None], tuple[list[float], object]]


@dataclass(frozen=True)
class Series:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str

    @classmethod
    def parse(cls, spec: str) -> Series:
        parts = spec.strip().split("|")
        if len(parts) != 4 or not all(parts[i].strip() for i in (0, 1, 3)):
            raise ValueError(f"anomaly metric {spec!r} is not Namespace|MetricName|Dim=Value;Dim=Value|Stat")
        dims = []
        for pair in filter(None, (p.strip() for p in parts[2].split(";"))):
            if "=" not in pair:
                raise ValueError(f"anomaly metric {spec!r}: dimension {pair!r} is not Name=Value")
            name, value = pair.split("=", 1)
            dims.append((name.strip(), value.strip()))
        return cls(parts[0].strip(), parts[1].strip(), tuple(sorted(dims)), parts[3].strip())

    @property
    def label(self) -> str:
        dims = ";".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.namespace}|{self.metric}|{dims}|{self.stat}"

    @property
    def series_id(self) -> str:
        return hashlib.sha256(self.label.encode()).hexdigest()[:32]

    def query(self, query_id: str, period: int) -> dict:
        return {
            "Id": query_id,
            "ReturnData": True,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
                },
                "Period": period,
                "Stat": self.stat,
            },
        }


def default_scorer() -> Scorer:
    from matcarv_aiops.anomaly import score_series  # the model; imported at run time, not at DAG parse

    return score_series


def threshold(settings: Settings) -> float:
    if settings.maintenance.anomaly_threshold > 0:
        return settings.maintenance.anomaly_threshold
    from matcarv_aiops.anomaly import ALERT_THRESHOLD

    return ALERT_THRESHOLD


def load_states(settings: Settings, clients: Clients, series: list[Series]) -> dict[str, dict]:
    keys = [{"seriesId": {"S": s.series_id}} for s in series]
    return {
        item["seriesId"]["S"]: {
            "state": json.loads(item["state"]["S"]),
            "last": item["lastTimestamp"]["S"],
            "pending": json.loads(item.get("pending", {}).get("S", "[]")),
        }
        for item in batch_get(clients("dynamodb"), settings.platform.anomaly_state_table, keys)
    }


def save_states(settings: Settings, clients: Clients, rows: list[dict]) -> None:
    batch_put(
        clients("dynamodb"),
        settings.platform.anomaly_state_table,
        (
            {
                "seriesId": {"S": row["series_id"]},
                "series": {"S": row["label"]},
                "state": {"S": json.dumps(row["state"], separators=(",", ":"))},
                "lastTimestamp": {"S": row["last"]},
                "pending": {"S": json.dumps(row["pending"], separators=(",", ":"))},
                "updatedAt": {"S": iso_utc()},
            }
            for row in rows
        ),
    )


def fetch(
    clients: Clients, batch: list[Series], starts: list[datetime], end: datetime, period: int
) -> list[list[tuple]]:
    """[(timestamp, value), ...] per series of the batch (<= 500), every page, oldest first."""
    cw = clients("cloudwatch")
    points: list[list[tuple]] = [[] for _ in batch]
    request = {
        "MetricDataQueries": [s.query(f"q{i}", period) for i, s in enumerate(batch)],
        "StartTime": min(starts),
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    while True:
        page = cw.get_metric_data(**request)
        for result in page.get("MetricDataResults", []):
            if result.get("StatusCode") not in ("Complete", "PartialData"):
                raise IncompleteListing(
                    f"GetMetricData {result.get('Label', result['Id'])}: "
                    f"{result.get('StatusCode')} {result.get('Messages', '')}"
                )
            index = int(result["Id"][1:])
            points[index].extend(zip(result["Timestamps"], result["Values"], strict=True))
        for message in page.get("Messages", []):
            if message.get("Code") not in (None, "", "MaxMetricsExceeded"):
                raise IncompleteListing(f"GetMetricData: {message}")
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    for index, start in enumerate(starts):
        points[index] = sorted({ts: v for ts, v in points[index] if ts >= start}.items())
    return points


def _align(moment: datetime, period: int) -> datetime:
    return datetime.fromtimestamp(int(moment.timestamp()) // period * period, tz=UTC)


def alert_id(series_id: str, timestamp: str) -> str:
    return hashlib.sha256(f"{series_id}|{timestamp}".encode()).hexdigest()[:24]


def publish_anomalies(settings: Settings, clients: Clients, run: RunInfo, anomalies: list[dict]) -> None:
    cw = clients("cloudwatch")
    data = [
        {
            "MetricName": "AnomalyScore",
            "Value": a["score"],
            "Unit": "None",
            "Timestamp": datetime.fromisoformat(a["timestamp"].replace("Z", "+00:00")),
            "Dimensions": [{"Name": "Series", "Value": a["series"][:1024]}],
        }
        for a in anomalies
    ]
    data.append(
        {
            "MetricName": "AnomaliesDetected",
            "Value": float(len(anomalies)),
            "Unit": "Count",
            "Timestamp": run.logical_date,
        }
    )
    for start in range(0, len(data), _METRIC_DATA_BATCH):
        cw.put_metric_data(
            Namespace=settings.maintenance.anomaly_metric_namespace,
            MetricData=data[start : start + _METRIC_DATA_BATCH],
        )
    if anomalies:
        top = sorted(anomalies, key=lambda a: a["score"], reverse=True)[:20]
        notify(
            settings,
            Kind.ANOMALY,
            f"AIOps anomaly: {len(anomalies)} anomalous points in {len({a['series'] for a in anomalies})} "
            "series",
            {
                "job": JOB,
                "runId": run.run_id,
                "count": len(anomalies),
                "anomalies": "; ".join(
                    f"{a['series']} at {a['timestamp']} value {a['value']:g} score {a['score']:.2f} "
                    f"(alertId {a['alertId']})"
                    for a in top
                ),
            },
        )


def detect(
    settings: Settings,
    clients: Clients,
    run: RunInfo,
    *,
    now: datetime,
    series: list[Series] | None = None,
    scorer: Scorer | None = None,
) -> dict:
    series = (
        series
        if series is not None
        else [Series.parse(spec) for spec in settings.maintenance.anomaly_metrics]
    )
    if not series:
        return {"series": 0, "points": 0, "anomalies": 0}
    if len({s.series_id for s in series}) != len(series):
        raise ValueError("anomaly_metrics lists a series twice")
    scorer = scorer or default_scorer()
    alert_at = threshold(settings)
    period = settings.maintenance.anomaly_period_seconds
    end = _align(now, period)
    first_start = _align(end - timedelta(hours=settings.maintenance.anomaly_first_lookback_hours), period)
    # One batch of 500 series at a time, start to stored state, so memory does not grow with N.
    leftover: list[dict] = []
    anomalies: list[dict] = []
    with_pending: list[dict] = []
    points_scored, states_written = 0, 0
    for start in range(0, len(series), QUERIES_PER_CALL):
        batch = series[start : start + QUERIES_PER_CALL]
        stored = load_states(settings, clients, batch)
        # anomalies stored by a run that died before publishing (or before clearing) them
        leftover.extend(a for row in stored.values() for a in row["pending"])
        starts = []  # on period boundaries, as CloudWatch aggregates: the period after the last scored point
        for s in batch:
            row = stored.get(s.series_id)
            starts.append(
                _align(datetime.fromisoformat(row["last"].replace("Z", "+00:00")), period)
                + timedelta(seconds=period)
                if row
                else first_start
            )
        rows = []
        for s, points in zip(batch, fetch(clients, batch, starts, end, period), strict=True):
            row = stored.get(s.series_id)
            if not points:
                if row and row["pending"]:
                    rows.append(
                        {
                            "series_id": s.series_id,
                            "label": s.label,
                            "state": row["state"],
                            "last": row["last"],
                            "pending": [],
                        }
                    )
                continue
            scores, state = scorer([v for _, v in points], row["state"] if row else None)
            state = state.to_dict() if hasattr(state, "to_dict") else state
            points_scored += len(points)
            found = [
                {
                    "series": s.label,
                    "seriesId": s.series_id,
                    "timestamp": iso_utc(ts),
                    "value": value,
                    "score": round(score, 4),
                    "alertId": alert_id(s.series_id, iso_utc(ts)),
                }
                for (ts, value), score in zip(points, scores, strict=True)
                if score >= alert_at
            ]
            anomalies.extend(found)
            rows.append(
                {
                    "series_id": s.series_id,
                    "label": s.label,
                    "state": state,
                    "last": iso_utc(points[-1][0]),
                    "pending": found,
                }
            )
        save_states(settings, clients, rows)
        states_written += len(rows)
        with_pending.extend(row for row in rows if row["pending"])
    publish_anomalies(settings, clients, run, leftover + anomalies)
    if with_pending:
        save_states(settings, clients, [{**row, "pending": []} for row in with_pending])
    return {
        "series": len(series),
        "points": points_scored,
        "anomalies": len(anomalies),
        "republished": len(leftover),
        "states_written": states_written,
    }
