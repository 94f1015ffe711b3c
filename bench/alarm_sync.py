"""alarm_sync benchmark, run by hand (never in the test suite):

    .venv/bin/python bench/alarm_sync.py                   # 5,000 resources
    .venv/bin/python bench/alarm_sync.py --resources 1000

Seeds moto (in-process) with N opted-in resources (SQS queues, a quarter of them dead-letter queues, and
SNS topics) spread evenly over the places the job covers: the hub account and a member account, each in
us-east-1 and eu-west-1 (the job assumes its role in each, as on MWAA). Then it runs ``alarm_sync.sync``
three times: the first run (every alarm created), a steady run (nothing changed), and a run after 1 % of
the resources opted out. For each it prints the API calls made, by operation and per resource, beside the
fewest calls any sync could make with the same APIs, summed over the accounts/Regions; in each: one
GetResources page per 100 resources (at least one), one DescribeAutoScalingGroups page, one
DescribeAlarms page per 100 alarms (at least one), one PutMetricAlarm per alarm missing or different,
one DeleteAlarms per 100 deletions. It exits 1 if a run makes more than 1.1 x that minimum.

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


MEMBER = "210987654321"
REGIONS = ("us-east-1", "eu-west-1")


def minimum(resources: int, alarms_before: int, written: int, deleted: int) -> int:
    """The fewest calls in one account and Region."""
    page = 100
    return (
        max(1, math.ceil(resources / page))
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
    from matcarv_aiops.settings import Settings, get_settings

    settings = Settings(
        **{
            **get_settings().as_flat(),
            "member_accounts": (MEMBER,),
            "regions": REGIONS,
            "maintenance_role_arn_template": "arn:aws:iam::{account}:role/AIOpsMaintenance-{job}",
        }
    )
    failed = False
    with mock_aws():
        provision_platform(settings)
        hub = boto3.client("sts", region_name=REGIONS[0]).get_caller_identity()["Account"]
        member = boto3.client("sts", region_name=REGIONS[0]).assume_role(
            RoleArn=f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole", RoleSessionName="bench"
        )["Credentials"]
        sessions = {
            hub: boto3.session.Session(),
            MEMBER: boto3.session.Session(
                aws_access_key_id=member["AccessKeyId"],
                aws_secret_access_key=member["SecretAccessKey"],
                aws_session_token=member["SessionToken"],
            ),
        }
        places = [(account, region) for account in sessions for region in REGIONS]
        managed = {"aiops:managed": "true"}
        seeded: dict[str, int] = {}
        opted_out: list[tuple[object, str]] = []  # (SQS client, queue URL)
        for index, (account, region) in enumerate(places):
            count = args.resources // len(places) + (index < args.resources % len(places))
            seeded[f"{account}/{region}"] = count
            sqs = sessions[account].client("sqs", region_name=region)
            sns = sessions[account].client("sns", region_name=region)
            topics = count // 5
            urls = [
                sqs.create_queue(QueueName=f"q{n:05d}{'-dlq' if n % 4 == 0 else ''}", tags=managed)[
                    "QueueUrl"
                ]
                for n in range(count - topics)
            ]
            for n in range(topics):
                sns.create_topic(Name=f"t{n:05d}", Tags=[{"Key": "aiops:managed", "Value": "true"}])
            opted_out += [(sqs, url) for url in urls[: max(1, count // 100)]]
        clients = Clients(settings, job="alarm_sync")
        runs = []
        for name in ("first", "steady", "1% opted out"):
            if name == "1% opted out":
                for sqs, url in opted_out:
                    sqs.tag_queue(QueueUrl=url, Tags={"aiops:managed": "false"})
            alarms_before = {
                f"{account}/{region}": len(
                    list(alarm_sync.existing_alarms(clients.at(account, region), alarm_sync.Calls()))
                )
                for account, region in places
            }
            started = time.perf_counter()
            run = RunInfo("alarm_sync", f"bench-{name}", datetime.now(UTC))
            summary = alarm_sync.sync(settings, clients, run)
            seconds = time.perf_counter() - started
            made = sum(summary["calls"].values())
            on_aws = least = 0
            for place, result in summary["locations"].items():
                calls = result["calls"]
                on_aws += (
                    sum(calls.values())
                    - calls.get("describe_alarms", 0)
                    - calls.get("get_resources", 0)
                    + max(1, math.ceil(alarms_before[place] / 100))
                    + max(1, math.ceil(seeded[place] / 100))
                )
                least += minimum(
                    seeded[place],
                    alarms_before[place],
                    result["created"] + result["updated"],
                    result["deleted"],
                )
            within = made <= LIMIT * least and on_aws <= LIMIT * least
            failed |= not within
            runs.append(
                {
                    "run": name,
                    "resources_with_alarm": summary["resources"],
                    "created": summary["created"],
                    "updated": summary["updated"],
                    "unchanged": summary["unchanged"],
                    "deleted": summary["deleted"],
                    "calls": summary["calls"],
                    "calls_made": made,
                    "calls_on_aws": on_aws,
                    "minimum": least,
                    "per_resource": round(made / args.resources, 4),
                    "minimum_per_resource": round(least / args.resources, 4),
                    "ratio": round(max(made, on_aws) / least, 3),
                    "seconds": round(seconds, 1),
                }
            )
    report = {"resources": args.resources, "accounts_regions": sorted(seeded), "limit": LIMIT, "runs": runs}
    print(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
