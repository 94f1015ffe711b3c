"""ec2_status_check_failed through its SSM document (local runner against moto). DAG-level cases are in
tests/dags/test_remediation_dags.py."""

from local.scenarios import failing_instance, instance_state
from matcarv_aiops.remediations.ec2_status_check_failed import Ec2StatusCheckFailed
from tests.events import alarm_event


def event(instance):
    return {"event": alarm_event("AWS/EC2", "StatusCheckFailed", {"InstanceId": instance})}


def test_runbook_stops_and_starts(remediate):
    ec2, instance = failing_instance()
    run = remediate("ec2_status_check_failed", event(instance))
    assert run.outcome == "SUCCESS", run
    assert run.records["wait_for_automation"].done["AutomationExecutionStatus"] == "Success"
    assert instance_state(ec2, instance) == "running"


def test_validation_failure_starts_the_instance_again(remediate, monkeypatch):
    run_runbook = Ec2StatusCheckFailed.execute

    def runbook_then_stop(self, ctx, state):
        result = run_runbook(self, ctx, state)
        ctx.client("ec2").stop_instances(InstanceIds=[state["instance_id"]])
        return result

    monkeypatch.setattr(Ec2StatusCheckFailed, "execute", runbook_then_stop)
    ec2, instance = failing_instance()
    run = remediate("ec2_status_check_failed", event(instance))
    assert run.outcome == "FAILURE" and run.record("rollback").done["rolled_back"]
    assert instance_state(ec2, instance) == "running"


def test_healthy_instance_is_skipped(remediate):
    ec2, instance = failing_instance(failing=False)
    run = remediate("ec2_status_check_failed", event(instance))
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action
    assert not run.started and instance_state(ec2, instance) == "running"


def test_an_instance_with_instance_store_volumes_waits_for_a_human(remediate):
    import boto3

    from local.scenarios import report_status_check
    from tests.remediations.stubs import approver

    ec2 = boto3.client("ec2", region_name="us-east-1")
    instance = ec2.run_instances(ImageId="ami-03cf127a", MinCount=1, MaxCount=1, InstanceType="m5d.large")[
        "Instances"
    ][0]["InstanceId"]
    report_status_check(instance, 1.0)
    run = remediate("ec2_status_check_failed", event(instance), decide=approver(False))
    # Non-production (moto's account is listed as such), yet it waited: the stop would erase 75 GiB.
    eligibility = run.record("check_eligibility").done
    assert eligibility["needs_approval"] is True
    assert "75 GiB of instance-store volumes" in eligibility["why"]
    assert run.outcome == "SKIPPED" and "rejected by" in run.audit.action
    assert instance_state(ec2, instance) == "running"


def test_an_auto_scaling_member_is_replaced_by_its_group_after_approval(remediate):
    import boto3

    from local.scenarios import report_status_check
    from tests.remediations.stubs import approver

    autoscaling = boto3.client("autoscaling", region_name="us-east-1")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="lc", ImageId="ami-03cf127a", InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchConfigurationName="lc",
        MinSize=1,
        MaxSize=2,
        DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    instance = group["Instances"][0]["InstanceId"]
    report_status_check(instance, 1.0)
    run = remediate("ec2_status_check_failed", event(instance), decide=approver())
    assert run.outcome == "SUCCESS", run
    assert "belongs to Auto Scaling group web" in run.record("check_eligibility").done["why"]
    assert "SetInstanceHealth" in run.audit.action and "web" in run.audit.action
    assert run.audit.operator == "arn:aws:iam::123456789012:user/oncall"
    # The group was told, and no runbook stopped the instance.
    health = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
    assert health == [] or health[0]["HealthStatus"].upper() == "UNHEALTHY"
    assert run.records["wait_for_automation"].done["AutomationExecutionStatus"] == "NotRun"


def test_approval_reason_is_none_for_a_plain_ebs_instance():
    handler = Ec2StatusCheckFailed()
    assert handler.approval_reason({"instance_store_gib": 0, "auto_scaling_group": None}) is None
    assert "12 GiB" in handler.approval_reason({"instance_store_gib": 12, "auto_scaling_group": None})
