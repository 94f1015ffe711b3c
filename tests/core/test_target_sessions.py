"""A remediation's session in the target account: named after its execution, carrying its human as
SourceIdentity, and narrowed by a session policy to the target and the entry's related resources."""

import json

import boto3
import pytest

from matcarv_aiops import aws as aws_module
from matcarv_aiops.aws import sts_name, target_session
from matcarv_aiops.catalogue import catalogue, get_entry
from matcarv_aiops.models import Target
from matcarv_aiops.session_policy import (
    SESSION_POLICY_MAX_CHARS,
    declared_grants,
    session_policy,
    unscoped_actions,
)
from tests.events import ACCOUNT

EXECUTION = "0b6c2f5e-3f5d-5a55-9d1e-5f6a7b8c9d0e"


def _sample_target(template: str) -> Target:
    if template == "{value}":  # entries whose event gives the whole ARN
        return Target.from_arn(f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/web/api")
    arn = template.format(value="sample-1", region="us-east-1", account=ACCOUNT)
    return Target.from_arn(arn, default_region="us-east-1", default_account=ACCOUNT)


@pytest.mark.parametrize("entry_id", sorted(catalogue()))
def test_every_entrys_policy_names_only_its_target_and_declared_resources(entry_id):
    entry = get_entry(entry_id)
    target = _sample_target(entry.targets[0].arn)
    grants = declared_grants(entry, target)
    policy = json.loads(session_policy(entry, target, grants))
    assert len(session_policy(entry, target, grants)) <= SESSION_POLICY_MAX_CHARS
    allowed = {target.arn} | {arn for _, arns in grants for arn in arns}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= unscoped_actions(), statement
            continue
        extra = set(statement["Resource"]) - allowed
        # an IAM principal named without its path is matched with any path, and nothing else
        assert all(arn.endswith("/*/sample-1") and arn.startswith("arn:aws:iam::") for arn in extra), extra
    covered = {action for statement in policy["Statement"] for action in statement["Action"]}
    assert covered == set(entry.permissions)


def test_related_actions_are_on_the_related_arn_and_nowhere_else():
    entry = get_entry("ec2_status_check_failed")
    target = Target.from_arn(f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abc")
    statements = json.loads(session_policy(entry, target, declared_grants(entry, target)))["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["Target"]["Resource"] == [target.arn]
    assert by_sid["Related0"] == {
        "Sid": "Related0",
        "Effect": "Allow",
        "Action": ["ssm:StartAutomationExecution"],
        "Resource": [f"arn:aws:ssm:us-east-1:{ACCOUNT}:automation-definition/AIOps-EC2StatusCheckRestart:*"],
    }
    assert by_sid["Related2"]["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/AIOpsSSMAutomationRole"]
    assert set(by_sid["NoResourceLevel"]["Action"]) == {
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeInstanceTypes",
        "autoscaling:DescribeAutoScalingInstances",
        "cloudwatch:GetMetricStatistics",
    }


def test_a_policy_over_the_sts_limit_is_refused_by_name():
    entry = get_entry("s3_public_access")
    target = Target.from_arn("arn:aws:s3:::b")
    grants = [(("s3:GetBucketAcl",), tuple(f"arn:aws:s3:::bucket-{n:04d}" for n in range(200)))]
    with pytest.raises(
        ValueError, match=r"'s3_public_access': the session policy for arn:aws:s3:::b is \d+ c"
    ):
        session_policy(entry, target, grants)


def test_sts_names_keep_the_allowed_characters():
    assert sts_name("arn:aws:iam::123456789012:user/oncall", "x") == "arn_aws_iam__123456789012_user_oncall"
    assert sts_name("alice,bob@example.com", "x") == "alice,bob@example.com"
    assert len(sts_name("a" * 80, "x")) == 64
    with pytest.raises(ValueError, match="source identity 'a' is too short"):
        sts_name("a", "source identity")


def test_assume_role_carries_execution_human_and_policy(assume_calls):
    entry = get_entry("sg_open_ssh")
    target = Target.from_arn(f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-0123")
    session = target_session(target, entry, execution_id=EXECUTION, source_identity="alice")
    assert session.get_credentials().access_key != boto3.session.Session().get_credentials().access_key
    [call] = assume_calls
    assert call["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/AIOpsRemediation-sg_open_ssh"
    assert (call["RoleSessionName"], call["SourceIdentity"]) == (EXECUTION, "alice")
    statements = json.loads(call["Policy"])["Statement"]
    assert statements[0]["Resource"] == [target.arn]
    assert statements[0]["Action"] == [
        "ec2:RevokeSecurityGroupIngress",
        "securityhub:BatchImportFindings",
        "securityhub:GetFindings",
        "securityhub:BatchUpdateFindings",
    ]
    # the same execution and human reuse the session; another human gets their own
    assert target_session(target, entry, execution_id=EXECUTION, source_identity="alice") is session
    target_session(target, entry, execution_id=EXECUTION, source_identity="automated")
    assert [c["SourceIdentity"] for c in assume_calls] == ["alice", "automated"]


def test_an_assumed_roles_clients_act_as_the_role_without_a_session_of_their_own(assume_calls, monkeypatch):
    """The role's clients are made from the process's one session for the region, with the role's
    credentials: no botocore session (and its handlers) per assumed role."""
    import botocore.session

    from matcarv_aiops.aws import session_client

    aws_module._session("us-east-1")  # the hub's, made before any remediation's, as in a task process
    made = []
    make = botocore.session.Session.__init__
    monkeypatch.setattr(botocore.session.Session, "__init__", lambda *a, **k: made.append(a) or make(*a, **k))
    target = Target.from_arn(f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-0123")
    session = target_session(
        target, get_entry("sg_open_ssh"), execution_id=EXECUTION, source_identity="alice"
    )
    identity = session_client(session, "sts", "us-east-1").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/AIOpsRemediation-sg_open_ssh/{EXECUTION}"
    assert made == []
    assert session.client("sts", region_name="eu-west-1").meta.region_name == "eu-west-1"


def test_a_resolved_related_resource_is_found_through_the_narrowed_session(assume_calls):
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
    sqs.create_queue(QueueName="orders", Attributes={"RedrivePolicy": redrive})
    sqs.create_queue(QueueName="unrelated")
    target = Target.from_arn(dlq_arn)
    target_session(
        target, get_entry("sqs_dlq_depth_high"), execution_id=EXECUTION, source_identity="automated"
    )
    discovery, final = (json.loads(call["Policy"])["Statement"] for call in assume_calls)
    assert [s["Resource"] for s in discovery] == [[dlq_arn]]
    assert [s["Resource"] for s in final] == [[dlq_arn], [f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"]]
    assert final[1]["Action"] == ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"]


def test_without_a_role_template_the_workers_own_credentials_act(aws, monkeypatch):
    monkeypatch.setattr(aws_module, "_assumed", {})
    target = Target.from_arn(f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-0123")
    target_session(target, get_entry("sg_open_ssh"), execution_id=EXECUTION, source_identity="alice")
    assert aws_module._assumed == {}


def test_the_approver_is_the_source_identity_of_the_change(assume_calls):
    from local.scenarios import public_bucket
    from matcarv_aiops.approvals import ApprovalStore
    from matcarv_aiops.settings import get_settings
    from tests.events import cloudtrail_event
    from tests.remediations.conftest import run_remediation

    _, bucket = public_bucket()

    def approve(execution_id):
        ApprovalStore(get_settings()).decide(execution_id, approve=True, approver="alice", reason="ok")

    event = {"event": cloudtrail_event("s3", "PutBucketPolicy", {"bucketName": bucket})}
    run = run_remediation("s3_public_access", event, decide=approve)
    assert run.outcome == "SUCCESS", run.audit.action
    execution_id = run.audit.execution_id
    assert {call["RoleSessionName"] for call in assume_calls} == {execution_id}
    # read before any decision as the platform, changed and validated as the approver
    assert [call["SourceIdentity"] for call in assume_calls] == ["automated", "alice"]
    for call in assume_calls:
        target, hub = json.loads(call["Policy"])["Statement"]
        assert target["Resource"] == [f"arn:aws:s3:::{bucket}"]
        # the finding's workflow is set on the account's Security Hub, when a finding started the run
        assert (hub["Action"], hub["Resource"]) == (
            ["securityhub:BatchUpdateFindings"],
            [f"arn:aws:securityhub:us-east-1:{ACCOUNT}:hub/default"],
        )


def test_a_bucket_given_by_hand_is_acted_on_through_the_hub_accounts_role(assume_calls):
    """An S3 ARN names no account: a run started by hand with one assumes the role in the hub's account
    (found under IAM enforcement on the local stack: the role ARN named no account, and STS refused)."""
    from local.scenarios import public_bucket
    from matcarv_aiops.approvals import ApprovalStore
    from matcarv_aiops.settings import get_settings
    from tests.remediations.conftest import run_remediation

    _, bucket = public_bucket("by-hand-bucket")

    def approve(execution_id):
        ApprovalStore(get_settings()).decide(execution_id, approve=True, approver="alice", reason="ok")

    run = run_remediation("s3_public_access", {"target": f"arn:aws:s3:::{bucket}"}, decide=approve)
    assert run.outcome == "SUCCESS", run.audit.action
    assert {call["RoleArn"] for call in assume_calls} == {
        f"arn:aws:iam::{ACCOUNT}:role/AIOpsRemediation-s3_public_access"
    }


@pytest.mark.parametrize(
    ("related", "problem"),
    [
        (
            {"arn": "arn:aws:sqs:{region}:{account}:x", "actions": ["sqs:PurgeQueue"], "why": "the source"},
            "not in permissions",
        ),
        (
            {"arn": "arn:aws:sqs:{region}:{acount}:x", "actions": ["sqs:SendMessage"], "why": "the source"},
            "unknown placeholder",
        ),
        ({"actions": ["sqs:SendMessage"], "why": "the source"}, "exactly one of 'arn'"),
        ({"resolver": "the_source_queue", "actions": ["sqs:SendMessage"], "why": "the source"}, "resolver"),
    ],
)
def test_a_bad_related_resource_is_named(related, problem):
    from pydantic import ValidationError

    from matcarv_aiops.catalogue import CatalogueEntry

    data = get_entry("sqs_dlq_depth_high").model_dump(mode="json") | {"related_resources": [related]}
    with pytest.raises(ValidationError, match=problem):
        CatalogueEntry.model_validate(data)


def test_every_resolver_the_catalogue_may_name_exists():
    from typing import get_args

    from matcarv_aiops.catalogue import RelatedResolver
    from matcarv_aiops.session_policy import RESOLVERS

    assert set(get_args(RelatedResolver)) == set(RESOLVERS)


def test_a_step_that_decides_from_the_recorded_state_assumes_no_role(assume_calls, monkeypatch):
    """Each step runs in a process of its own: one that never calls AWS through the target's session (an
    eligibility check from the recorded state) must not pay for assuming the remediation role."""
    from local.scenarios import dead_letter_queue
    from matcarv_aiops.pipeline import StepRecord, call
    from matcarv_aiops.pipeline.inline import InlineRun
    from tests.events import alarm_event

    dead_letter_queue(150)
    event = alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "orders-dlq"})
    run = InlineRun("sqs_dlq_depth_high", {"event": event})
    run.records["collect_diagnostics"] = StepRecord(done=call(run.step("collect_diagnostics"), run))
    assert len(assume_calls) == 2  # the discovery session, then the one narrowed to the source queue
    monkeypatch.setattr(aws_module, "_assumed", {})  # the next step's process starts with no session
    eligibility = call(run.step("check_eligibility"), run)
    assert eligibility["needs_approval"] is False
    assert len(assume_calls) == 2
