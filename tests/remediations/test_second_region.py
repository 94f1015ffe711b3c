"""An event from a Region other than the hub's (as the regional stacks forward it to the hub's bus: the
event keeps its own Region) is fixed in that Region: the target, its session, the runbook's start all
take the event's Region; the platform's own state (audit, diagnostics) stays in the hub's."""

from __future__ import annotations

import json

import boto3

from local.scenarios import failing_instance, instance_state, raised_in, ssh_rules, world_open_ssh
from matcarv_aiops.aws import target_session
from matcarv_aiops.catalogue import get_entry
from matcarv_aiops.ingress.routing import route
from tests.events import ACCOUNT, alarm_event, cloudtrail_event
from tests.remediations.stubs import approver

HUB_REGION, OTHER_REGION = "us-east-1", "eu-west-1"


def in_region(event: dict, region: str) -> dict:
    return raised_in(event, account=ACCOUNT, region=region)


def _open_ssh_event(group: str) -> dict:
    permission = {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22}
    items = [{**permission, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]
    event = cloudtrail_event(
        "ec2", "AuthorizeSecurityGroupIngress", {"groupId": group, "ipPermissions": {"items": items}}
    )
    return in_region(event, OTHER_REGION)


def test_an_open_group_in_the_second_region_is_closed_there(remediate):
    ec2, group = world_open_ssh("eu-bastion", region=OTHER_REGION)
    # The same id in the hub's Region names nothing: acting there would fail, not fix.
    hub_ec2 = boto3.client("ec2", region_name=HUB_REGION)
    assert group not in {g["GroupId"] for g in hub_ec2.describe_security_groups()["SecurityGroups"]}

    event = _open_ssh_event(group)
    [match] = [m for m in route(event).matches if m.remediation == "sg_open_ssh"]
    assert match.target == f"arn:aws:ec2:{OTHER_REGION}:{ACCOUNT}:security-group/{group}"

    run = remediate("sg_open_ssh", {"event": event}, decide=approver())
    assert run.outcome == "SUCCESS", run
    assert ssh_rules(ec2, group) == ["198.51.100.0/24"]
    execution = run.result("collect_diagnostics")
    assert (execution.target.region, execution.target.account) == (OTHER_REGION, ACCOUNT)
    # The audit record and the diagnostics are the hub's, in the hub's Region; the record names the
    # target's Region through its ARN.
    [record] = boto3.client("dynamodb", region_name=HUB_REGION).scan(
        TableName=run.settings.platform.audit_table
    )["Items"]
    assert record["targetResource"]["S"].startswith(f"arn:aws:ec2:{OTHER_REGION}:")
    bucket, key = execution.diagnostics_uri.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3", region_name=HUB_REGION)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] in (None, HUB_REGION)
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["state"]["group_id"] == group


def test_a_runbook_runs_in_the_targets_region(remediate):
    ec2, instance = failing_instance(region=OTHER_REGION)
    event = in_region(alarm_event("AWS/EC2", "StatusCheckFailed", {"InstanceId": instance}), OTHER_REGION)
    run = remediate("ec2_status_check_failed", {"event": event})
    assert run.outcome == "SUCCESS", run
    assert run.records["wait_for_automation"].done["AutomationExecutionStatus"] == "Success"
    assert instance_state(ec2, instance) == "running"
    assert run.result("collect_diagnostics").target.region == OTHER_REGION


def test_the_assumed_session_is_in_the_events_region(assume_calls):
    entry = get_entry("sg_open_ssh")
    target = entry.resolve_target(_open_ssh_event("sg-0123456789abcdef0"))
    assert target is not None and target.region == OTHER_REGION
    session = target_session(target, entry, execution_id="exec-eu", source_identity="automated")
    assert session.region_name == OTHER_REGION
    [call] = assume_calls
    assert call["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/AIOpsRemediation-sg_open_ssh"
    statements = json.loads(call["Policy"])["Statement"]
    assert any(target.arn in statement["Resource"] for statement in statements)
