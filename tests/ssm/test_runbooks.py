"""Each runbook in ssm/ runs to success against moto and changes the resource; ineligible targets end at
EligibilityCheck's way out without acting; a missing target fails after maxAttempts."""

from __future__ import annotations

import json

import pytest

from matcarv_aiops.ssm import ended_ineligible
from tests.ssm.conftest import (BUCKET, REGION, SSM_DIR, client, object_body, remediation_metrics, run_instance,
                               steps_by_name)

EC2_DOC = SSM_DIR / "AIOps-EC2StatusCheckRestart.yaml"
EBS_DOC = SSM_DIR / "AIOps-EBSVolumeSnapshotAndAlert.yaml"
ECS_DOC = SSM_DIR / "AIOps-ECSForceNewDeployment.yaml"


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
    execution = runner.run(EC2_DOC, {"InstanceId": instance, "DiagnosticsBucket": BUCKET, "ExecutionId": execution_id})

    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    assert instance_transitions == [("stop", instance), ("start", instance)]
    state = client("ec2").describe_instances(InstanceIds=[instance])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    steps = steps_by_name(execution)
    assert [s["StepName"] for s in execution["StepExecutions"] if s["StepStatus"] == "Success"] == [
        "CollectDiagnostics", "EligibilityCheck", "StopInstance", "StartInstance", "EmitRemediationMetric",
        "ValidateRemediation"]
    assert steps["RecordIneligible"]["StepStatus"] == "Pending"  # listed, never silently dropped
    assert steps["EligibilityCheck"]["NextStep"] == "StopInstance"
    assert not ended_ineligible(execution)
    # Rule 1: diagnostics in S3 before anything changed; rule 5: the metric.
    uri = execution["Outputs"]["CollectDiagnostics.DiagnosticsUri"][0]
    snapshot = json.loads(object_body(uri.removeprefix(f"s3://{BUCKET}/")))
    assert snapshot["instance"]["InstanceId"] == instance and snapshot["instance"]["State"]["Name"] == "running"
    [metric] = remediation_metrics()
    assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == {
        "Runbook": "AIOps-EC2StatusCheckRestart", "ResourceId": instance}


def test_ec2_restart_leaves_a_stopped_instance_alone(moto_aws, runner, execution_id, instance_transitions):
    instance = run_instance()
    client("ec2").stop_instances(InstanceIds=[instance])
    instance_transitions.clear()
    execution = runner.run(EC2_DOC, {"InstanceId": instance, "DiagnosticsBucket": BUCKET, "ExecutionId": execution_id})

    assert execution["AutomationExecutionStatus"] == "Success"
    assert ended_ineligible(execution)
    steps = steps_by_name(execution)
    assert steps["EligibilityCheck"]["NextStep"] == "RecordIneligible"
    assert {name: steps[name]["StepStatus"] for name in ("StopInstance", "StartInstance", "EmitRemediationMetric",
                                                          "ValidateRemediation")} == dict.fromkeys(
        ("StopInstance", "StartInstance", "EmitRemediationMetric", "ValidateRemediation"), "Pending")
    assert instance_transitions == []
    assert remediation_metrics() == []
    record = json.loads(object_body(f"diagnostics/{execution_id}/AIOps-EC2StatusCheckRestart.ineligible.json"))
    assert record == {"eligible": False, "instance": instance, "state": "stopped", "rootDeviceType": "ebs",
                      "requires": "state running and root device ebs"}


def test_ec2_restart_of_a_missing_instance_fails_after_three_attempts(moto_aws, runner, execution_id):
    execution = runner.run(EC2_DOC, {"InstanceId": "i-0123456789abcdef0", "DiagnosticsBucket": BUCKET,
                                     "ExecutionId": execution_id})
    assert execution["AutomationExecutionStatus"] == "Failed"
    steps = steps_by_name(execution)
    failed = steps["CollectDiagnostics"]
    assert failed["StepStatus"] == "Failed"
    assert "InvalidInstanceID.NotFound" in failed["FailureMessage"]
    assert failed["FailureMessage"].endswith("(attempt 3 of 3)")
    assert all(step["StepStatus"] == "Pending" for name, step in steps.items() if name != "CollectDiagnostics")
    assert execution["FailureMessage"].startswith("Step CollectDiagnostics (aws:executeScript) Failed:")


