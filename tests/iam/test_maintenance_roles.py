"""Every maintenance job runs under its generated role (``maintenance_roles.job_statements`` of what its
module declares), with IAM enforced, as the execution role would run it on MWAA; and fails with
AccessDenied once its role lacks one action the run calls. Every call a job makes with its role's
clients, stubbed ones included, is one it declares.

The scenarios are the jobs' happy paths of ``tests/maintenance``, each arranged with enforcement off.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from aiops_infra.maintenance_roles import job_statements, maintenance_role_name
from matcarv_aiops.maintenance import (
    alarm_sync as alarm_sync_job,
)
from matcarv_aiops.maintenance import anomaly_detection as anomaly_job
from matcarv_aiops.maintenance import (
    cost_anomalies,
    ebs_snapshots,
    iam_keys,
    job_permissions,
    securityhub_sync,
)
from matcarv_aiops.maintenance.common import BOTO3_SERVICE_OF, Clients, RunInfo
from matcarv_aiops.settings import get_settings, reload_settings
from tests.iam.policies import ACCOUNT, REGION, document_of, put_role, without_action
from tests.maintenance.helpers import REGION_RULE, backdate_access_key, backdate_snapshot, rbin_client
from tests.maintenance.test_anomaly_detection import stand_in_scorer
from tests.maintenance.test_cost_anomaly_report import DAY, _anomaly, _ce
from tests.maintenance.test_securityhub_findings_sync import _finding

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
ANOMALY_SERIES = "AWS/EC2|CPUUtilization|InstanceId=i-1|Average"
READ_PREFIXES = ("Describe", "Get", "List")
IAM_PREFIX_OF = {service: prefix for prefix, service in BOTO3_SERVICE_OF.items()}
# Actions moto has no API for: the job's test stubs them, so only the static checks cover them.
NOT_IN_MOTO = {
    "ce:GetAnomalies": "moto has no Cost Anomaly Detection API",
    "rbin:ListRules": "no Recycle Bin",
    "rbin:GetRule": "no Recycle Bin",
}


def _run(job: str, run_id: str = "scheduled__2026-11-27T02:00:00+00:00") -> RunInfo:
    return RunInfo(job, run_id, datetime(2026, 11, 27, 2, tzinfo=UTC))


# Each scenario arranges its problem (``arrange``, enforcement off) and returns the run (``act``,
# enforcement on), which raises when the job fails.
def securityhub_findings_sync(enforced: Callable, overrides: dict) -> None:
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    hub.batch_import_findings(Findings=[_finding(i, NOW - timedelta(hours=1, seconds=-i)) for i in range(3)])
    settings = get_settings()
    with enforced():
        summary = securityhub_sync.sync(
            settings,
            Clients(settings, job="securityhub_findings_sync"),
            _run("securityhub_findings_sync"),
            now=NOW,
        )
    assert summary["findings"] == 3, summary


def iam_access_key_rotation(enforced: Callable, overrides: dict) -> None:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="ci-bot")
    old = iam.create_access_key(UserName="ci-bot")["AccessKey"]["AccessKeyId"]
    backdate_access_key("ci-bot", old, 120)
    settings = get_settings()
    with enforced():
        summary = iam_keys.rotate(
            settings,
            Clients(settings, job="iam_access_key_rotation"),
            _run("iam_access_key_rotation"),
            now=NOW,
        )
    assert summary["rotated"] == 1, summary
    statuses = {
        k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="ci-bot")["AccessKeyMetadata"]
    }
    assert statuses[old] == "Inactive" and len(statuses) == 2


def ebs_snapshot_retention(enforced: Callable, overrides: dict) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    old = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    backdate_snapshot(old, 45)
    rbin, _ = rbin_client([REGION_RULE])
    overrides["rbin"] = rbin
    settings = get_settings()
    clients = Clients(settings, overrides=overrides, job="ebs_snapshot_retention")
    run = _run("ebs_snapshot_retention")
    with enforced():
        summary = ebs_snapshots.plan(settings, clients, run, now=NOW)
        result = ebs_snapshots.execute(
            settings, clients, run, dry_run=False, xcom={"summary": summary, "decision": None}
        )
    assert result["deleted"] == 1, result
    assert old not in {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def anomaly_detection(enforced: Callable, overrides: dict) -> None:
    settings = get_settings()  # the test sets AIOPS_ANOMALY_METRICS to ANOMALY_SERIES
    cw = boto3.client("cloudwatch", region_name=REGION)
    start = NOW.replace(minute=NOW.minute // 5 * 5) - timedelta(hours=2)

    def put(points):
        cw.put_metric_data(
            Namespace="AWS/EC2",
            MetricData=[
                {
                    "MetricName": "CPUUtilization",
                    "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}],
                    "Timestamp": t,
                    "Value": v,
                }
                for t, v in points
            ],
        )

    put([(start + timedelta(minutes=5 * i), 10.0 + i % 3) for i in range(20)])
    clients = Clients(settings, job="anomaly_detection")
    now = start + timedelta(minutes=5 * 22)
    with enforced():
        anomaly_job.detect(settings, clients, _run("anomaly_detection"), now=now, scorer=stand_in_scorer)
    put([(start + timedelta(minutes=5 * 20), 95.0)])
    with enforced():
        second = anomaly_job.detect(
            settings, clients, _run("anomaly_detection", "r2"), now=now, scorer=stand_in_scorer
        )
    assert second["anomalies"] == 1, second


def cost_anomaly_report(enforced: Callable, overrides: dict) -> None:
    ce, _ = _ce([[_anomaly(1, 50.0)]])
    overrides["ce"] = ce
    settings = get_settings()
    posted: list[dict] = []
    with enforced():
        result = cost_anomalies.report(
            settings,
            Clients(settings, overrides=overrides, job="cost_anomaly_report"),
            _run("cost_anomaly_report"),
            day=DAY,
            send=posted.append,
        )
    assert result["anomalies"] == 1 and len(posted) == 1, result


def alarm_sync(enforced: Callable, overrides: dict) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.create_queue(QueueName="orders-dlq", tags={"aiops:managed": "true"})
    settings = get_settings()
    with enforced():
        summary = alarm_sync_job.sync(settings, Clients(settings, job="alarm_sync"), _run("alarm_sync"))
    assert summary["created"] == 1, summary
    [alarm] = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    assert alarm["AlarmName"] == "AIOps-sqs_dlq_depth_high-orders-dlq"


SCENARIOS = {
    f.__name__: f
    for f in (
        alarm_sync,
        securityhub_findings_sync,
        iam_access_key_rotation,
        ebs_snapshot_retention,
        anomaly_detection,
        cost_anomaly_report,
    )
}
JOBS = sorted(job_permissions())


def _recording(monkeypatch, calls: list[str]) -> None:
    """Record every call made with a client a job's Clients hands out (stubbed ones included)."""
    real_call = Clients.__call__

    def call(self, service):
        client = real_call(self, service)
        if not getattr(client, "_aiops_recorded", False):
            client.meta.events.register(
                "before-call.*.*",
                lambda model, **_: calls.append(f"{IAM_PREFIX_OF.get(service, service)}:{model.name}"),
            )
            client._aiops_recorded = True
        return client

    monkeypatch.setattr(Clients, "__call__", call)


