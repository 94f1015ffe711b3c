"""alarm_sync against moto: the catalogue's alarms created, kept, rewritten and deleted for opted-in
resources, with bounded calls; every alarm it makes is one its entry's pattern takes."""

from __future__ import annotations

import boto3
import pytest

from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.ingress.patterns import mismatch
from matcarv_aiops.maintenance import alarm_sync
from matcarv_aiops.maintenance.common import Clients, JobFailed
from matcarv_aiops.settings import Settings

REGION = "us-east-1"
ACCOUNT = "123456789012"
# One resource ARN per synced entry, as GetResources (or DescribeAutoScalingGroups) names it.
RESOURCES = {
    "alb_5xx_spike": (
        f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/web/50dc6c495c0c9188",
        "app/web/50dc6c495c0c9188",
    ),
    "dynamodb_read_throttles": (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders", "orders"),
    "ec2_cpu_high": (
        f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:6d5af669-eb3b-4530-894b-328a6a18a2f2:"
        "autoScalingGroupName/web-asg",
        "web-asg",
    ),
    "ec2_status_check_failed": (
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0abc1234def567890",
        "i-0abc1234def567890",
    ),
    "lambda_throttles": (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:resize", "resize"),
    "route53_health_check_failed": (
        "arn:aws:route53:::healthcheck/abcdef11-2222-3333-4444-555555555555",
        "abcdef11-2222-3333-4444-555555555555",
    ),
    "sns_delivery_failures": (f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts", "alerts"),
    "sqs_dlq_depth_high": (f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-dlq", "orders-dlq"),
    "sqs_queue_depth_high": (f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders", "orders"),
}


def test_every_metric_entry_on_an_aws_metric_is_synced():
    # The agent's disk metric is the one left out: its dimensions are the agent's configuration.
    metric_entries = {e.id for e in catalogue().values() if e.trigger_conditions[0].kind == "metric_alarm"}
    assert set(alarm_sync.alarm_sources()) == metric_entries - {"ebs_volume_utilisation_high"}
    assert set(RESOURCES) == set(alarm_sync.alarm_sources())


@pytest.mark.parametrize("entry_id", sorted(RESOURCES))
def test_the_alarm_is_one_the_entrys_pattern_takes_and_it_names_the_resource(entry_id):
    source = alarm_sync.alarm_sources()[entry_id]
    arn, value = RESOURCES[entry_id]
    assert source.dimension_value(arn) == value
    chosen = alarm_sync.matching_source(
        [s for s in alarm_sync.alarm_sources().values() if s.kind == source.kind], value, REGION
    )
    assert chosen is not None and chosen[0].entry.id == entry_id
    request = chosen[1]
    assert request["AlarmName"] == f"AIOps-{entry_id}-{value}"
    event = alarm_sync.alarm_event(request, account=ACCOUNT, region=REGION)
    assert mismatch(source.entry.trigger, event) is None
    # ... and only that entry's: no other entry starts on it.
    others = [e.id for e in catalogue().values() if e.id != entry_id and mismatch(e.trigger, event) is None]
    assert others == []
    # The event resolves to the resource the alarm was made for.
    target = source.entry.resolve_target(event)
    assert target is not None and target.arn.split("/")[-1] == arn.split("/")[-1]
    # SPEC's numbers reach the alarm as the condition holds them.
    condition = source.entry.metric_alarm
    assert request["Threshold"] == condition.threshold
    assert request["EvaluationPeriods"] == condition.evaluation_periods
    assert request["ComparisonOperator"] == condition.comparison


def test_a_rate_alarm_is_metric_math_over_the_same_period():
    request = alarm_sync.alarm_sources()["sns_delivery_failures"].alarm("alerts")
    expression = [q for q in request["Metrics"] if "Expression" in q]
    assert [q["ReturnData"] for q in request["Metrics"]].count(True) == 1
    assert expression[0]["Expression"] == "100 * m0 / (m1 + m0)"
    assert {q["MetricStat"]["Period"] for q in request["Metrics"] if "MetricStat" in q} == {300}
    assert "MetricName" not in request


def _tagged(value: str) -> list[dict]:
    return [{"Key": "aiops:managed", "Value": value}]


@pytest.fixture
def estate(aws):
    """Opted-in, opted-out and untagged resources of each kind moto lists, and alarms that are not ours."""
    ec2 = boto3.client("ec2", region_name=REGION)
    image = "ami-03cf127a"  # one of the images moto ships

    def instance(tags):
        spec = [{"ResourceType": "instance", "Tags": tags}] if tags else []
        return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=spec)["Instances"][
            0
        ]["InstanceId"]

    sqs = boto3.client("sqs", region_name=REGION)
    for name, tags in (
        ("orders", "true"),
        ("orders-dlq", "true"),
        ("billing-dlq", None),
        ("audit-dlq", "false"),
    ):
        sqs.create_queue(QueueName=name, tags={"aiops:managed": tags} if tags else {})
    boto3.client("sns", region_name=REGION).create_topic(Name="alerts", Tags=_tagged("true"))
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=_tagged("true"),
    )
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="lc", ImageId=image, InstanceType="t3.micro"
    )
    for name, tags in (("web-asg", "true"), ("batch-asg", None)):
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchConfigurationName="lc",
            MinSize=0,
            MaxSize=2,
            AvailabilityZones=[f"{REGION}a"],
            Tags=[{"Key": "aiops:managed", "Value": tags, "PropagateAtLaunch": False}] if tags else [],
        )
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for name in ("my-own-cpu-alarm", "AIOps-not_an_entry-x", "AIOps-ebs_volume_utilisation_high-vol-1"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/EC2",
            MetricName="CPUUtilization",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )
    return {"managed": instance(_tagged("true")), "untagged": instance(None), "ec2": ec2, "sqs": sqs}


def _alarms() -> dict[str, dict]:
    return {
        a["AlarmName"]: a
        for a in boto3.client("cloudwatch", region_name=REGION).describe_alarms(MaxRecords=100)[
            "MetricAlarms"
        ]
    }


FOREIGN = {"my-own-cpu-alarm", "AIOps-not_an_entry-x", "AIOps-ebs_volume_utilisation_high-vol-1"}


def test_sync_creates_keeps_rewrites_and_deletes_only_its_own_alarms(
    aws, estate, clients, run_for, audit_rows
):
    first = alarm_sync.sync(aws, clients, run_for("alarm_sync", "r1"))
    managed = estate["managed"]
    ours = {
        f"AIOps-ec2_status_check_failed-{managed}",
        "AIOps-sqs_queue_depth_high-orders",
        "AIOps-sqs_dlq_depth_high-orders-dlq",
        "AIOps-sns_delivery_failures-alerts",
        "AIOps-dynamodb_read_throttles-orders",
        "AIOps-ec2_cpu_high-web-asg",
    }
    alarms = _alarms()
    assert set(alarms) == ours | FOREIGN
    assert (first["created"], first["updated"], first["unchanged"], first["deleted"]) == (6, 0, 0, 0)
    cpu = alarms["AIOps-ec2_cpu_high-web-asg"]
    assert (cpu["Threshold"], cpu["Period"], cpu["EvaluationPeriods"]) == (90.0, 300, 2)
    assert cpu["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": "web-asg"}]
    assert alarms["AIOps-sqs_dlq_depth_high-orders-dlq"]["Threshold"] == 100.0
    assert alarms["AIOps-sqs_queue_depth_high-orders"]["Threshold"] == 10000.0
    # Listings: one GetResources page, one DescribeAutoScalingGroups page, one DescribeAlarms page.
    assert first["calls"] == {
        "get_resources": 1,
        "describe_auto_scaling_groups": 1,
        "describe_alarms": 1,
        "put_metric_alarm": 6,
    }

    # Nothing changed: no write at all.
    second = alarm_sync.sync(aws, clients, run_for("alarm_sync", "r2"))
    assert (second["created"], second["updated"], second["unchanged"], second["deleted"]) == (0, 0, 6, 0)
    assert "put_metric_alarm" not in second["calls"] and "delete_alarms" not in second["calls"]

    # An alarm edited by hand is rewritten; a resource opted out or gone loses its alarm.
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        **{**alarm_sync.alarm_sources()["ec2_cpu_high"].alarm("web-asg"), "Threshold": 50.0}
    )
    queue = estate["sqs"].get_queue_url(QueueName="orders")["QueueUrl"]
    estate["sqs"].tag_queue(QueueUrl=queue, Tags={"aiops:managed": "false"})
    estate["ec2"].terminate_instances(InstanceIds=[managed])
    estate["ec2"].delete_tags(Resources=[managed], Tags=[{"Key": "aiops:managed"}])
    third = alarm_sync.sync(aws, clients, run_for("alarm_sync", "r3"))
    assert (third["created"], third["updated"], third["unchanged"], third["deleted"]) == (0, 1, 3, 2)
    alarms = _alarms()
    assert alarms["AIOps-ec2_cpu_high-web-asg"]["Threshold"] == 90.0
    assert (
        set(alarms)
        == ours - {f"AIOps-ec2_status_check_failed-{managed}", "AIOps-sqs_queue_depth_high-orders"} | FOREIGN
    )
    assert third["calls"]["delete_alarms"] == 1

    rows = {r["action"] for r in audit_rows("alarm_sync")}
    assert len(audit_rows("alarm_sync")) == 3
    assert any("6 created, 0 updated, 0 unchanged, 0 deleted" in a for a in rows)
    assert any("0 created, 1 updated, 3 unchanged, 2 deleted" in a for a in rows)


