"""Security Hub findings as a second source: each control an entry fixes routes to that entry with the
finding's resource as its target; everything else (other controls, custom actions, findings that are
archived, passed or already handled, CloudTrail calls that only look alike) is ignored with a reason,
never invalid."""

from __future__ import annotations

import pytest

from matcarv_aiops.catalogue import SecurityHubFindingCondition, catalogue
from matcarv_aiops.ingress.routing import route
from tests.events import (
    ACCOUNT,
    cloudtrail_event,
    guardduty_asff_finding,
    securityhub_event,
    securityhub_finding,
)

SG = f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-0123456789abcdef0"
USER = f"arn:aws:iam::{ACCOUNT}:user/svc-reports"
ACCOUNT_RESOURCE = f"AWS::::Account:{ACCOUNT}"


def _routed(event) -> list[tuple[str, str]]:
    return [(m.remediation, m.target) for m in route(event).matches]


ROUTED = [
    pytest.param(
        securityhub_finding("S3.8", "AwsS3Bucket", "arn:aws:s3:::team-share"),
        ("s3_public_access", "arn:aws:s3:::team-share"),
        id="S3.8-bucket-level-block-public-access",
    ),
    pytest.param(
        securityhub_finding("S3.2", "AwsS3Bucket", "arn:aws:s3:::team-share"),
        ("s3_public_access", "arn:aws:s3:::team-share"),
        id="S3.2-public-read",
    ),
    pytest.param(
        securityhub_finding("S3.8", "AwsS3Bucket", "arn:aws:s3:::team-share", consolidated=False),
        ("s3_public_access", "arn:aws:s3:::team-share"),
        id="S3.8-per-standard-finding",
    ),
    pytest.param(
        securityhub_finding("EC2.13", "AwsEc2SecurityGroup", SG, workflow="NOTIFIED"),
        ("sg_open_ssh", SG),
        id="EC2.13-ssh-world-open-notified",
    ),
    pytest.param(
        securityhub_finding("CloudTrail.1", "AwsAccount", ACCOUNT_RESOURCE),
        ("cloudtrail_disabled", f"arn:aws:iam::{ACCOUNT}:root"),
        id="CloudTrail.1-account",
    ),
    pytest.param(
        securityhub_finding(
            "IAM.3",
            "AwsIamUser",
            USER,
            details={"AwsIamUser": {"UserId": "AIDAEXAMPLEUSER00001", "UserName": "svc-reports"}},
        ),
        # Config's access-keys-rotated names the user by this unique id: one target for both sources.
        ("iam_access_key_old", f"arn:aws:iam::{ACCOUNT}:user/AIDAEXAMPLEUSER00001"),
        id="IAM.3-user-unique-id",
    ),
    pytest.param(
        securityhub_finding("IAM.3", "AwsIamUser", USER),
        ("iam_access_key_old", USER),
        id="IAM.3-user-arn",
    ),
    pytest.param(
        guardduty_asff_finding("mallory"),
        ("guardduty_high_finding", f"arn:aws:iam::{ACCOUNT}:user/mallory"),
        id="GuardDuty-in-SecurityHub-user",
    ),
    pytest.param(
        guardduty_asff_finding("app-role", principal_type="AssumedRole", label="CRITICAL"),
        ("guardduty_high_finding", f"arn:aws:iam::{ACCOUNT}:role/app-role"),
        id="GuardDuty-in-SecurityHub-role",
    ),
]


@pytest.mark.parametrize("finding, expected", ROUTED)
def test_a_failed_control_routes_to_the_entry_that_fixes_it(finding, expected):
    assert _routed(securityhub_event(finding)) == [expected]


def test_a_member_accounts_finding_targets_that_account():
    finding = securityhub_finding(
        "EC2.13", "AwsEc2SecurityGroup", "sg-0123456789abcdef0", account="210987654321"
    )
    [match] = route(securityhub_event(finding)).matches
    assert match.target == "arn:aws:ec2:us-east-1:210987654321:security-group/sg-0123456789abcdef0"


def test_a_finding_naming_a_resource_of_another_account_is_refused():
    finding = securityhub_finding(
        "EC2.13", "AwsEc2SecurityGroup", SG.replace(ACCOUNT, "210987654321"), account=ACCOUNT
    )
    routed = route(securityhub_event(finding))
    assert routed.matches == ()
    assert "sg_open_ssh: matched but refused: target" in routed.ignored


