"""Reading CloudWatch metrics back, for the entries whose eligibility re-checks a metric."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from matcarv_aiops.remediations.base import RemediationContext


def datapoints(ctx: RemediationContext, namespace: str, metric: str, dimensions: dict[str, str], *,
               minutes: float, statistic: str, period: int = 60) -> list[float]:
    """The metric's values over the last ``minutes``, oldest first (one per ``period`` with data)."""
    now = datetime.now(timezone.utc)
    points = ctx.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName=metric,
        Dimensions=[{"Name": name, "Value": value} for name, value in dimensions.items()],
        StartTime=now - timedelta(minutes=minutes), EndTime=now, Period=period, Statistics=[statistic],
    )["Datapoints"]
    return [point[statistic] for point in sorted(points, key=lambda p: p["Timestamp"])]
