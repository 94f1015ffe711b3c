import json

import boto3
import pytest

from matcarv_aiops.catalogue import get_entry
from matcarv_aiops.remediations import guardduty_high_finding
from tests.events import ACCOUNT, guardduty_finding_event
from tests.remediations.stubs import stubbed_clients

DETECTOR = "12abc34d567e8fa901bc2d34e56789f0"
POLICY = guardduty_high_finding.QUARANTINE_POLICY
[DENY_ALL_STATEMENT] = guardduty_high_finding.DENY_ALL["Statement"]
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


@pytest.fixture
def quarantine_policy(aws):
    """The managed deny-all policy the member stack creates in every account."""
    document = json.dumps(guardduty_high_finding.DENY_ALL)
    return _iam().create_policy(PolicyName=POLICY, PolicyDocument=document)["Policy"]["Arn"]


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
    return [p["PolicyName"] for p in _iam().list_attached_user_policies(UserName=name)["AttachedPolicies"]]


def _role_policies(name):
    return [p["PolicyName"] for p in _iam().list_attached_role_policies(RoleName=name)["AttachedPolicies"]]


def test_quarantines_the_user(remediate, guardduty, quarantine_policy):
    _iam().create_user(UserName="alice")
    _findings_listed(guardduty, "alice", ["a1b2c3d4e5f6"])
    event = guardduty_finding_event(
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", 8.0, user_name="alice"
    )
    run = remediate("guardduty_high_finding", {"event": event})
    assert run.outcome == "SUCCESS", run.audit.action
    guardduty.assert_no_pending_responses()
    assert run.audit.target_resource == f"arn:aws:iam::{ACCOUNT}:user/alice"
    attached = _iam().list_attached_user_policies(UserName="alice")["AttachedPolicies"]
    assert attached == [{"PolicyName": POLICY, "PolicyArn": quarantine_policy}]
    assert _iam().list_user_policies(UserName="alice")["PolicyNames"] == []  # no inline policy written


def test_quarantines_an_assumed_role(remediate, guardduty, quarantine_policy):
    _iam().create_role(RoleName="web-instance", AssumeRolePolicyDocument=TRUST, Path="/app/")
    _findings_listed(guardduty, "web-instance", ["f00d"])
    event = guardduty_finding_event(
        "CredentialAccess:IAMUser/AnomalousBehavior", 7.0, user_name="web-instance", user_type="AssumedRole"
    )
    run = remediate("guardduty_high_finding", {"event": event})
    assert run.outcome == "SUCCESS", run.audit.action
    assert _role_policies("web-instance") == [POLICY]
    assert _iam().list_role_policies(RoleName="web-instance")["PolicyNames"] == []


def test_weakened_policy_fails_validation_and_is_detached(
    remediate, guardduty, quarantine_policy, monkeypatch
):
    _iam().create_role(RoleName="batch", AssumeRolePolicyDocument=TRUST)
    _findings_listed(guardduty, "batch", ["a1"])
    attach = guardduty_high_finding.GuarddutyHighFinding.execute

    def attach_then_weaken(self, ctx, state):  # someone narrows the policy to one region meanwhile
        result = attach(self, ctx, state)
        hole = dict(DENY_ALL_STATEMENT, Condition={"StringEquals": {"aws:RequestedRegion": "ap-south-2"}})
        _iam().create_policy_version(
            PolicyArn=quarantine_policy,
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [hole]}),
            SetAsDefault=True,
        )
        return result

    monkeypatch.setattr(guardduty_high_finding.GuarddutyHighFinding, "execute", attach_then_weaken)
    event = guardduty_finding_event(
        "Policy:IAMUser/RootCredentialUsage", 9.0, user_name="batch", user_type="Role"
    )
    run = remediate("guardduty_high_finding", {"event": event})
    assert run.outcome == "FAILURE" and "does not deny every action" in run.audit.action
    rollback = run.record("rollback").done
    assert (
        rollback["rolled_back"]
        and rollback["detail"] == f"detached {POLICY} from arn:aws:iam::{ACCOUNT}:role/batch"
    )
    assert _role_policies("batch") == []


def test_without_the_quarantine_policy_nothing_is_attached(remediate, guardduty):
    _iam().create_user(UserName="erin")
    run = remediate(
        "guardduty_high_finding",
        {"event": guardduty_finding_event("Recon:IAMUser/MaliciousIPCaller", 8.0, user_name="erin")},
    )
    assert run.outcome == "FAILURE", run.audit.action
    assert f"arn:aws:iam::{ACCOUNT}:policy/{POLICY}" in run.record("collect_diagnostics").error
    assert "member stack creates it" in run.record("collect_diagnostics").error
    assert _user_policies("erin") == []


def test_archived_finding_is_skipped(remediate, guardduty, quarantine_policy):
    _iam().create_user(UserName="carol")
    _findings_listed(guardduty, "carol", [])
    run = remediate(
        "guardduty_high_finding",
        {"event": guardduty_finding_event("Recon:IAMUser/MaliciousIPCaller", 7.5, user_name="carol")},
    )
    assert run.outcome == "SKIPPED" and "archived or resolved" in run.audit.action
    assert _user_policies("carol") == []


def test_aiops_own_role_is_never_quarantined(remediate, guardduty, quarantine_policy):
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
    assert _role_policies("AIOpsRemediationLambdaRole") == []


def test_target_is_in_the_findings_member_account():
    entry = get_entry("guardduty_high_finding")
    user = entry.resolve_target(guardduty_finding_event("x", 8, user_name="dave", account="210987654321"))
    role = entry.resolve_target(guardduty_finding_event("x", 8, user_name="ops", user_type="Role"))
    assert (user.arn, user.account) == ("arn:aws:iam::210987654321:user/dave", "210987654321")
    assert role.arn == f"arn:aws:iam::{ACCOUNT}:role/ops"
    assert entry.resolve_target(guardduty_finding_event("x", 8, user_name="root", user_type="Root")) is None
