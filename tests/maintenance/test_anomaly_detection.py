"""The job around the model. Most tests hand the job a small causal stand-in with the model's interface
(``score(values, state) -> (scores in [0, 1], new state)``), so that what they check (batching, state
kept between runs, crash safety) does not hang on the model's tuning; the last runs the real model."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matcarv_aiops.maintenance import anomaly_detection as job
from matcarv_aiops.settings import Settings

_now = datetime.now(UTC)
NOW = _now.replace(minute=_now.minute // 5 * 5, second=0, microsecond=0)  # on the 5-minute period
SPEC = "AWS/EC2|CPUUtilization|InstanceId=i-1|Average"


def stand_in_scorer(values, state):
    """Welford running mean/variance; each point scored against the points before it only."""
    state = dict(state or {"n": 0, "mean": 0.0, "m2": 0.0})
    scores = []
    for value in values:
        n, mean, m2 = state["n"], state["mean"], state["m2"]
        if n >= 5:
            std = math.sqrt(m2 / (n - 1)) or 1e-9
            scores.append(1 - math.exp(-abs(value - mean) / std / 4))
        else:
            scores.append(0.0)
        n += 1
        delta = value - mean
        mean += delta / n
        state = {"n": n, "mean": mean, "m2": m2 + delta * (value - mean)}
    return scores, state


def _put(cw, instance: str, points: list[tuple[datetime, float]]):
    cw.put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "InstanceId", "Value": instance}],
                "Timestamp": ts,
                "Value": v,
            }
            for ts, v in points
        ],
    )


@pytest.fixture
def cw(aws, monkeypatch):
    monkeypatch.setenv("AIOPS_ANOMALY_METRICS", f"{SPEC},AWS/EC2|CPUUtilization|InstanceId=i-2|Average")
    from matcarv_aiops.settings import reload_settings

    reload_settings()
    return boto3.client("cloudwatch", region_name="us-east-1")


def _stored(aws) -> dict[str, dict]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return {i["series"]["S"]: i for i in ddb.scan(TableName=aws.platform.anomaly_state_table)["Items"]}


def _queue(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    sns = boto3.client("sns", region_name="us-east-1")
    url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=aws.platform.sns_topic_name)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return lambda: [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]


def test_new_points_are_scored_from_stored_state_and_anomalies_published(cw, clients, run_for):
    from matcarv_aiops.settings import get_settings

    settings = get_settings()
    alerts = _queue(settings)
    start = NOW - timedelta(hours=2)
    _put(cw, "i-1", [(start + timedelta(minutes=5 * i), 10.0 + (i % 3)) for i in range(20)])
    _put(cw, "i-2", [(start + timedelta(minutes=5 * i), 50.0 + (i % 2)) for i in range(20)])
    first = job.detect(settings, clients, run_for("anomaly_detection"), now=NOW, scorer=stand_in_scorer)
    assert first == {"series": 2, "points": 40, "anomalies": 0, "republished": 0, "states_written": 2}
    stored = _stored(settings)
    assert json.loads(stored[SPEC]["state"]["S"])["n"] == 20

    # Next run: only the new points are scored, from the stored state; a spike on i-1 is an anomaly.
    spike_at = start + timedelta(minutes=5 * 20)
    _put(cw, "i-1", [(spike_at, 95.0)])
    second = job.detect(
        settings, clients, run_for("anomaly_detection", "r2"), now=NOW, scorer=stand_in_scorer
    )
    assert second["points"] == 1 and second["anomalies"] == 1
    assert json.loads(_stored(settings)[SPEC]["state"]["S"])["n"] == 21
    assert json.loads(_stored(settings)[SPEC]["pending"]["S"]) == []
    [alert] = alerts()
    assert "i-1" in alert["Message"] and "score" in alert["Message"]
    metric = cw.get_metric_statistics(
        Namespace=settings.maintenance.anomaly_metric_namespace,
        MetricName="AnomalyScore",
        Dimensions=[{"Name": "Series", "Value": SPEC}],
        StartTime=start,
        EndTime=NOW + timedelta(minutes=5),
        Period=300,
        Statistics=["Maximum"],
    )
    assert metric["Datapoints"] and metric["Datapoints"][0]["Maximum"] >= job.threshold(settings)


def test_scores_do_not_depend_on_how_runs_split_the_series(cw, clients, run_for):
    from matcarv_aiops.settings import get_settings

    settings = get_settings()
    start = NOW - timedelta(hours=3)
    values = [10.0 + (i * 7 % 5) for i in range(30)]
    _put(cw, "i-1", [(start + timedelta(minutes=5 * i), v) for i, v in enumerate(values)])
    seen = []

    def recording(vals, state):
        scores, new = stand_in_scorer(vals, state)
        seen.extend(scores)
        return scores, new

    series = [job.Series.parse(SPEC)]
    job.detect(
        settings,
        clients,
        run_for("anomaly_detection", "a"),
        now=start + timedelta(minutes=5 * 12),
        series=series,
        scorer=recording,
    )
    job.detect(settings, clients, run_for("anomaly_detection", "b"), now=NOW, series=series, scorer=recording)
    assert seen == stand_in_scorer(values, None)[0]


def test_crash_after_storing_states_publishes_on_the_next_run(cw, clients, run_for, monkeypatch):
    from matcarv_aiops.settings import get_settings

    settings = get_settings()
    alerts = _queue(settings)
    start = NOW - timedelta(hours=2)
    _put(
        cw,
        "i-1",
        [(start + timedelta(minutes=5 * i), 10.0 + (i % 3)) for i in range(20)]
        + [(start + timedelta(minutes=100), 99.0)],
    )
    real_publish = job.publish_anomalies
    monkeypatch.setattr(job, "publish_anomalies", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        job.detect(settings, clients, run_for("anomaly_detection"), now=NOW, scorer=stand_in_scorer)
    assert len(json.loads(_stored(settings)[SPEC]["pending"]["S"])) == 1 and alerts() == []
    monkeypatch.setattr(job, "publish_anomalies", real_publish)
    rerun = job.detect(
        settings, clients, run_for("anomaly_detection", "next"), now=NOW, scorer=stand_in_scorer
    )
    assert rerun["republished"] == 1 and rerun["points"] == 0
    assert len(alerts()) == 1 and json.loads(_stored(settings)[SPEC]["pending"]["S"]) == []


def test_crash_before_storing_states_rescoring_the_same_points(cw, clients, run_for, monkeypatch):
    from matcarv_aiops.settings import get_settings

    settings = get_settings()
    _put(cw, "i-1", [(NOW - timedelta(minutes=5 * i), 10.0) for i in range(1, 10)])
    monkeypatch.setattr(job, "save_states", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        job.detect(settings, clients, run_for("anomaly_detection"), now=NOW, scorer=stand_in_scorer)
    monkeypatch.undo()
    assert _stored(settings) == {}
    again = job.detect(
        settings, clients, run_for("anomaly_detection", "again"), now=NOW, scorer=stand_in_scorer
    )
    assert again["points"] == 9 and json.loads(_stored(settings)[SPEC]["state"]["S"])["n"] == 9


def test_get_metric_data_is_batched_500_queries_per_call_and_retried_when_throttled(
    aws, clients, run_for, throttle
):
    series = [job.Series.parse(f"AWS/EC2|CPUUtilization|InstanceId=i-{n}|Average") for n in range(1201)]
    sizes = []

    def record(params, **_):
        sizes.append(len(params["MetricDataQueries"]))

    events = clients("cloudwatch").meta.events  # clients are shared by the process: unregister after
    events.register("provide-client-params.cloudwatch.GetMetricData", record)
    throttled = throttle("GetMetricData", 2)
    try:
        job.detect(aws, clients, run_for("anomaly_detection"), now=NOW, series=series, scorer=stand_in_scorer)
    finally:
        events.unregister("provide-client-params.cloudwatch.GetMetricData", record)
    assert sizes == [500, 500, 201] and throttled["GetMetricData"] == 2


def test_bad_metric_spec_is_named():
    with pytest.raises(ValueError, match="Namespace\\|MetricName"):
        job.Series.parse("AWS/EC2|CPUUtilization")


def test_the_real_model_flags_a_spike_after_a_day_of_normal_load(cw, clients, run_for):
    import random

    from matcarv_aiops.settings import get_settings

    settings = get_settings()
    rng = random.Random(7)
    start = NOW - timedelta(hours=26)
    points = [
        (start + timedelta(minutes=5 * i), 40 + 10 * math.sin(i / 288 * 2 * math.pi) + rng.gauss(0, 1))
        for i in range(300)
    ]
    for chunk in range(0, 300, 100):
        _put(cw, "i-1", points[chunk : chunk + 100])
    series = [job.Series.parse(SPEC)]
    settings = Settings(**{**settings.as_flat(), "anomaly_first_lookback_hours": 30.0})
    quiet = job.detect(
        settings, clients, run_for("anomaly_detection"), now=start + timedelta(minutes=5 * 300), series=series
    )
    assert quiet["points"] == 300  # the model warms up on the first day
    _put(cw, "i-1", [(start + timedelta(minutes=5 * 300), 400.0)])
    spike = job.detect(
        settings, clients, run_for("anomaly_detection", "r2"), now=NOW + timedelta(minutes=5), series=series
    )
    assert spike["points"] == 1 and spike["anomalies"] == 1
