"""validate with result None: an interrupted attempt made (or may have made) the change and its result
was not recorded. Every remediation either validates from live state alone, or fails naming what it
cannot check (so that rollback runs); none crashes on None."""

from __future__ import annotations

import boto3
import pytest

from local.scenarios import world_open_ssh
from matcarv_aiops.catalogue import catalogue, get_entry
from matcarv_aiops.models import Target
from matcarv_aiops.remediations import get_remediation
from matcarv_aiops.remediations.base import RemediationContext

# What each one cannot check without its result.
NEEDS_THE_RESULT = {
    "alb_5xx_spike": "the CloudFront invalidation it created",
    "cloudtrail_disabled": "the trail it started (or recreated)",
    "config_rule_noncompliant": "the Security Hub findings it imported",
    "dynamodb_read_throttles": "the read capacity or auto scaling it set",
    "ebs_volume_utilisation_high": "the snapshot it took",
    "ec2_cpu_high": "the desired capacity it planned",
    "iam_access_key_old": "which access keys it disabled",
    "lambda_throttles": "the reserved concurrency it planned",
    "sns_delivery_failures": "the subscription it disabled",
    "sqs_dlq_depth_high": "how many messages it moved",
    "sqs_queue_depth_high": "the concurrency it planned",
}
# These read everything they check from the live resource and the recorded state.
VALIDATES_FROM_LIVE_STATE = {
    "ec2_status_check_failed",
    "ecs_tasks_below_desired",
    "guardduty_high_finding",
    "route53_health_check_failed",
    "s3_public_access",
    "sg_open_ssh",
}


class NoAws:
    """A context that fails the test if validate reaches for AWS, the target or a threshold."""

    def __getattr__(self, name):
        raise AssertionError(f"validate used ctx.{name} although it cannot check anything without a result")


def test_every_remediation_says_how_it_validates_an_unrecorded_result():
    assert set(catalogue()) == set(NEEDS_THE_RESULT) | VALIDATES_FROM_LIVE_STATE
    assert not set(NEEDS_THE_RESULT) & VALIDATES_FROM_LIVE_STATE


@pytest.mark.parametrize("remediation_id", sorted(NEEDS_THE_RESULT))
def test_without_its_result_validation_fails_naming_what_it_cannot_check(remediation_id):
    outcome = get_remediation(remediation_id).validate(NoAws(), {}, None)  # type: ignore[arg-type]
    assert not outcome.ok
    assert outcome.detail == (
        "the interrupted attempt's result was not recorded, so "
        f"{NEEDS_THE_RESULT[remediation_id]} cannot be checked"
    )


def test_open_ssh_validates_from_the_live_group_without_a_result(aws):
    ec2, group = world_open_ssh()
    handler = get_remediation("sg_open_ssh")
    ctx = RemediationContext(
        entry=get_entry("sg_open_ssh"),
        target=Target.from_arn(f"arn:aws:ec2:us-east-1:123456789012:security-group/{group}"),
        open_session=lambda: boto3.session.Session(region_name="us-east-1"),
        settings=aws,
        execution_id="e-unrecorded",
    )
    state = handler.collect_diagnostics(ctx)
    assert state is not None
    assert not handler.validate(ctx, state, None).ok  # still open: fails, result or not
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=state["open_to_world"])
    outcome = handler.validate(ctx, state, None)
    assert outcome.ok and "the Security Hub finding of the interrupted attempt is unknown" in outcome.detail