def test_dry_run_counts_and_changes_nothing(aws, estate, clients, run_for, audit_rows):
    summary = alarm_sync.sync(aws, clients, run_for("alarm_sync"), dry_run=True)
    assert summary["created"] == 6 and summary["dry_run"] is True
    assert set(_alarms()) == FOREIGN
    [row] = audit_rows("alarm_sync")
    assert row["action"].startswith("dry run: ") and "6 would be created" in row["action"]


def test_every_resource_of_an_entry_unless_opted_out(aws, estate, run_for, monkeypatch):
    settings = Settings(
        **{**aws.as_flat(), "alarm_sync_every_resource_of": ("sqs_dlq_depth_high", "ec2_cpu_high")}
    )
    summary = alarm_sync.sync(settings, Clients(settings), run_for("alarm_sync"))
    alarms = set(_alarms())
    # Untagged dead-letter queue and group: in. Opted-out queue: out. The untagged non-DLQ queue would be
    # sqs_queue_depth_high's, which takes tagged queues only.
    assert {"AIOps-sqs_dlq_depth_high-billing-dlq", "AIOps-ec2_cpu_high-batch-asg"} <= alarms
    assert "AIOps-sqs_dlq_depth_high-audit-dlq" not in alarms
    assert not any(name.startswith("AIOps-sqs_queue_depth_high-billing") for name in alarms)
    assert summary["created"] == 8
    assert summary["calls"]["list_queues"] == 1


