from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest


@pytest.fixture
def clients(aws):
    from matcarv_aiops.maintenance.common import Clients

    return Clients(aws)


@pytest.fixture
def run_for():
    from matcarv_aiops.maintenance.common import RunInfo

    def make(job: str, run_id: str = "scheduled__2026-11-27T02:00:00+00:00"):
        return RunInfo(job, run_id, datetime(2026, 11, 27, 2, tzinfo=UTC))

    return make


@pytest.fixture
def throttle(monkeypatch):
    """Answer the first ``times`` calls of an operation with ThrottlingException (HTTP 400), below the SDK's
    retry handler, so the clients' real retry-with-backoff is what gets through. Returns the counter of
    throttled calls per operation."""
    from botocore.awsrequest import AWSResponse
    from botocore.endpoint import Endpoint

    original = Endpoint._do_get_response
    plan: dict[str, int] = {}
    throttled: Counter = Counter()

    def fake(self, request, operation_model, context):
        name = operation_model.name
        if throttled[name] < plan.get(name, 0):
            throttled[name] += 1
            response = AWSResponse(request.url, 400, {}, None)
            response._content = b""
            parsed = {
                "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}},
            }
            return (response, parsed), None
        return original(self, request, operation_model, context)

    monkeypatch.setattr(Endpoint, "_do_get_response", fake)

    def arm(operation: str, times: int) -> Counter:
        plan[operation] = times
        return throttled

    return arm


@pytest.fixture
def audit_rows(aws):
    import boto3

    def rows(runbook: str | None = None) -> list[dict]:
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        items, kwargs = [], {"TableName": aws.platform.audit_table}
        while True:
            page = ddb.scan(**kwargs)
            items += [{k: v["S"] for k, v in i.items()} for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [i for i in items if runbook is None or i["runbook"] == runbook]

    return rows
