from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matcarv_aiops.remediations import lambda_throttles
from matcarv_aiops.remediations.lambda_throttles import LambdaThrottles
from tests.events import alarm_event
from tests.remediations.iam_calls import declared_permissions_only  # noqa: F401 (a fixture)
from tests.remediations.lambda_fixtures import create_function, reserved, stub_account_settings

pytestmark = pytest.mark.usefixtures("declared_permissions_only")

EVENT = alarm_event("AWS/Lambda", "Throttles", {"FunctionName": "checkout"})


@pytest.fixture(autouse=True)
def account(aws, monkeypatch):
    stub_account_settings(monkeypatch, quota=1000)


def _metric(name: str, values: list[float], function: str = "checkout"):
    now = datetime.now(UTC)
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": name,
                "Value": value,
                "Timestamp": now - timedelta(minutes=i + 1),
                "Dimensions": [{"Name": "FunctionName", "Value": function}],
            }
            for i, value in enumerate(values)
        ],
    )


def test_raises_reservation_by_a_quarter(remediate):
    create_function("checkout", reserved=40)
    _metric("Throttles", [150, 20])
    run = remediate("lambda_throttles", {"event": EVENT})
    assert run.outcome == "SUCCESS", run
    assert reserved("checkout") == 50


def test_unreserved_function_gets_a_reservation_sized_from_its_peak(remediate):
    create_function("checkout")
    _metric("Throttles", [300])
    _metric("ConcurrentExecutions", [80, 64])
    run = remediate("lambda_throttles", {"event": EVENT})
    assert run.outcome == "SUCCESS", run
    assert reserved("checkout") == 100


def test_raise_stops_at_the_accounts_headroom(remediate):
    create_function("batch", reserved=855)
    create_function("checkout", reserved=40)  # 105 unreserved left: 5 above Lambda's floor of 100
    _metric("Throttles", [500])
    run = remediate("lambda_throttles", {"event": EVENT})
    assert run.outcome == "SUCCESS", run
    assert reserved("checkout") == 45  # not the 50 a quarter more would be


def test_no_reservation_below_the_functions_peak(remediate):
    create_function("batch", reserved=850)  # 150 unreserved: 50 to spare, below checkout's peak of 80
    create_function("checkout")
    _metric("Throttles", [300])
    _metric("ConcurrentExecutions", [80])
    run = remediate("lambda_throttles", {"event": EVENT})
    assert run.outcome == "SKIPPED" and "past 80" in run.audit.action, run.audit.action
    assert reserved("checkout") is None


def test_failed_validation_restores_no_reservation(remediate, monkeypatch):
    create_function("checkout")
    _metric("Throttles", [300])
    _metric("ConcurrentExecutions", [80])
    real_execute = LambdaThrottles.execute

    def partial(self, ctx, state):  # the reservation landed lower than planned
        result = real_execute(self, ctx, state)
        ctx.client("lambda").put_function_concurrency(
            FunctionName="checkout", ReservedConcurrentExecutions=90
        )
        return result

    monkeypatch.setattr(LambdaThrottles, "execute", partial)
    run = remediate("lambda_throttles", {"event": EVENT})
    assert run.outcome == "FAILURE" and run.record("rollback").done["rolled_back"], run
    assert reserved("checkout") is None


def test_failed_validation_restores_recorded_reservation(remediate, monkeypatch):
    create_function("checkout", reserved=40)
    _metric("Throttles", [300])
    # validation's read-back reports the reservation unchanged
    monkeypatch.setattr(lambda_throttles, "reserved_concurrency", lambda client, function: 40)
    run = remediate("lambda_throttles", {"event": EVENT})
    assert run.outcome == "FAILURE" and "restored the reserved concurrency of" in run.audit.action, run
    assert reserved("checkout") == 40


def test_few_throttles_or_switched_off_function_is_skipped(remediate):
    create_function("checkout", reserved=40)
    _metric("Throttles", [60, 90])
    run = remediate("lambda_throttles", {"event": EVENT})
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action
    assert reserved("checkout") == 40
    create_function("paused", reserved=0)
    _metric("Throttles", [900], function="paused")
    run = remediate(
        "lambda_throttles", {"event": alarm_event("AWS/Lambda", "Throttles", {"FunctionName": "paused"})}
    )
    assert run.outcome == "SKIPPED" and "switched off on purpose" in run.audit.action
    assert reserved("paused") == 0
