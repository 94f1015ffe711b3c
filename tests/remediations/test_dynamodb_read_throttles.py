from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matcarv_aiops.remediations.dynamodb_read_throttles import DynamodbReadThrottles
from tests.events import alarm_event
from tests.remediations.iam_calls import declared_permissions_only  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("declared_permissions_only")

REGION = "us-east-1"
EVENT = alarm_event("AWS/DynamoDB", "ReadThrottleEvents", {"TableName": "orders"})
SCALING = {
    "ServiceNamespace": "dynamodb",
    "ResourceId": "table/orders",
    "ScalableDimension": "dynamodb:table:ReadCapacityUnits",
}


def _table(*, rcu: int | None = 10, throttles: float = 42, scaling_max: int | None = None):
    ddb = boto3.client("dynamodb", region_name=REGION)
    billing = (
        {"ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": 5}}
        if rcu
        else {"BillingMode": "PAY_PER_REQUEST"}
    )
    ddb.create_table(
        TableName="orders",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        **billing,
    )
    if scaling_max:
        boto3.client("application-autoscaling", region_name=REGION).register_scalable_target(
            **SCALING, MinCapacity=5, MaxCapacity=scaling_max
        )
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/DynamoDB",
        MetricData=[
            {
                "MetricName": "ReadThrottleEvents",
                "Value": throttles,
                "Timestamp": datetime.now(UTC) - timedelta(seconds=30),
                "Dimensions": [{"Name": "TableName", "Value": "orders"}],
            }
        ],
    )
    return ddb


def _rcu(ddb):
    return ddb.describe_table(TableName="orders")["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"]


def _scaling():
    client = boto3.client("application-autoscaling", region_name=REGION)
    targets = client.describe_scalable_targets(ServiceNamespace="dynamodb", ResourceIds=["table/orders"])
    policies = client.describe_scaling_policies(ServiceNamespace="dynamodb", ResourceId="table/orders")
    return (
        [(t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]],
        [p["PolicyName"] for p in policies["ScalingPolicies"]],
    )


def test_registers_read_auto_scaling_when_absent(remediate):
    ddb = _table(rcu=10)
    run = remediate("dynamodb_read_throttles", {"event": EVENT})
    assert run.outcome == "SUCCESS", run.audit.action
    assert _scaling() == ([(10, 40)], ["aiops-read-capacity-target-tracking"])
    assert _rcu(ddb) == 10


def test_raises_read_capacity_within_the_scaling_maximum(remediate):
    ddb = _table(rcu=10, scaling_max=12)
    run = remediate("dynamodb_read_throttles", {"event": EVENT})
    assert run.outcome == "SUCCESS", run.audit.action
    assert _rcu(ddb) == 12  # 50 % more would be 15


def test_failed_validation_deregisters_what_it_registered(remediate, monkeypatch):
    _table(rcu=10)
    monkeypatch.setattr(
        DynamodbReadThrottles, "_scaling_policies", lambda self, ctx, name: []
    )  # policy "missing"
    run = remediate("dynamodb_read_throttles", {"event": EVENT})
    assert run.outcome == "FAILURE" and "deregistered read auto scaling" in run.audit.action, run.audit.action
    assert _scaling() == ([], [])


def test_failed_validation_restores_recorded_read_capacity(remediate, monkeypatch):
    ddb = _table(rcu=10, scaling_max=100)
    real_execute = DynamodbReadThrottles.execute

    def partial(self, ctx, state):  # the raise landed short of the plan
        result = real_execute(self, ctx, state)
        return result | {"read_capacity": result["read_capacity"] + 5}

    monkeypatch.setattr(DynamodbReadThrottles, "execute", partial)
    run = remediate("dynamodb_read_throttles", {"event": EVENT})
    assert run.outcome == "FAILURE" and "back from 15 to 10" in run.audit.action, run.audit.action
    assert _rcu(ddb) == 10


def test_on_demand_table_is_skipped_with_the_reason(remediate):
    _table(rcu=None)
    run = remediate("dynamodb_read_throttles", {"event": EVENT})
    assert run.outcome == "SKIPPED" and "on-demand table" in run.audit.action, run.audit.action
    assert _scaling() == ([], [])