IGNORED = [
    pytest.param(
        securityhub_event(securityhub_finding("S3.1", "AwsAccount", ACCOUNT_RESOURCE)),
        "s3_public_access: detail.findings.Resources.Type does not match",
        id="S3.1-account-level-is-not-the-bucket-entry",
    ),
    pytest.param(
        securityhub_event(securityhub_finding("EC2.19", "AwsEc2SecurityGroup", SG)),
        "sg_open_ssh: detail.findings.Compliance.SecurityControlId does not match",
        id="EC2.19-a-control-no-entry-fixes",
    ),
    pytest.param(
        securityhub_event(securityhub_finding("IAM.4", "AwsAccount", ACCOUNT_RESOURCE)),
        "cloudtrail_disabled: detail.findings.Compliance.SecurityControlId does not match",
        id="IAM.4-root-access-key-on-the-account",
    ),
    pytest.param(
        securityhub_event(
            securityhub_finding("S3.8", "AwsS3Bucket", "arn:aws:s3:::team-share"),
            detail_type="Security Hub Findings - Custom Action",
        ),
        "s3_public_access: detail-type does not match",
        id="custom-action",
    ),
    pytest.param(
        securityhub_event(
            securityhub_finding("S3.8", "AwsS3Bucket", "arn:aws:s3:::team-share", record_state="ARCHIVED")
        ),
        "RecordState ARCHIVED (only ACTIVE, FAILED and NEW/NOTIFIED findings are acted on)",
        id="archived",
    ),
    pytest.param(
        securityhub_event(securityhub_finding("EC2.13", "AwsEc2SecurityGroup", SG, compliance="PASSED")),
        "Compliance.Status PASSED (only ACTIVE, FAILED and NEW/NOTIFIED",
        id="passed",
    ),
    pytest.param(
        securityhub_event(
            securityhub_finding("CloudTrail.1", "AwsAccount", ACCOUNT_RESOURCE, workflow="RESOLVED")
        ),
        "Workflow.Status RESOLVED",
        id="resolved",
    ),
    pytest.param(
        securityhub_event(securityhub_finding("IAM.3", "AwsIamUser", USER, workflow="SUPPRESSED")),
        "Workflow.Status SUPPRESSED",
        id="suppressed",
    ),
    pytest.param(
        securityhub_event(guardduty_asff_finding("mallory", label="MEDIUM")),
        "guardduty_high_finding: detail.findings.Severity.Label does not match",
        id="GuardDuty-medium",
    ),
    pytest.param(
        cloudtrail_event("securityhub", "BatchUpdateFindings", {"findingIdentifiers": []}),
        "s3_public_access: detail.eventSource does not match",
        id="cloudtrail-call-to-securityhub",
    ),
    pytest.param(
        securityhub_event(
            guardduty_asff_finding("mallory")
            | {
                "ProductName": "Inspector",
                "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/inspector",
            }
        ),
        "detail.findings.ProductName) does not match",
        id="another-products-finding-on-an-access-key",
    ),
]


@pytest.mark.parametrize("event, reason", IGNORED)
def test_what_no_entry_acts_on_is_ignored_with_a_reason(event, reason):
    routed = route(event)
    assert routed.matches == ()
    assert routed.ignored and reason in routed.ignored and "\n" not in routed.ignored


def test_our_own_imported_findings_do_not_route_back():
    """sg_open_ssh and config_rule_noncompliant import findings (GeneratorId matcarv-aiops/...): those
    come back as Imported events and must not start anything."""
    from matcarv_aiops.remediations.security_findings import asff_finding

    finding = asff_finding(
        finding_id="aiops/sg_open_ssh/sg-1",
        account=ACCOUNT,
        region="us-east-1",
        generator="sg_open_ssh",
        finding_type="Software and Configuration Checks/AWS Security Best Practices",
        title="SSH open to the world, revoked",
        description="revoked",
        severity="HIGH",
        resources=[{"Type": "AwsEc2SecurityGroup", "Id": SG}],
        compliance="FAILED",
    )
    routed = route(securityhub_event(finding))
    assert routed.matches == () and "sg_open_ssh: detail" in routed.ignored


def test_every_securityhub_condition_is_in_its_entrys_generated_pattern():
    found = 0
    for entry in catalogue().values():
        for condition in entry.trigger_conditions:
            if isinstance(condition, SecurityHubFindingCondition):
                found += 1
                assert condition.event_pattern()["detail"] in entry.trigger["detail"]["$or"], entry.id
                assert "aws.securityhub" in entry.trigger["source"], entry.id
    assert found == 5


def test_the_demos_security_hub_scenario_routes_to_the_bucket_fix(aws):
    from local.scenarios import public_bucket_reported_by_security_hub

    _, bucket, event = public_bucket_reported_by_security_hub("demo-findings-bucket")
    assert _routed(event) == [("s3_public_access", f"arn:aws:s3:::{bucket}")]