def test_ebs_snapshot_and_alert(moto_aws, runner, execution_id):
    ec2 = client("ec2")
    volume = ec2.create_volume(Size=20, AvailabilityZone=f"{REGION}a")["VolumeId"]
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name="aiops-oncall")["TopicArn"]
    queue = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    execution = runner.run(EBS_DOC, {"VolumeId": volume, "UtilisationPercent": "91.5", "AlertTopicArn": topic,
                                     "DiagnosticsBucket": BUCKET, "ExecutionId": execution_id})

    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    [snapshot] = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [volume]}])["Snapshots"]
    assert execution["Outputs"]["CreateSnapshot.SnapshotId"] == [snapshot["SnapshotId"]]
    assert {t["Key"]: t["Value"] for t in snapshot["Tags"]}["aiops:execution-id"] == execution_id
    assert "utilisation 91.5 %" in snapshot["Description"]
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert f"Volume {volume} (20 GiB, attached to none) is 91.5 % full." in message["Body"]
    assert snapshot["SnapshotId"] in message["Body"]
    assert len(remediation_metrics()) == 1


def test_ebs_rejects_a_bad_topic_before_running(moto_aws, runner, execution_id):
    from aiops_local.ssm_emulator import ParameterError

    with pytest.raises(ParameterError, match="parameter AlertTopicArn: 'not-an-arn' does not match"):
        runner.run(EBS_DOC, {"VolumeId": "vol-0123456789abcdef0", "AlertTopicArn": "not-an-arn",
                             "DiagnosticsBucket": BUCKET, "ExecutionId": execution_id})


def _ecs_service(desired: int) -> tuple[str, str]:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="shop")
    task_definition = ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="shop", serviceName="web", taskDefinition=task_definition, desiredCount=desired)
    return "shop", task_definition


def test_ecs_force_new_deployment(moto_aws, runner, execution_id):
    cluster, task_definition = _ecs_service(desired=2)
    ecs = client("ecs")
    before = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    assert before["runningCount"] == 0

    execution = runner.run(ECS_DOC, {"ClusterName": cluster, "ServiceName": "web", "DiagnosticsBucket": BUCKET,
                                     "ExecutionId": execution_id})

    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    after = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    assert after["deployments"][0]["id"] != before["deployments"][0]["id"]
    assert execution["Outputs"]["ForceNewDeployment.DeploymentId"] == [after["deployments"][0]["id"]]
    assert after["runningCount"] == 2 and after["taskDefinition"] == task_definition
    # The rollback redeploys exactly this task definition.
    assert execution["Outputs"]["CollectDiagnostics.TaskDefinition"] == [task_definition]
    inputs = steps_by_name(execution)["ForceNewDeployment"]["Inputs"]
    assert json.loads(inputs["desiredCount"]) == 2  # an Integer output stays an integer through a reference
    assert steps_by_name(execution)["ValidateRemediation"]["Outputs"]["RunningCount"] == ["2"]


def test_ecs_service_not_short_of_tasks_is_ineligible(moto_aws, runner, execution_id):
    cluster, _ = _ecs_service(desired=0)
    ecs = client("ecs")
    before = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]["deployments"][0]["id"]
    execution = runner.run(ECS_DOC, {"ClusterName": cluster, "ServiceName": "web", "DiagnosticsBucket": BUCKET,
                                     "ExecutionId": execution_id})
    assert execution["AutomationExecutionStatus"] == "Success"
    assert ended_ineligible(execution)
    assert ecs.describe_services(cluster=cluster, services=["web"])["services"][0]["deployments"][0]["id"] == before
    record = json.loads(object_body(f"diagnostics/{execution_id}/AIOps-ECSForceNewDeployment.ineligible.json"))
    assert record["tasksMissing"] == 0 and record["status"] == "ACTIVE"
