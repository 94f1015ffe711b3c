import json

import boto3
import pytest

from matcarv_aiops.catalogue import get_entry
from matcarv_aiops.remediations import guardduty_high_finding
from tests.events import ACCOUNT, guardduty_finding_event
from tests.remediations.stubs import stubbed_clients

DETECTOR = "12abc34d567e8fa901bc2d34e56789f0"
POLICY = guardduty_high_finding.QUARANTINE_POLICY
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}
        ],
    }
)


@pytest.fixture
def guardduty(monkeypatch, aws):
    return stubbed_clients(monkeypatch)("guardduty")


def _findings_listed(guardduty, name: str, finding_ids: list[str]):
    """Documented ListDetectors / ListFindings responses: GuardDuty's live view of the principal."""
    guardduty.add_response("list_detectors", {"DetectorIds": [DETECTOR]}, {})
    guardduty.add_response(
        "list_findings",
        {"FindingIds": finding_ids},
        {
            "DetectorId": DETECTOR,
            "MaxResults": 50,
            "FindingCriteria": {
                "Criterion": {
                    "resource.accessKeyDetails.userName": {"Equals": [name]},
                    "severity": {"GreaterThanOrEqual": 7},
                    "service.archived": {"Equals": ["false"]},
                }
            },
        },
    )


def _iam():
    return boto3.client("iam", region_name="us-east-1")


def _user_policies(name):
    return _iam().list_user_policies(UserName=name)["PolicyNames"]


def test_quarantines_the_user(remediate, guardduty):
    _iam().create_user(UserName="alice")
    _findings_listed(guardduty, "alice", ["a1b2c3d4e5f6"])
    event = guardduty_finding_event(
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", 8.0, user_name="alice"
    )
    run = remediate("guardduty_high_finding", {"event": event})
    assert run.outcome == "SUCCESS", run.audit.action
    guardduty.assert_no_pending_responses()
    assert run.audit.target_resource == f"arn:aws:iam::{ACCOUNT}:user/alice"
    document = _iam().get_user_policy(UserName="alice", PolicyName=POLICY)["PolicyDocument"]
    assert document["Statement"] == [
        {"Sid": "AIOpsQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}
    ]


def test_quarantines_an_assumed_role(remediate, guardduty):
    _iam().create_role(RoleName="web-instance", AssumeRolePolicyDocument=TRUST, Path="/app/")
    _findings_listed(guardduty, "web-instance", ["f00d"])
    event = guardduty_finding_event(
        "CredentialAccess:IAMUser/AnomalousBehavior", 7.0, user_name="web-instance", user_type="AssumedRole"
    )
    run = remediate("guardduty_high_finding", {"event": event})
    assert run.outcome == "SUCCESS", run.audit.action
    assert _iam().list_role_policies(RoleName="web-instance")["PolicyNames"] == [POLICY]


def test_ineffective_policy_fails_validation_and_is_removed(remediate, guardduty, monkeypatch):
    _iam().create_user(UserName="bob")
    _findings_listed(guardduty, "bob", ["a1"])

    def deny_with_a_hole(self, ctx, state):  # denies nothing outside one region: not a quarantine
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:RequestedRegion": "ap-south-2"}},
                }
            ],
        }
        ctx.client("iam").put_user_policy(
            UserName="bob", PolicyName=POLICY, PolicyDocument=json.dumps(document)
        )
        return {"policy_name": POLICY, "principal": state["arn"]}

    monkeypatch.setattr(guardduty_high_finding.GuarddutyHighFinding, "execute", deny_with_a_hole)
    run = remediate(
        "guardduty_high_finding",
        {"event": guardduty_finding_event("Policy:IAMUser/RootCredentialUsage", 9.0, user_name="bob")},
    )
    assert run.outcome == "FAILURE" and "does not deny every action" in run.audit.action
    assert (
        run.record("rollback").done["rolled_back"]
        and f"removed {POLICY}" in run.record("rollback").done["detail"]
    )
    assert _user_policies("bob") == []


def test_archived_finding_is_skipped(remediate, guardduty):
    _iam().create_user(UserName="carol")
    _findings_listed(guardduty, "carol", [])
    run = remediate(
        "guardduty_high_finding",
        {"event": guardduty_finding_event("Recon:IAMUser/MaliciousIPCaller", 7.5, user_name="carol")},
    )
    assert run.outcome == "SKIPPED" and "archived or resolved" in run.audit.action
    assert _user_policies("carol") == []


def test_aiops_own_role_is_never_quarantined(remediate, guardduty):
    _iam().create_role(RoleName="AIOpsRemediationLambdaRole", AssumeRolePolicyDocument=TRUST)
    _findings_listed(guardduty, "AIOpsRemediationLambdaRole", ["x"])
    event = guardduty_finding_event(
        "Discovery:IAMUser/AnomalousBehavior",
        8.0,
        user_name="AIOpsRemediationLambdaRole",
        user_type="AssumedRole",
    )
    run = remediate("guardduty_high_finding", {"event": event})
    assert run.outcome == "SKIPPED" and "AIOps' own principals" in run.audit.action
    assert _iam().list_role_policies(RoleName="AIOpsRemediationLambdaRole")["PolicyNames"] == []


def test_target_is_in_the_findings_member_account():
    entry = get_entry("guardduty_high_finding")
    user = entry.resolve_target(guardduty_finding_event("x", 8, user_name="dave", account="210987654321"))
    role = entry.resolve_target(guardduty_finding_event("x", 8, user_name="ops", user_type="Role"))
    assert (user.arn, user.account) == ("arn:aws:iam::210987654321:user/dave", "210987654321")
    assert role.arn == f"arn:aws:iam::{ACCOUNT}:role/ops"
    assert entry.resolve_target(guardduty_finding_event("x", 8, user_name="root", user_type="Root")) is None
