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