def test_an_unknown_entry_in_the_setting_fails_before_any_change(aws, estate, run_for, audit_rows):
    settings = Settings(**{**aws.as_flat(), "alarm_sync_every_resource_of": ("ebs_volume_utilisation_high",)})
    with pytest.raises(
        JobFailed, match=r"AIOPS_ALARM_SYNC_EVERY_RESOURCE_OF names \['ebs_volume_utilisation_high'\]"
    ):
        alarm_sync.sync(settings, Clients(settings), run_for("alarm_sync"))
    assert set(_alarms()) == FOREIGN
    [row] = audit_rows("alarm_sync")
    assert row["outcome"] == "FAILURE" and row["action"].startswith("refused to sync: ")


# --- every account and Region ------------------------------------------------------------------------
MEMBER = "210987654321"
OTHER_REGION = "eu-west-1"
ROLE_TEMPLATE = "arn:aws:iam::{account}:role/AIOpsMaintenance-{job}"


@pytest.fixture
def everywhere(aws, monkeypatch):
    """The hub and a member account, in two Regions, the job acting through its role in each (moto takes an
    assumed role's account as the caller's); ``clients_in(account, region)`` seeds and reads there."""
    from matcarv_aiops import aws as aws_module

    monkeypatch.setattr(aws_module, "_assumed", {})  # sessions of an earlier test's moto are not this one's
    # GetResources looks into every service's backend: EC2's default images would be loaded per account
    # and Region, and no test here needs them.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    settings = Settings(
        **{
            **aws.as_flat(),
            "member_accounts": (MEMBER,),
            "regions": (REGION, OTHER_REGION),
            "maintenance_role_arn_template": ROLE_TEMPLATE,
        }
    )
    sessions: dict[str, boto3.session.Session] = {ACCOUNT: boto3.session.Session()}
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole", RoleSessionName="seed"
    )["Credentials"]
    sessions[MEMBER] = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )

    def clients_in(account: str, region: str, service: str):
        return sessions[account].client(service, region_name=region)

    # One opted-in dead-letter queue per account and Region, named after where it is.
    for account in (ACCOUNT, MEMBER):
        for region in (REGION, OTHER_REGION):
            clients_in(account, region, "sqs").create_queue(
                QueueName=f"q-{account}-{region}-dlq", tags={"aiops:managed": "true"}
            )
    return settings, clients_in


def _alarm_names(clients_in, account: str, region: str) -> set[str]:
    return {
        a["AlarmName"] for a in clients_in(account, region, "cloudwatch").describe_alarms()["MetricAlarms"]
    }


def _stale_alarm(clients_in, account: str, region: str) -> None:
    """The alarm of a dead-letter queue that is gone."""
    clients_in(account, region, "cloudwatch").put_metric_alarm(
        **alarm_sync.alarm_sources()["sqs_dlq_depth_high"].alarm("gone-dlq")
    )


