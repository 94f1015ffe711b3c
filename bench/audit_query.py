"""Audit-query benchmark, run by hand (never in the test suite):

    .venv/bin/python bench/audit_query.py                  # 100,000 records
    .venv/bin/python bench/audit_query.py --records 10000

Writes N audit records into moto (in-process), spread over ``--targets`` resources and 30 days, then asks
for one target's whole history three ways and prints, for each, the items DynamoDB read (ScannedCount)
and the wall time: ``query_audit`` on the by-target index, ``query_audit`` on the by-day index for one
day, and the Scan with a filter that the table offered before the indexes. Seeding is not timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ[key] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--targets", type=int, default=5_000)
    args = parser.parse_args()

    from moto import mock_aws

    from matcarv_aiops.audit import AuditQuery, query_audit, record_item
    from matcarv_aiops.aws import hub_client
    from matcarv_aiops.dynamo import batch_put
    from matcarv_aiops.models import AuditRecord, Outcome, iso_utc
    from matcarv_aiops.provision import provision_platform
    from matcarv_aiops.settings import get_settings

    settings = get_settings()
    now = datetime.now(UTC).replace(microsecond=0)
    target = "arn:aws:s3:::bucket-{:05d}".format
    with mock_aws():
        provision_platform(settings)
        started = time.perf_counter()
        # Seeded straight into moto's table: the writer's transactional puts make moto copy the whole
        # table per call, hours at this size. The queries are what this measures.
        batch_put(
            hub_client("dynamodb", settings),
            settings.platform.audit_table,
            (
                record_item(
                    AuditRecord(
                        execution_id=str(uuid.uuid4()),
                        timestamp=iso_utc(now - timedelta(seconds=n * 30 * 86400 // args.records)),
                        trigger="{}",
                        runbook="remediate_s3_public_access",
                        target_resource=target(n % args.targets),
                        action="Block public access",
                        outcome=Outcome.SUCCESS,
                        operator="automated",
                        rollback_plan="put the previous configuration back",
                    )
                )
                for n in range(args.records)
            ),
        )
        print(
            f"seeded {args.records} records over {args.targets} targets "
            f"in {time.perf_counter() - started:.1f} s"
        )
        one = target(7)
        everything = AuditQuery(since=now - timedelta(days=31), until=now, target=one)

        started = time.perf_counter()
        found, read, token = 0, 0, None
        while True:
            page = query_audit(settings, everything, limit=100, start=token)
            found, read, token = found + len(page.records), read + page.items_read, page.next_token
            if token is None:
                break
        print(
            f"by-target index: {found} records of {one}, {read} items read, "
            f"{time.perf_counter() - started:.3f} s"
        )

        day = AuditQuery(since=now - timedelta(hours=now.hour), until=now)
        started = time.perf_counter()
        page = query_audit(settings, day, limit=1_000_000)
        print(
            f"by-day index, today: {len(page.records)} records, {page.items_read} items read, "
            f"{time.perf_counter() - started:.3f} s"
        )

        ddb = hub_client("dynamodb", settings)
        started = time.perf_counter()
        request = {
            "TableName": settings.platform.audit_table,
            "FilterExpression": "targetResource = :t",
            "ExpressionAttributeValues": {":t": {"S": one}},
        }
        found = read = 0
        while True:
            answer = ddb.scan(**request)
            found, read = found + answer["Count"], read + answer["ScannedCount"]
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        print(
            f"scan with a filter: {found} records of {one}, {read} items read, "
            f"{time.perf_counter() - started:.3f} s"
        )


if __name__ == "__main__":
    main()
