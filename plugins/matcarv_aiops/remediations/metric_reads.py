"""Reading CloudWatch metrics back: eligibility and validation re-check the metric, not the alarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def datapoints(
    cloudwatch,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    *,
    minutes: float,
    statistic: str,
    period: int = 60,
) -> list[tuple[datetime, float]]:
    """(timestamp, value) of the statistic over the last ``minutes``, oldest first."""
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(minutes=minutes),
        EndTime=now,
        Period=period,
        Statistics=[statistic],
    )["Datapoints"]
    return sorted((p["Timestamp"], float(p[statistic])) for p in points)


def latest(
    cloudwatch, namespace: str, metric: str, dimensions: dict[str, str], *, minutes: float, statistic: str
) -> float | None:
    points = datapoints(cloudwatch, namespace, metric, dimensions, minutes=minutes, statistic=statistic)
    return points[-1][1] if points else None


def total(cloudwatch, namespace: str, metric: str, dimensions: dict[str, str], *, minutes: float) -> float:
    return sum(
        value
        for _, value in datapoints(
            cloudwatch, namespace, metric, dimensions, minutes=minutes, statistic="Sum"
        )
    )
