"""A problem in the second Region of a member account, on the local stack: its regional stack's rule
forwards the event to the hub's bus in the hub's Region, keeping its account and Region; the handler starts
the remediation, which acts there (and nowhere else) once approved, and the audit record names it."""

from __future__ import annotations

import pytest

from aiops_local.cloudformation import MEMBER_ACCOUNT, OTHER_REGION, REGION, regional_stack_name
from local import scenarios
from tests.e2e.test_local_stack import audit_for, decide, pending_request, send

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_an_open_group_in_a_member_accounts_second_region_is_closed_there(stack_env):
    # The member account's stack in the second Region was deployed with the others.
    assert regional_stack_name(MEMBER_ACCOUNT, OTHER_REGION) in stack_env.deployment.stacks
    ec2, group, event = scenarios.world_open_ssh_elsewhere(
        "e2e-eu-bastion", account=MEMBER_ACCOUNT, region=OTHER_REGION
    )
    assert (event["account"], event["region"]) == (MEMBER_ACCOUNT, OTHER_REGION)
    arn = f"arn:aws:ec2:{OTHER_REGION}:{MEMBER_ACCOUNT}:security-group/{group}"

    dag_id, run_id = send(stack_env, event, "sg_open_ssh")
    decide(stack_env, pending_request(stack_env, arn), "approve")
    assert stack_env.wait_for_run(dag_id, run_id, timeout=300)["state"] == "success"

    (record,) = audit_for(stack_env, arn)
    assert record["targetResource"] == arn and record["outcome"] == "SUCCESS"
    assert scenarios.ssh_rules(ec2, group) == ["198.51.100.0/24"]
    # The hub's Region of the same account has no such group: nothing was, or could be, done there.
    in_hub_region = scenarios.admin_client_in(MEMBER_ACCOUNT, "ec2", region=REGION)
    groups = in_hub_region.describe_security_groups()["SecurityGroups"]
    assert group not in {g["GroupId"] for g in groups}
