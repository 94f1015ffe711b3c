"""The runbook in ssm/ (the EC2 status-check restart, run by the only SSM-pattern entry) runs to success
against moto and changes the resource; an ineligible target ends at EligibilityCheck's way out without
acting; a missing target fails after maxAttempts."""

from __future__ import annotations

import json

import pytest

from matcarv_aiops.ssm import ended_ineligible
from tests.ssm.conftest import (
    BUCKET,
    SSM_DIR,
    client,
    object_body,
    remediation_metrics,
    run_instance,
    steps_by_name,
)

EC2_DOC = SSM_DIR / "AIOps-EC2StatusCheckRestart.yaml"


@pytest.fixture
def instance_transitions(monkeypatch):
    """Every stop and start moto's EC2 applies, in order: the resource really changed state."""
    from moto.ec2.models.instances import Instance

    seen: list[tuple[str, str]] = []
    original_stop, original_start = Instance.stop, Instance.start

    def stop(self, *args, **kwargs):
        seen.append(("stop", self.id))
        return original_stop(self, *args, **kwargs)

    def start(self, *args, **kwargs):
        seen.append(("start", self.id))
        return original_start(self, *args, **kwargs)

    monkeypatch.setattr(Instance, "stop", stop)
    monkeypatch.setattr(Instance, "start", start)
    return seen


def test_ec2_restart_stops_and_starts_the_instance(moto_aws, runner, execution_id, instance_transitions):
    instance = run_instance()
    execution = runner.run(
        EC2_DOC, {"InstanceId": instance, "DiagnosticsBucket": BUCKET, "ExecutionId": execution_id}
    )

    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    assert instance_transitions == [("stop", instance), ("start", instance)]
    state = client("ec2").describe_instances(InstanceIds=[instance])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    steps = steps_by_name(execution)
    assert [s["StepName"] for s in execution["StepExecutions"] if s["StepStatus"] == "Success"] == [
        "CollectDiagnostics",
        "EligibilityCheck",
        "StopInstance",
        "StartInstance",
        "EmitRemediationMetric",
        "ValidateRemediation",
    ]
    assert steps["RecordIneligible"]["StepStatus"] == "Pending"  # listed, never silently dropped
    assert steps["EligibilityCheck"]["NextStep"] == "StopInstance"
    assert not ended_ineligible(execution)
    # Rule 1: diagnostics in S3 before anything changed; rule 5: the metric.
    uri = execution["Outputs"]["CollectDiagnostics.DiagnosticsUri"][0]
    snapshot = json.loads(object_body(uri.removeprefix(f"s3://{BUCKET}/")))
    assert (
        snapshot["instance"]["InstanceId"] == instance and snapshot["instance"]["State"]["Name"] == "running"
    )
    [metric] = remediation_metrics()
    assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == {
        "Runbook": "AIOps-EC2StatusCheckRestart",
        "ResourceId": instance,
    }


def test_ec2_restart_leaves_a_stopped_instance_alone(moto_aws, runner, execution_id, instance_transitions):
    instance = run_instance()
    client("ec2").stop_instances(InstanceIds=[instance])
    instance_transitions.clear()
    execution = runner.run(
        EC2_DOC, {"InstanceId": instance, "DiagnosticsBucket": BUCKET, "ExecutionId": execution_id}
    )

    assert execution["AutomationExecutionStatus"] == "Success"
    assert ended_ineligible(execution)
    steps = steps_by_name(execution)
    assert steps["EligibilityCheck"]["NextStep"] == "RecordIneligible"
    assert {
        name: steps[name]["StepStatus"]
        for name in ("StopInstance", "StartInstance", "EmitRemediationMetric", "ValidateRemediation")
    } == dict.fromkeys(
        ("StopInstance", "StartInstance", "EmitRemediationMetric", "ValidateRemediation"), "Pending"
    )
    assert instance_transitions == []
    assert remediation_metrics() == []
    record = json.loads(
        object_body(f"diagnostics/{execution_id}/AIOps-EC2StatusCheckRestart.ineligible.json")
    )
    assert record == {
        "eligible": False,
        "instance": instance,
        "state": "stopped",
        "rootDeviceType": "ebs",
        "requires": "state running and root device ebs",
    }


def test_ec2_restart_of_a_missing_instance_fails_after_three_attempts(moto_aws, runner, execution_id):
    execution = runner.run(
        EC2_DOC,
        {"InstanceId": "i-0123456789abcdef0", "DiagnosticsBucket": BUCKET, "ExecutionId": execution_id},
    )
    assert execution["AutomationExecutionStatus"] == "Failed"
    steps = steps_by_name(execution)
    failed = steps["CollectDiagnostics"]
    assert failed["StepStatus"] == "Failed"
    assert "InvalidInstanceID.NotFound" in failed["FailureMessage"]
    assert failed["FailureMessage"].endswith("(attempt 3 of 3)")
    assert all(
        step["StepStatus"] == "Pending" for name, step in steps.items() if name != "CollectDiagnostics"
    )
    assert execution["FailureMessage"].startswith("Step CollectDiagnostics (aws:executeScript) Failed:")
