"""The six maintenance DAGs load with exactly their ids and UTC schedules, and one runs end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EXPECTED = {
    "ebs_snapshot_retention": ("0 2 * * *", ["plan", "wait_for_approval", "delete"]),
    "cost_anomaly_report": ("0 3 * * *", ["report"]),
    "iam_access_key_rotation": ("0 1 * * 0", ["rotate", "wait_for_approval", "delete_keys"]),
    "anomaly_detection": ("*/5 * * * *", ["detect"]),
    "securityhub_findings_sync": ("*/15 * * * *", ["sync"]),
    "alarm_sync": ("0 * * * *", ["sync"]),
}


def test_maintenance_dags_have_their_ids_schedules_and_tasks(dagbag):
    for dag_id, (cron, tasks) in EXPECTED.items():
        dag = dagbag.get_dag(dag_id)
        assert dag is not None, dag_id
        assert dag.timetable.expression == cron, dag_id
        assert str(dag.timetable.timezone) in ("UTC", "Timezone('UTC')"), dag_id
        assert [t.task_id for t in dag.topological_sort()] == tasks, dag_id
        assert dag.catchup is False and dag.max_active_runs == 1 and "maintenance" in dag.tags


def test_next_runs_fall_on_the_spec_times(dagbag):
    import pendulum
    from airflow.timetables.base import DataInterval, TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable  # the scheduler's side of the SDK's timetable

    start = pendulum.datetime(2026, 11, 27, 0, 7, tz="UTC")  # a Friday
    wanted = {
        "ebs_snapshot_retention": datetime(2026, 11, 27, 2, tzinfo=UTC),
        "cost_anomaly_report": datetime(2026, 11, 27, 3, tzinfo=UTC),
        "iam_access_key_rotation": datetime(2026, 11, 29, 1, tzinfo=UTC),  # Sunday
        "anomaly_detection": datetime(2026, 11, 27, 0, 10, tzinfo=UTC),
        "securityhub_findings_sync": datetime(2026, 11, 27, 0, 15, tzinfo=UTC),
        "alarm_sync": datetime(2026, 11, 27, 1, tzinfo=UTC),
    }
    for dag_id, when in wanted.items():
        declared = dagbag.get_dag(dag_id).timetable
        timetable = CronTriggerTimetable(declared.expression, timezone=declared.timezone)
        info = timetable.next_dagrun_info(
            last_automated_data_interval=DataInterval(
                start - timedelta(seconds=1), start - timedelta(seconds=1)
            ),
            restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
        )
        assert info.run_after == when, dag_id


def test_securityhub_findings_sync_runs_as_a_dag(run_dag):
    import boto3

    boto3.client("securityhub", region_name="us-east-1").enable_security_hub()
    dag_run, states = run_dag("securityhub_findings_sync", {})
    assert states == {"sync": "success"}, states


def test_iam_key_deletion_runs_as_a_dag_from_the_recorded_plan_and_the_store(run_dag, audit_items):
    """rotate records the deletion plan, the sensor finds its request from the run (not XCom), a human
    approves, and delete_keys deletes the key after its re-check."""
    import boto3

    from matcarv_aiops.maintenance import iam_keys
    from matcarv_aiops.settings import get_settings
    from tests.dags.test_remediation_dags import Approver

    settings = get_settings()
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="svc")
    key = iam.create_access_key(UserName="svc")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="svc", AccessKeyId=key, Status="Inactive")
    month_ago = datetime.now(UTC) - timedelta(days=settings.maintenance.access_key_grace_days + 16)
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=settings.platform.state_table,
        Item=iam_keys._deactivated_item(key, "svc", month_ago, settings),
    )
    with Approver(settings, who="alice") as approver:
        _, states = run_dag("iam_access_key_rotation", {})
    assert states == {"rotate": "success", "wait_for_approval": "success", "delete_keys": "success"}, states
    assert len(approver.decided) == 1
    assert iam.list_access_keys(UserName="svc")["AccessKeyMetadata"] == []
    [deleted] = [r for r in audit_items() if r["action"].startswith("deleted access key")]
    assert key in deleted["action"] and deleted["operator"] == "alice"