def test_each_account_and_region_gets_its_resources_alarms_there_and_loses_its_stale_ones(
    everywhere, run_for, audit_rows
):
    settings, clients_in = everywhere
    _stale_alarm(clients_in, MEMBER, OTHER_REGION)
    summary = alarm_sync.sync(settings, Clients(settings, job="alarm_sync"), run_for("alarm_sync"))
    for account in (ACCOUNT, MEMBER):
        for region in (REGION, OTHER_REGION):
            # Its own queue's alarm, and no other place's: each alarm lives with its metric.
            assert _alarm_names(clients_in, account, region) == {
                f"AIOps-sqs_dlq_depth_high-q-{account}-{region}-dlq"
            }, (account, region)
    assert (summary["created"], summary["deleted"], summary["resources"]) == (4, 1, 4)
    assert set(summary["locations"]) == {
        f"{a}/{r}" for a in (ACCOUNT, MEMBER) for r in (REGION, OTHER_REGION)
    }
    assert summary["locations"][f"{MEMBER}/{OTHER_REGION}"]["deleted"] == 1
    # Bounded per place: one listing page of each kind and of alarms, one write per alarm.
    assert summary["calls"] == {
        "get_resources": 4,
        "describe_auto_scaling_groups": 4,
        "describe_alarms": 4,
        "put_metric_alarm": 4,
        "delete_alarms": 1,
    }
    [row] = audit_rows("alarm_sync")
    assert row["outcome"] == "SUCCESS" and row["targetResource"] == "arn:aws:cloudwatch:*:*:alarm:AIOps-*"
    assert "4 created, 0 updated, 0 unchanged, 1 deleted" in row["action"]
    assert f"in 4 accounts/Regions ({ACCOUNT}/{REGION} 1 created" in row["action"]
    assert f"{MEMBER}/{OTHER_REGION} 1 created 1 deleted" in row["action"]


# AWS answers AccessDenied as a generic error; moto warns that STS's model names no such shape.
@pytest.mark.filterwarnings("ignore:Exception\\(STSClientError\\) with code AccessDenied:UserWarning")
def test_one_account_that_fails_is_recorded_and_the_others_are_still_synced(
    everywhere, run_for, audit_rows, monkeypatch
):
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    settings, clients_in = everywhere
    _stale_alarm(clients_in, MEMBER, REGION)
    assume = STSBackend.assume_role

    def refuse_the_member(self, **kwargs):  # as AWS answers when the member's role is missing
        if f"::{MEMBER}:" in kwargs["role_arn"]:
            raise STSClientError(
                "AccessDenied", f"not authorized to perform: sts:AssumeRole on {kwargs['role_arn']}"
            )
        return assume(self, **kwargs)

    monkeypatch.setattr(STSBackend, "assume_role", refuse_the_member)
    with pytest.raises(
        JobFailed, match=rf"failed in 2 of 4 accounts/Regions \({MEMBER}/{REGION}: .*AccessDenied"
    ):
        alarm_sync.sync(settings, Clients(settings, job="alarm_sync"), run_for("alarm_sync"))
    for region in (REGION, OTHER_REGION):
        assert _alarm_names(clients_in, ACCOUNT, region) == {
            f"AIOps-sqs_dlq_depth_high-q-{ACCOUNT}-{region}-dlq"
        }
    # The member's alarms are as they were: nothing created, the stale one not deleted.
    assert _alarm_names(clients_in, MEMBER, REGION) == {"AIOps-sqs_dlq_depth_high-gone-dlq"}
    assert _alarm_names(clients_in, MEMBER, OTHER_REGION) == set()
    [row] = audit_rows("alarm_sync")
    assert row["outcome"] == "FAILURE" and "2 created, 0 updated, 0 unchanged, 0 deleted" in row["action"]
    for region in (REGION, OTHER_REGION):
        assert f"FAILED in {MEMBER}/{region}: AssumeRole: AccessDenied: not authorized" in row["action"]


def test_a_dry_run_everywhere_touches_nothing_anywhere(everywhere, run_for, audit_rows):
    settings, clients_in = everywhere
    _stale_alarm(clients_in, MEMBER, OTHER_REGION)
    summary = alarm_sync.sync(
        settings, Clients(settings, job="alarm_sync"), run_for("alarm_sync"), dry_run=True
    )
    assert (summary["created"], summary["deleted"]) == (4, 1)
    assert "put_metric_alarm" not in summary["calls"] and "delete_alarms" not in summary["calls"]
    for account in (ACCOUNT, MEMBER):
        for region in (REGION, OTHER_REGION):
            expected = (
                {"AIOps-sqs_dlq_depth_high-gone-dlq"}
                if (account, region) == (MEMBER, OTHER_REGION)
                else set()
            )
            assert _alarm_names(clients_in, account, region) == expected
    [row] = audit_rows("alarm_sync")
    assert row["action"].startswith("dry run: ") and "4 would be created" in row["action"]


