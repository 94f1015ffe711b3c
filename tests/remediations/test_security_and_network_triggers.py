"""The EventBridge patterns of sg_open_ssh, alb_5xx_spike, route53_health_check_failed, cloudtrail_disabled,
iam_access_key_old, config_rule_noncompliant and guardduty_high_finding, checked with moto's EventBridge
pattern matcher (the one its rules route events with; moto's TestEventPattern API is not implemented):
the documented events match, near misses do not, and the target resolves from the event alone.

moto's matcher does not descend into arrays of objects, which EventBridge does (an alarm's
detail.configuration.metrics[]): for the alarm-triggered entries only the target is checked here (None).
"""

import pytest

from matcarv_aiops.catalogue import get_entry
from tests.events import (
    ACCOUNT,
    alarm_event,
    cloudtrail_event,
    config_compliance_event,
    guardduty_finding_event,
)
from tests.remediations.triggers import check_pattern_and_target
from tests.remediations.triggers import matches as matches_pattern

SG = "sg-0123456789abcdef0"
LB = "app/shop/50dc6c495c0c9188"

CASES = [
    # (entry, event, matches, target ARN or None)
    (
        "sg_open_ssh",
        cloudtrail_event("ec2", "AuthorizeSecurityGroupIngress", {"groupId": SG}),
        True,
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{SG}",
    ),
    (
        "sg_open_ssh",
        config_compliance_event("restricted-ssh", "AWS::EC2::SecurityGroup", SG),
        True,
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{SG}",
    ),
    (
        "sg_open_ssh",
        config_compliance_event("restricted-ssh-conformance-pack-x1", "AWS::EC2::SecurityGroup", SG),
        True,
        None,
    ),
    (
        "sg_open_ssh",
        config_compliance_event("restricted-ssh", "AWS::EC2::SecurityGroup", SG, compliance="COMPLIANT"),
        False,
        None,
    ),
    (
        "sg_open_ssh",
        config_compliance_event("s3-bucket-logging-enabled", "AWS::S3::Bucket", "b"),
        False,
        None,
    ),
    ("sg_open_ssh", cloudtrail_event("ec2", "RevokeSecurityGroupIngress", {"groupId": SG}), False, None),
    (
        "alb_5xx_spike",
        alarm_event("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", {"LoadBalancer": LB}),
        None,
        f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/{LB}",
    ),
    (
        "alb_5xx_spike",
        alarm_event("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", {"LoadBalancer": LB}, state="OK"),
        False,
        None,
    ),
    (
        "route53_health_check_failed",
        alarm_event("AWS/Route53", "HealthCheckStatus", {"HealthCheckId": "abcd-1234"}),
        None,
        "arn:aws:route53:::healthcheck/abcd-1234",
    ),
    (
        "cloudtrail_disabled",
        cloudtrail_event("cloudtrail", "StopLogging", {"name": "main"}),
        True,
        f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main",
    ),
    (
        "cloudtrail_disabled",
        cloudtrail_event(
            "cloudtrail", "DeleteTrail", {"name": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main"}
        ),
        True,
        f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main",
    ),
    (
        "cloudtrail_disabled",
        config_compliance_event("cloudtrail-enabled", "AWS::::Account", ACCOUNT),
        True,
        f"arn:aws:iam::{ACCOUNT}:root",
    ),
    ("cloudtrail_disabled", cloudtrail_event("cloudtrail", "StartLogging", {"name": "main"}), False, None),
    (
        "iam_access_key_old",
        config_compliance_event("access-keys-rotated", "AWS::IAM::User", "AIDAEXAMPLE1"),
        True,
        f"arn:aws:iam::{ACCOUNT}:user/AIDAEXAMPLE1",
    ),
    (
        "iam_access_key_old",
        config_compliance_event("iam-user-mfa-enabled", "AWS::IAM::User", "AIDAEXAMPLE1"),
        False,
        None,
    ),
    (
        "config_rule_noncompliant",
        config_compliance_event("access-keys-rotated", "AWS::IAM::User", "AIDAEXAMPLE1"),
        True,
        f"arn:aws:config:us-east-1:{ACCOUNT}:config-rule/config-rule-abc123",
    ),
    (
        "config_rule_noncompliant",
        config_compliance_event("any-rule", "AWS::S3::Bucket", "b", compliance="COMPLIANT"),
        False,
        None,
    ),
    (
        "guardduty_high_finding",
        guardduty_finding_event("Policy:IAMUser/RootCredentialUsage", 7.0, user_name="u"),
        True,
        f"arn:aws:iam::{ACCOUNT}:user/u",
    ),
    (
        "guardduty_high_finding",
        guardduty_finding_event("Recon:IAMUser/TorIPCaller", 5.0, user_name="u"),
        False,
        None,
    ),
    (
        "guardduty_high_finding",
        guardduty_finding_event(
            "Policy:IAMUser/RootCredentialUsage", 9.0, user_name="root", user_type="Root"
        ),
        False,
        None,
    ),
]


@pytest.mark.parametrize(
    "entry_id, event, matches, target", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_pattern_and_target(entry_id, event, matches, target):
    check_pattern_and_target(entry_id, event, matches, target)


def test_access_keys_rotated_result_matches_both_entries():
    event = config_compliance_event("access-keys-rotated", "AWS::IAM::User", "AIDAEXAMPLE1")
    matching = {
        entry_id
        for entry_id in (
            "iam_access_key_old",
            "config_rule_noncompliant",
            "sg_open_ssh",
            "cloudtrail_disabled",
            "guardduty_high_finding",
        )
        if matches_pattern(entry_id, event)
    }
    assert matching == {"iam_access_key_old", "config_rule_noncompliant"}
    # Different targets: neither run waits on the other's per-resource lock.
    assert (
        get_entry("iam_access_key_old").resolve_target(event).arn
        != get_entry("config_rule_noncompliant").resolve_target(event).arn
    )