def test_every_scheduled_job_has_a_scenario():
    from matcarv_aiops.maintenance import SCHEDULES

    assert sorted(SCENARIOS) == JOBS == sorted(SCHEDULES)


@pytest.mark.parametrize("job", JOBS)
def test_job_runs_under_its_generated_role_and_fails_without_an_action(job, account, monkeypatch):
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # 1,300 snapshots only slow listings down
    monkeypatch.setenv("AIOPS_ANOMALY_METRICS", ANOMALY_SERIES)
    reload_settings()
    permissions = job_permissions()[job]
    document = document_of(job_statements(job, permissions, region=REGION, account=ACCOUNT))
    role = maintenance_role_name(job)
    put_role(role, document, trusted_arn=account.session_arn)
    calls: list[str] = []
    _recording(monkeypatch, calls)
    overrides: dict = {}
    SCENARIOS[job](account.enforced, overrides)

    declared = set(permissions.actions)
    made = list(dict.fromkeys(calls))
    prefixes = {action.split(":")[0] for action in declared}
    assert {c for c in made if c.split(":")[0] in prefixes} <= declared, made
    under_role = [c for c in made if c in declared and c.split(":")[0] not in overrides]
    if not under_role:
        assert declared <= set(NOT_IN_MOTO), f"{job} made no call to moto under its role"
        return
    changes = [c for c in under_role if not c.split(":")[1].startswith(READ_PREFIXES)]
    removed = (changes or under_role)[0]
    account.fresh()
    put_role(role, without_action(document, removed), trusted_arn=account.session_arn)
    with pytest.raises(Exception) as failure:
        SCENARIOS[job](account.enforced, {})
    text = _chain(failure.value) + _audit_text()
    assert ("AccessDenied" in text or "not authorized" in text) and removed.split(":")[1] in text, text[
        -2000:
    ]


def _chain(exc: BaseException | None) -> str:
    parts = []
    while exc is not None:
        parts.append(repr(exc))
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _audit_text() -> str:
    ddb = boto3.client("dynamodb", region_name=REGION)
    return "\n".join(str(i) for i in ddb.scan(TableName=get_settings().platform.audit_table)["Items"])


def test_with_the_role_template_set_a_job_must_be_named_and_declared():
    from matcarv_aiops.settings import Settings

    settings = Settings(maintenance_role_arn_template="arn:aws:iam::{account}:role/AIOpsMaintenance-{job}")
    with pytest.raises(ValueError, match=r"names no job: pass Clients\(settings, job=JOB\)"):
        Clients(settings)("ec2")
    with pytest.raises(ValueError, match="maintenance job 'no_such_job' declares no PERMISSIONS"):
        Clients(settings, job="no_such_job")("ec2")


def test_a_declaration_is_checked_where_it_is_made():
    from matcarv_aiops.maintenance.common import JobPermissions

    with pytest.raises(ValueError, match="'ec2:Describe\\*' is not one service:Action without wildcards"):
        JobPermissions(actions=("ec2:Describe*",))
    with pytest.raises(ValueError, match="cloudwatch:PutMetricData and metric_namespaces go together"):
        JobPermissions(actions=("cloudwatch:PutMetricData",))
