"""Scale benchmark of the maintenance jobs against moto, run by hand (never in the test suite):

    .venv/bin/python bench/maintenance_bench.py                 # every job at full size
    .venv/bin/python bench/maintenance_bench.py --scale 0.1     # a tenth, to see memory stay flat
    .venv/bin/python bench/maintenance_bench.py --jobs sync,iam

moto runs as its own process (``moto_server`` on 127.0.0.1), so the peak memory measured here is the
job's alone (tracemalloc's peak of the Python heap while it runs), not moto's store of N resources.
The anomaly job is timed without tracemalloc (it slows the model down) and measured for memory on a
twin set of series.
Every AWS call the job makes is counted per operation and set against the minimum the APIs allow for
the work. Seeding is not timed.

- ebs_snapshot_retention: N snapshots, all past retention, a region-level Recycle Bin rule (moto has no
  Recycle Bin: a Stubber answers ListRules/GetRule with the documented shapes).
- securityhub_findings_sync: N findings, first sync.
- iam_access_key_rotation: N users with one key past its age.
- anomaly_detection: N series of one day (288 points at 5 minutes), scored by the model from empty
  state, then the steady state: one new point per series from the stored states. moto's GetMetricData
  scans every stored datapoint per query (hours at this size), so GetMetricData is answered from the
  same generated series in the documented response shape; state, metrics and SNS are moto's.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server():
    port = _free_port()
    env = {**os.environ, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}  # their snapshots would pose as ours
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded machine: do not lose the measurements to the teardown
            proc.kill()
            proc.wait()
        os.environ.pop("AWS_ENDPOINT_URL", None)


@contextmanager
def counting():
    """Count every API call (not retries) by operation name."""
    import botocore.client

    calls: Counter = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counted(self, operation_name, api_params):
        calls[operation_name] += 1
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counted
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original


def measure(fn, *, trace: bool = True):
    """(result, wall seconds, peak Python heap of the job in bytes, calls). tracemalloc slows
    allocation-heavy code (the model) two- to threefold, so a run timed for speed passes trace=False."""
    with counting() as calls:
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()
    return result, wall, peak, calls


def _settings():
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    from matcarv_aiops.provision import provision_platform
    from matcarv_aiops.settings import reload_settings

    settings = reload_settings()
    provision_platform(settings)
    return settings


def _run(job: str):
    from matcarv_aiops.maintenance.common import RunInfo

    return RunInfo(job, f"bench__{time.time_ns()}", datetime.now(UTC))


def bench_ebs(n: int):
    import boto3

    from matcarv_aiops.maintenance import ebs_snapshots
    from matcarv_aiops.maintenance.common import Clients
    from tests.maintenance.helpers import REGION_RULE, rbin_client

    settings = _settings()
    ec2 = boto3.client("ec2", region_name="us-east-1")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    for _ in range(n):
        ec2.create_snapshot(VolumeId=volume)
    total = sum(
        len(p["Snapshots"]) for p in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
    )
    later = datetime.now(UTC) + timedelta(
        days=settings.maintenance.snapshot_retention_days + 1
    )  # all of them old

    def job():
        rbin, _ = rbin_client([REGION_RULE])
        clients = Clients(settings, overrides={"rbin": rbin})
        run = _run("ebs_snapshot_retention")
        summary = ebs_snapshots.plan(settings, clients, run, now=later)
        return ebs_snapshots.execute(
            settings, clients, run, dry_run=False, xcom={"summary": summary, "decision": None}
        )

    result, wall, peak, calls = measure(job)
    deleted = result[
        "deleted"
    ]  # moto's default-AMI snapshots are in use and skipped, so deleted can exceed n
    rechecks = math.ceil(deleted / ebs_snapshots._RECHECK_CHUNK)  # the re-check just before deleting
    minimum = {
        "DescribeSnapshots": math.ceil(total / 1000) + rechecks,
        "DescribeImages": 1 + rechecks,
        "ListRules": 2,
        "GetRule": 2,
        "BatchGetItem": math.ceil(deleted / 100) + rechecks,
        "DeleteSnapshot": deleted,
        # one audit record per deleted snapshot, 100 conditional puts per call
        "TransactWriteItems": math.ceil(deleted / 100),
    }
    return {
        "job": "ebs_snapshot_retention",
        "n": n,
        "work": f"{deleted} deleted of {total} listed",
        "wall": wall,
        "peak": peak,
        "calls": calls,
        "minimum": minimum,
    }


def bench_sync(n: int):
    import boto3

    from matcarv_aiops.maintenance import securityhub_sync
    from matcarv_aiops.maintenance.common import Clients
    from matcarv_aiops.models import iso_utc

    settings = _settings()
    hub = boto3.client("securityhub", region_name="us-east-1")
    hub.enable_security_hub()
    base = datetime.now(UTC) - timedelta(hours=1)
    for start in range(0, n, 100):
        hub.batch_import_findings(
            Findings=[
                {
                    "SchemaVersion": "2018-10-08",
                    "Id": f"f-{i}",
                    "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
                    "GeneratorId": "g",
                    "AwsAccountId": "123456789012",
                    "Types": ["t"],
                    "CreatedAt": iso_utc(base),
                    "UpdatedAt": iso_utc(base + timedelta(milliseconds=i)),
                    "Severity": {"Label": "MEDIUM"},
                    "Title": f"f {i}",
                    "Description": "d",
                    "Resources": [{"Type": "Other", "Id": f"r-{i}"}],
                }
                for i in range(start, min(n, start + 100))
            ]
        )

    result, wall, peak, calls = measure(
        lambda: securityhub_sync.sync(
            settings, Clients(settings), _run("securityhub_findings_sync"), now=datetime.now(UTC)
        )
    )
    minimum = {"GetFindings": math.ceil(n / 100), "BatchWriteItem": math.ceil(n / 25)}
    return {
        "job": "securityhub_findings_sync",
        "n": n,
        "work": f"{result['findings']} findings",
        "wall": wall,
        "peak": peak,
        "calls": calls,
        "minimum": minimum,
    }


def bench_iam(n: int):
    import boto3

    from matcarv_aiops.maintenance import iam_keys
    from matcarv_aiops.maintenance.common import Clients

    settings = _settings()
    iam = boto3.client("iam", region_name="us-east-1")
    for i in range(n):
        iam.create_user(UserName=f"user-{i}")
        iam.create_access_key(UserName=f"user-{i}")
    later = datetime.now(UTC) + timedelta(days=settings.maintenance.access_key_max_age_days + 1)

    result, wall, peak, calls = measure(
        lambda: iam_keys.rotate(settings, Clients(settings), _run("iam_access_key_rotation"), now=later)
    )
    rotated = result["rotated"]
    minimum = {
        "ListUsers": math.ceil(n / 1000),
        "ListAccessKeys": n,
        "ListUserTags": rotated,
        "BatchGetItem": math.ceil(rotated / 100),
        "CreateAccessKey": rotated,
        "CreateSecret": rotated,
        "UpdateAccessKey": rotated,
        # audit (two records per rotated user: new key, old key; 100 conditional puts per call) and
        # deactivation times (the state table, 25 per BatchWriteItem)
        "TransactWriteItems": math.ceil(2 * rotated / 100),
        "BatchWriteItem": math.ceil(rotated / 25),
    }
    return {
        "job": "iam_access_key_rotation",
        "n": n,
        "work": f"{rotated} rotated",
        "wall": wall,
        "peak": peak,
        "calls": calls,
        "minimum": minimum,
    }


class GeneratedMetrics:
    """GetMetricData from generated series (documented response shape); everything else to moto."""

    def __init__(self, real, n: int, end: datetime, period: int):
        self._real, self._n, self._end, self._period = real, n, end, period
        self.meta = real.meta

    def _value(self, series: int, ts: datetime) -> float:
        step = int(ts.timestamp()) // self._period
        noise = (math.sin(step * 12.9898 + series * 78.233) * 43758.5453) % 1.0 - 0.5  # deterministic, cheap
        return 50 + 20 * math.sin(step / 288 * 2 * math.pi + series) + 4 * noise

    def get_metric_data(self, **request):
        GeneratedMetrics.calls += 1
        results = []
        start, end = request["StartTime"], request["EndTime"]
        for query in request["MetricDataQueries"]:
            series = int(query["MetricStat"]["Metric"]["Dimensions"][0]["Value"].split("-")[1])
            stamps, ts = [], start
            while ts < end:
                stamps.append(ts)
                ts += timedelta(seconds=self._period)
            results.append(
                {
                    "Id": query["Id"],
                    "Label": query["Id"],
                    "StatusCode": "Complete",
                    "Timestamps": stamps,
                    "Values": [self._value(series, t) for t in stamps],
                }
            )
        return {"MetricDataResults": results, "Messages": []}

    def __getattr__(self, name):
        return getattr(self._real, name)


GeneratedMetrics.calls = 0


def bench_anomaly(n: int):
    from matcarv_aiops.maintenance import anomaly_detection as job
    from matcarv_aiops.maintenance.common import Clients

    settings = _settings()
    period = settings.maintenance.anomaly_period_seconds
    now = datetime.fromtimestamp(int(time.time()) // period * period, tz=UTC)
    timed = [job.Series.parse(f"AWS/EC2|CPUUtilization|InstanceId=i-{i}|Average") for i in range(n)]
    traced = [job.Series.parse(f"AWS/EC2|CPUUtilization|InstanceId=j-{i}|Average") for i in range(n)]
    rows = []
    for label, at in (
        ("first run, 1 day per series", now),
        ("steady state, 1 new point per series", now + timedelta(seconds=period)),
    ):
        measured = []
        for series, trace in (
            (timed, False),
            (traced, True),
        ):  # the same work on twin series: speed, then memory
            clients = Clients(settings)
            clients.overrides["cloudwatch"] = GeneratedMetrics(clients("cloudwatch"), n, at, period)
            GeneratedMetrics.calls = 0
            measured.append(
                measure(
                    lambda clients=clients, at=at, series=series: job.detect(
                        settings, clients, _run("anomaly_detection"), now=at, series=series
                    ),
                    trace=trace,
                )
            )
            measured[-1][3]["GetMetricData"] = GeneratedMetrics.calls
        (result, wall, _, calls), (_, _, peak, _) = measured
        points_per_call = 100_800  # GetMetricData's datapoint limit per call
        minimum = {
            "GetMetricData": max(math.ceil(n / 500), math.ceil(result["points"] / points_per_call)),
            "BatchGetItem": math.ceil(n / 100),
            "BatchWriteItem": math.ceil(n / 25),
            # the anomalies as a metric (1,000 values per call) and one alert when there are any
            "PutMetricData": math.ceil((result["anomalies"] + 1) / 1000),
            "Publish": int(result["anomalies"] > 0),
        }
        rows.append(
            {
                "job": f"anomaly_detection ({label})",
                "n": n,
                "work": f"{result['points']} points, {result['anomalies']} anomalies",
                "wall": wall,
                "peak": peak,
                "calls": calls,
                "minimum": minimum,
            }
        )
    return rows


BENCHES = {
    "ebs": (bench_ebs, 10_000),
    "sync": (bench_sync, 10_000),
    "iam": (bench_iam, 1_000),
    "anomaly": (bench_anomaly, 1_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default=",".join(BENCHES))
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    rows = []
    for name in args.jobs.split(","):
        fn, size = BENCHES[name]
        with moto_server():
            out = fn(max(1, int(size * args.scale)))
        rows.extend(out if isinstance(out, list) else [out])
    print("| job | N | work | wall s | peak heap MiB | AWS calls | minimum | over minimum |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        total, minimum = sum(row["calls"].values()), sum(row["minimum"].values())
        print(
            f"| {row['job']} | {row['n']:,} | {row['work']} | {row['wall']:.1f} | "
            f"{row['peak'] / 2**20:.1f} | "
            f"{total:,} | {minimum:,} | {100 * (total - minimum) / minimum:+.1f} % |"
        )
    for row in rows:
        extra = {
            op: c - row["minimum"].get(op, 0)
            for op, c in sorted(row["calls"].items())
            if c != row["minimum"].get(op, 0)
        }
        print(f"{row['job']}: calls {dict(sorted(row['calls'].items()))}; beyond the minimum: {extra}")


if __name__ == "__main__":
    main()
