import json
from datetime import UTC, datetime

import boto3
import pytest

from matcarv_aiops.remediations import cloudtrail_disabled
from tests.events import ACCOUNT, cloudtrail_event, config_compliance_event
from tests.remediations.notifications import TopicInbox
from tests.remediations.stubs import approver, stubbed_clients

REGION = "us-east-1"
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/org-audit"


@pytest.fixture
def inbox(aws):
    return TopicInbox(aws)


def _trail(*, logging: bool):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="audit-logs-123")
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    cloudtrail.create_trail(
        Name="org-audit",
        S3BucketName="audit-logs-123",
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
        TagsList=[{"Key": "Environment", "Value": "staging"}],
    )
    if logging:
        cloudtrail.start_logging(Name="org-audit")
    return cloudtrail


def _logging(cloudtrail):
    return cloudtrail.get_trail_status(Name=TRAIL_ARN)["IsLogging"]


def test_stopped_trail_logs_again_after_approval_and_a_sev2_is_opened(remediate, inbox):
    cloudtrail = _trail(logging=False)
    event = cloudtrail_event("cloudtrail", "StopLogging", {"name": TRAIL_ARN})  # the console passes the ARN
    run = remediate("cloudtrail_disabled", {"event": event}, decide=approver())
    assert run.outcome == "SUCCESS", run
    assert run.audit.target_resource == TRAIL_ARN
    assert _logging(cloudtrail)
    [incident] = inbox.messages("incident")
    assert incident["Subject"].startswith("SEV-2: CloudTrail logging was turned off")
    assert json.loads(incident["MessageAttributes"]["payload"]["Value"])["trail"] == TRAIL_ARN


def test_config_account_finding_restarts_the_stopped_trail(remediate, inbox):
    cloudtrail = _trail(logging=False)
    event = config_compliance_event("cloudtrail-enabled", "AWS::::Account", ACCOUNT)
    run = remediate("cloudtrail_disabled", {"event": event}, decide=approver())
    assert run.outcome == "SUCCESS", run
    assert run.audit.target_resource == f"arn:aws:iam::{ACCOUNT}:root"
    assert _logging(cloudtrail) and len(inbox.messages("incident")) == 1


RECORDED = {
    "name": "org-audit",
    "s3BucketName": "audit-logs-123",
    "isMultiRegionTrail": True,
    "includeGlobalServiceEvents": True,
    "logFileValidationEnabled": True,
    "homeRegion": REGION,
    "trailARN": TRAIL_ARN,
}


def _config_history(stub, times: int, configuration: dict | None):
    """Documented ListDiscoveredResources / GetResourceConfigHistory responses for a deleted trail."""
    for _ in range(times):
        stub.add_response(
            "list_discovered_resources",
            {
                "resourceIdentifiers": [
                    {
                        "resourceType": "AWS::CloudTrail::Trail",
                        "resourceId": TRAIL_ARN,
                        "resourceName": "org-audit",
                        "resourceDeletionTime": datetime(2026, 11, 27, 2, 58, tzinfo=UTC),
                    }
                ]
            }
            if configuration
            else {"resourceIdentifiers": []},
            {
                "resourceType": "AWS::CloudTrail::Trail",
                "resourceName": "org-audit",
                "includeDeletedResources": True,
            },
        )
        if configuration:
            stub.add_response(
                "get_resource_config_history",
                {
                    "configurationItems": [
                        {
                            "version": "1.3",
                            "accountId": ACCOUNT,
                            "configurationItemStatus": "ResourceDeleted",
                            "configurationItemCaptureTime": datetime(2026, 11, 27, 2, 58, tzinfo=UTC),
                            "resourceType": "AWS::CloudTrail::Trail",
                            "resourceId": TRAIL_ARN,
                            "awsRegion": REGION,
                        },
                        {
                            "version": "1.3",
                            "accountId": ACCOUNT,
                            "configurationItemStatus": "OK",
                            "configurationItemCaptureTime": datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
                            "resourceType": "AWS::CloudTrail::Trail",
                            "resourceId": TRAIL_ARN,
                            "resourceName": "org-audit",
                            "arn": TRAIL_ARN,
                            "awsRegion": REGION,
                            "tags": {"Environment": "staging"},
                            "configuration": json.dumps(configuration),
                        },
                    ]
                },
                {
                    "resourceType": "AWS::CloudTrail::Trail",
                    "resourceId": TRAIL_ARN,
                    "chronologicalOrder": "Reverse",
                    "limit": 10,
                },
            )