def test_health_check_alarms_are_kept_in_us_east_1_only(everywhere, run_for):
    settings, clients_in = everywhere
    settings = Settings(
        **{**settings.as_flat(), "alarm_sync_every_resource_of": ("route53_health_check_failed",)}
    )
    check = clients_in(ACCOUNT, REGION, "route53").create_health_check(
        CallerReference="web",
        HealthCheckConfig={"Type": "HTTPS", "FullyQualifiedDomainName": "example.com", "Port": 443},
    )["HealthCheck"]["Id"]
    name = f"AIOps-route53_health_check_failed-{check}"
    # One left in the other Region (by hand, or an earlier deployment): it never had data there.
    clients_in(ACCOUNT, OTHER_REGION, "cloudwatch").put_metric_alarm(
        **alarm_sync.alarm_sources()["route53_health_check_failed"].alarm(check)
    )
    alarm_sync.sync(settings, Clients(settings, job="alarm_sync"), run_for("alarm_sync"))
    assert name in _alarm_names(clients_in, ACCOUNT, REGION)
    assert not any(n.startswith("AIOps-route53") for n in _alarm_names(clients_in, ACCOUNT, OTHER_REGION))


def test_a_deployment_without_us_east_1_says_health_checks_get_no_alarm(aws, run_for, monkeypatch):
    from matcarv_aiops.provision import provision_platform

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # as in ``everywhere``

    settings = Settings(**{**aws.as_flat(), "region": OTHER_REGION})
    provision_platform(settings)  # the hub, its audit table included, is in the other Region
    alarm_sync.sync(settings, Clients(settings), run_for("alarm_sync"))
    [row] = boto3.client("dynamodb", region_name=OTHER_REGION).scan(TableName=settings.platform.audit_table)[
        "Items"
    ]
    assert "not kept: route53_health_check_failed (their metrics are in us-east-1 only" in row["action"]["S"]
    assert row["targetResource"]["S"] == f"arn:aws:cloudwatch:{OTHER_REGION}::alarm:AIOps-*"


def test_without_the_role_template_another_account_is_refused_by_name(aws):
    settings = Settings(**aws.as_flat())
    with pytest.raises(ValueError, match=f"cannot act in account {MEMBER}"):
        Clients(settings, job="alarm_sync").at(MEMBER, REGION)("cloudwatch")


def test_a_place_that_fails_mid_way_says_how_far_it_got_and_is_left_out_of_the_totals(
    everywhere, run_for, audit_rows, monkeypatch
):
    from moto.cloudwatch.exceptions import InvalidParameterValue
    from moto.cloudwatch.models import CloudWatchBackend

    settings, clients_in = everywhere
    clients_in(MEMBER, OTHER_REGION, "sqs").create_queue(
        QueueName="second-dlq", tags={"aiops:managed": "true"}
    )
    put = CloudWatchBackend.put_metric_alarm
    written: list[str] = []

    def second_write_refused(self, *args, **kwargs):  # the member's other Region refuses its second alarm
        if (self.account_id, self.region_name) == (MEMBER, OTHER_REGION):
            written.append(kwargs.get("name", args[0] if args else ""))
            if len(written) == 2:
                raise InvalidParameterValue("the alarm is refused")
        return put(self, *args, **kwargs)

    monkeypatch.setattr(CloudWatchBackend, "put_metric_alarm", second_write_refused)
    with pytest.raises(JobFailed, match=rf"failed in 1 of 4 accounts/Regions \({MEMBER}/{OTHER_REGION}: "):
        alarm_sync.sync(settings, Clients(settings, job="alarm_sync"), run_for("alarm_sync"))
    assert len(_alarm_names(clients_in, MEMBER, OTHER_REGION)) == 1
    [row] = audit_rows("alarm_sync")
    # The three places that synced made one alarm each; the fourth says it made one before it failed.
    assert row["action"].startswith("catalogue alarms for 3 resources: 3 created, 0 updated, 0 unchanged")
    assert f"FAILED in {MEMBER}/{OTHER_REGION}: PutMetricAlarm: " in row["action"]
    assert row["action"].endswith("after 1 alarm writes and 0 deletions")
