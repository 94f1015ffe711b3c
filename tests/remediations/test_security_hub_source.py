"""Security Hub as a source, at the pipeline level: a finding starts the entry that fixes it; the finding's
workflow follows the run (NOTIFIED while a human decides or after a failure, RESOLVED after a validated
fix); the same problem reported by another source leads to one change, the later run SKIPPED naming the
execution that acted.

moto has no BatchUpdateFindings: those calls go to a client stubbed with botocore's Stubber, answering
with the documented response shape (ProcessedFindings / UnprocessedFindings)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from local.scenarios import public_access_block, public_bucket, ssh_rules, world_open_ssh
from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.pipeline import steps
from matcarv_aiops.remediations.s3_public_access import S3PublicAccess
from matcarv_aiops.settings import get_settings
from tests.events import (
    ACCOUNT,
    cloudtrail_event,
    config_compliance_event,
    securityhub_event,
    securityhub_finding,
)


def approve(execution_id):
    ApprovalStore(get_settings()).decide(execution_id, approve=True, approver="alice", reason="fix it")


class FindingUpdates:
    """A Security Hub client whose BatchUpdateFindings answers are queued, and the requests it got."""

    def __init__(self):
        self.client = boto3.client("securityhub", region_name="us-east-1")
        self.stubber = Stubber(self.client)
        self.requests: list[dict] = []
        self.client.meta.events.register(
            "provide-client-params.securityhub.BatchUpdateFindings",
            lambda params, **_: self.requests.append(params),
        )

    def answer(self, finding: dict, *, unprocessed: bool = False) -> None:
        ident = {"Id": finding["Id"], "ProductArn": finding["ProductArn"]}
        response = (
            {
                "ProcessedFindings": [],
                "UnprocessedFindings": [
                    {"FindingIdentifier": ident, "ErrorCode": "FindingNotFound", "ErrorMessage": "gone"}
                ],
            }
            if unprocessed
            else {"ProcessedFindings": [ident], "UnprocessedFindings": []}
        )
        expected = {"FindingIdentifiers": [ident], "Workflow": {"Status": ANY}, "Note": ANY}
        self.stubber.add_response("batch_update_findings", response, expected)

    def statuses(self) -> list[tuple[str, str]]:
        return [(r["Workflow"]["Status"], r["Note"]["Text"]) for r in self.requests]


@pytest.fixture
def updates(aws, monkeypatch):
    found = FindingUpdates()
    found.stubber.activate()
    monkeypatch.setattr(steps, "_securityhub_client", lambda run, execution, region: found.client)
    yield found
    found.stubber.deactivate()


def test_a_finding_fixes_the_bucket_and_its_workflow_follows_the_run(remediate, updates):
    s3, bucket = public_bucket("findings-bucket")
    finding = securityhub_finding("S3.8", "AwsS3Bucket", f"arn:aws:s3:::{bucket}")
    updates.answer(finding)  # NOTIFIED: waits for a human
    updates.answer(finding)  # RESOLVED: fixed and validated
    run = remediate("s3_public_access", {"event": securityhub_event(finding)}, decide=approve)
    assert run.outcome == "SUCCESS" and run.audit.operator == "alice", run.audit.action
    assert all(public_access_block(s3, bucket).values())
    execution = run.audit.execution_id
    [(waiting, why), (done, fixed)] = updates.statuses()
    assert waiting == "NOTIFIED" and f"AIOps execution {execution} waits for a human" in why
    assert done == "RESOLVED" and fixed.startswith(
        f"AIOps execution {execution} (SUCCESS): PutPublicAccessBlock"
    )
    assert run.audit.target_resource == f"arn:aws:s3:::{bucket}"
    updates.stubber.assert_no_pending_responses()


def test_a_failed_fix_leaves_the_finding_notified(remediate, updates, monkeypatch):
    monkeypatch.setattr(S3PublicAccess, "execute", lambda self, ctx, state: {"applied": {}})
    _, bucket = public_bucket("still-public")
    finding = securityhub_finding("S3.8", "AwsS3Bucket", f"arn:aws:s3:::{bucket}")
    updates.answer(finding)
    updates.answer(finding)
    run = remediate("s3_public_access", {"event": securityhub_event(finding)}, decide=approve)
    assert run.outcome == "FAILURE"
    assert [status for status, _ in updates.statuses()] == ["NOTIFIED", "NOTIFIED"]
    assert f"AIOps execution {run.audit.execution_id} (FAILURE)" in updates.statuses()[1][1]


def test_a_finding_security_hub_does_not_update_is_logged_and_counted_not_a_failed_fix(
    remediate, updates, caplog
):
    _, bucket = public_bucket("gone-finding")
    finding = securityhub_finding("S3.8", "AwsS3Bucket", f"arn:aws:s3:::{bucket}")
    updates.answer(finding, unprocessed=True)
    updates.answer(finding, unprocessed=True)
    run = remediate("s3_public_access", {"event": securityhub_event(finding)}, decide=approve)
    assert run.outcome == "SUCCESS"  # the bucket is fixed; Security Hub re-evaluates S3.8 by itself
    assert "FindingNotFound" in caplog.text and f"execution {run.audit.execution_id}" in caplog.text
    stats = boto3.client("cloudwatch", region_name="us-east-1").list_metrics(
        Namespace="AIOps/Automation", MetricName="NotificationFailed"
    )["Metrics"]
    assert {d["Value"] for m in stats for d in m["Dimensions"]} >= {"securityhub", "RESOLVED", "NOTIFIED"}


def test_the_same_open_ssh_from_config_then_security_hub_is_changed_once(remediate, updates):
    ec2, group = world_open_ssh("dup-bastion")
    config = config_compliance_event("restricted-ssh", "AWS::EC2::SecurityGroup", group)
    first = remediate("sg_open_ssh", {"event": config}, decide=approve)
    assert first.outcome == "SUCCESS" and ssh_rules(ec2, group) == ["198.51.100.0/24"]
    arn = f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{group}"
    finding = securityhub_finding("EC2.13", "AwsEc2SecurityGroup", arn)
    second = remediate("sg_open_ssh", {"event": securityhub_event(finding)}, run_id="ev_securityhub")
    assert second.outcome == "SKIPPED" and second.audit.target_resource == first.audit.target_resource
    assert "already fixed" in second.audit.action
    assert f"execution {first.audit.execution_id} acted on this resource at" in second.audit.action
    assert updates.requests == []  # a skipped duplicate leaves the finding to Security Hub's re-check


def test_a_problem_reopened_within_the_cooldown_names_the_execution_that_acted(remediate, updates):
    s3, bucket = public_bucket("reopened")
    trail = {"event": cloudtrail_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": bucket})}
    first = remediate("s3_public_access", trail, decide=approve)
    assert first.outcome == "SUCCESS"
    public_bucket("reopened")  # someone turns it off again: the finding reports a real, live problem
    finding = securityhub_finding("S3.8", "AwsS3Bucket", f"arn:aws:s3:::{bucket}")
    second = remediate(
        "s3_public_access", {"event": securityhub_event(finding)}, run_id="ev_sh", decide=approve
    )
    assert second.outcome == "SKIPPED"
    assert "in cooldown: last remediated" in second.audit.action
    assert f"by execution {first.audit.execution_id}" in second.audit.action
    assert not any(public_access_block(s3, bucket).values())  # one change only; a human takes it from here