def test_deleted_trail_is_recreated_from_its_recorded_configuration(remediate, inbox, monkeypatch):
    cloudtrail = _trail(logging=True)
    cloudtrail.delete_trail(Name="org-audit")
    config = stubbed_clients(monkeypatch)("config")
    _config_history(config, 2, RECORDED)  # described at collect, and again after the approval
    run = remediate(
        "cloudtrail_disabled",
        {"event": cloudtrail_event("cloudtrail", "DeleteTrail", {"name": "org-audit"})},
        decide=approver(),
    )
    assert run.outcome == "SUCCESS", run
    config.assert_no_pending_responses()
    [trail] = cloudtrail.describe_trails(trailNameList=["org-audit"])["trailList"]
    assert (trail["S3BucketName"], trail["IsMultiRegionTrail"], trail["LogFileValidationEnabled"]) == (
        "audit-logs-123",
        True,
        True,
    )
    assert _logging(cloudtrail)
    assert cloudtrail.list_tags(ResourceIdList=[TRAIL_ARN])["ResourceTagList"][0]["TagsList"] == [
        {"Key": "Environment", "Value": "staging"}
    ]


def test_deleted_trail_without_recorded_configuration_is_skipped(remediate, inbox, monkeypatch):
    cloudtrail = _trail(logging=True)
    cloudtrail.delete_trail(Name="org-audit")
    config = stubbed_clients(monkeypatch)("config")
    _config_history(config, 1, None)
    run = remediate(
        "cloudtrail_disabled",
        {"event": cloudtrail_event("cloudtrail", "DeleteTrail", {"name": "org-audit"})},
        decide=approver(),
    )
    assert run.outcome == "SKIPPED" and "a human recreates it" in run.audit.action
    assert cloudtrail.describe_trails()["trailList"] == [] and inbox.messages("incident") == []


def test_validation_failure_is_failure_and_nothing_else_changes(remediate, inbox, monkeypatch):
    cloudtrail = _trail(logging=False)
    before = cloudtrail.describe_trails()["trailList"]
    # An ineffective action: the incident is opened but StartLogging never reached CloudTrail.
    monkeypatch.setattr(
        cloudtrail_disabled.CloudtrailDisabled,
        "execute",
        lambda self, ctx, state: {"trail_arn": TRAIL_ARN, "recreated": False},
    )
    run = remediate(
        "cloudtrail_disabled",
        {"event": cloudtrail_event("cloudtrail", "StopLogging", {"name": "org-audit"})},
        decide=approver(),
    )
    assert run.outcome == "FAILURE" and "is not logging" in run.audit.action
    assert run.record("rollback").done["rolled_back"] is False
    assert not _logging(cloudtrail) and cloudtrail.describe_trails()["trailList"] == before
    assert [m["MessageAttributes"]["kind"]["Value"] for m in inbox.messages()] == [
        "approval_request",
        "alert",
    ]


def test_trail_that_is_logging_is_skipped(remediate, inbox):
    cloudtrail = _trail(logging=True)
    run = remediate(
        "cloudtrail_disabled",
        {"event": cloudtrail_event("cloudtrail", "StopLogging", {"name": "org-audit"})},
        decide=approver(),
    )
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action
    assert _logging(cloudtrail) and inbox.messages("incident") == []
