"""alarm_sync benchmark, run by hand (never in the test suite):

    .venv/bin/python bench/alarm_sync.py                   # 5,000 resources
    .venv/bin/python bench/alarm_sync.py --resources 1000

Seeds moto (in-process) with N opted-in resources (SQS queues, a quarter of them dead-letter queues, and
SNS topics), then runs ``alarm_sync.sync`` three times: the first run (every alarm created), a steady run
(nothing changed), and a run after 1 % of the resources opted out. For each it prints the API calls made,
by operation and per resource, beside the fewest calls any sync could make with the same APIs: one
GetResources page per 100 resources, one DescribeAutoScalingGroups page, one DescribeAlarms page per 100
alarms (at least one), one PutMetricAlarm per alarm missing or different, one DeleteAlarms per 100
deletions. It exits 1 if a run makes more than 1.1 x that minimum.

moto answers DescribeAlarms in one page whatever its size and GetResources in pages of 99 (it also counts
tags against a 100-tag page); the "on AWS" column counts those two listings with AWS's page sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ[key] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)
LIMIT = 1.1


def minimum(resources: int, alarms_before: int, written: int, deleted: int) -> int:
    page = 100
    return (
        math.ceil(resources / page)
        + 1  # DescribeAutoScalingGroups: Auto Scaling groups are not in GetResources
        + max(1, math.ceil(alarms_before / page))
        + written
        + math.ceil(deleted / page)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=5_000)
    args = parser.parse_args()

    import boto3
    from moto import mock_aws

    from matcarv_aiops.maintenance import alarm_sync
    from matcarv_aiops.maintenance.common import Clients, RunInfo
    from matcarv_aiops.provision import provision_platform
    from matcarv_aiops.settings import get_settings

    settings = get_settings()
    topics = args.resources // 5
    queues = args.resources - topics
    failed = False
    with mock_aws():
        provision_platform(settings)
        sqs = boto3.client("sqs", region_name="us-east-1")
        sns = boto3.client("sns", region_name="us-east-1")
        managed = {"aiops:managed": "true"}
        urls = [
            sqs.create_queue(QueueName=f"q{n:05d}{'-dlq' if n % 4 == 0 else ''}", tags=managed)["QueueUrl"]
            for n in range(queues)
        ]
        for n in range(topics):
            sns.create_topic(Name=f"t{n:05d}", Tags=[{"Key": "aiops:managed", "Value": "true"}])
        clients = Clients(settings)
        opted_out = urls[: max(1, args.resources // 100)]
        runs = []
        for name in ("first", "steady", "1% opted out"):
            if name == "1% opted out":
                for url in opted_out:
                    sqs.tag_queue(QueueUrl=url, Tags={"aiops:managed": "false"})
            alarms_before = len(list(alarm_sync.existing_alarms(clients, alarm_sync.Calls())))
            started = time.perf_counter()
            run = RunInfo("alarm_sync", f"bench-{name}", datetime.now(UTC))
            summary = alarm_sync.sync(settings, clients, run)
            seconds = time.perf_counter() - started
            resources = summary["resources"]
            calls = summary["calls"]
            made = sum(calls.values())
            on_aws = (
                made
                - calls.get("describe_alarms", 0)
                - calls.get("get_resources", 0)
                + max(1, math.ceil(alarms_before / 100))
                + math.ceil(args.resources / 100)
            )
            least = minimum(
                args.resources,
                alarms_before,
                summary["created"] + summary["updated"],
                summary["deleted"],
            )
            within = made <= LIMIT * least and on_aws <= LIMIT * least
            failed |= not within
            runs.append(
                {
                    "run": name,
                    "resources_with_alarm": resources,
                    "created": summary["created"],
                    "updated": summary["updated"],
                    "unchanged": summary["unchanged"],
                    "deleted": summary["deleted"],
                    "calls": calls,
                    "calls_made": made,
                    "calls_on_aws": on_aws,
                    "minimum": least,
                    "per_resource": round(made / args.resources, 4),
                    "minimum_per_resource": round(least / args.resources, 4),
                    "ratio": round(max(made, on_aws) / least, 3),
                    "seconds": round(seconds, 1),
                }
            )
    print(json.dumps({"resources": args.resources, "limit": LIMIT, "runs": runs}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
