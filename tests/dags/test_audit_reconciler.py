"""audit_reconciler as a DAG: every 10 minutes, one task, and (run with dag.test()) it asks Airflow for
the state of a claimed execution's run and writes the record of a run that no longer exists."""

from __future__ import annotations

import uuid

import boto3

from matcarv_aiops.safety import SafetyStore
from matcarv_aiops.settings import reload_settings


def test_it_runs_every_ten_minutes_with_one_task(dagbag):
    dag = dagbag.get_dag("audit_reconciler")
    assert dag.timetable.expression == "*/10 * * * *"
    assert [t.task_id for t in dag.topological_sort()] == ["reconcile"]
    assert dag.catchup is False and dag.max_active_runs == 1


def test_a_claim_whose_run_is_gone_gets_its_failure_record(run_dag, aws, monkeypatch):
    monkeypatch.setenv("AIOPS_RECONCILE_GRACE_MINUTES", "0")
    settings = reload_settings()
    execution_id = str(uuid.uuid4())
    target = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123456789abcdef0"
    SafetyStore(settings).claim_execution(
        execution_id,
        "manual__never_in_this_airflow",
        "remediate_sg_open_ssh",
        details={"remediation": "sg_open_ssh", "targetArn": target, "trigger": '{"manual": true}'},
    )
    SafetyStore(settings).acquire_lock(target, execution_id)

    dag_run, states = run_dag("audit_reconciler", {})
    assert states == {"reconcile": "success"}, states

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    item = ddb.get_item(TableName=settings.platform.audit_table, Key={"executionId": {"S": execution_id}})
    record = {k: v["S"] for k, v in item["Item"].items()}
    assert record["outcome"] == "FAILURE" and record["targetResource"] == target
    assert "the DAG run no longer exists" in record["action"] and "Nothing was changed" in record["action"]
    assert SafetyStore(settings)._get(f"lock#{target}") is None
