"""alarm_sync acts in every account and Region: its role AIOpsMaintenance-alarm_sync is in each member's
home stack as in the hub's, with exactly the job's actions in that account and each deployed Region,
trusted by the hub's execution role only; the hub may assume it; the DAGs are told the accounts and
Regions. No other job has a role outside the hub."""

from __future__ import annotations

import json

from aiops_infra.maintenance_roles import ROLE_NAME_PREFIX, maintenance_role_name
from matcarv_aiops.maintenance import alarm_sync, job_permissions
from tests.infra.conftest import HUB_ACCOUNT, HUB_REGION, MEMBER_ACCOUNTS, MEMBER_STACKS, OTHER_REGION

ROLE = maintenance_role_name(alarm_sync.JOB)
EXECUTION_ROLE = f"arn:aws:iam::{HUB_ACCOUNT}:role/AIOpsMwaaExecutionRole"


def _maintenance_roles(synth, stack: str) -> dict[str, dict]:
    return {
        r["Properties"]["RoleName"]: r["Properties"]
        for r in synth.resources(stack, "AWS::IAM::Role").values()
        if str(r["Properties"].get("RoleName", "")).startswith(ROLE_NAME_PREFIX)
    }


def _statements(role: dict) -> list[dict]:
    [policy] = role["Policies"]
    return policy["PolicyDocument"]["Statement"]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _render(value) -> str:
    """A resource as text, a reference as <AWS.Region>: a stack deployed to the CLI's Region names it by
    Ref (no colons, so the ARN's fields still split)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "<" + value["Ref"].replace("::", ".") + ">"
    separator, parts = value["Fn::Join"]
    return separator.join(_render(part) for part in parts)


def test_each_member_holds_the_alarm_sync_role_alone_with_exactly_its_actions_in_each_region(synth_variant):
    assert [job for job, p in job_permissions().items() if p.every_account_and_region] == [alarm_sync.JOB]
    for stack, account in zip(MEMBER_STACKS, MEMBER_ACCOUNTS, strict=True):
        roles = _maintenance_roles(synth_variant, stack)
        assert set(roles) == {ROLE}, stack
        statements = _statements(roles[ROLE])
        actions = [a for s in statements for a in _as_list(s["Action"])]
        assert sorted(actions) == sorted(alarm_sync.PERMISSIONS.actions), stack
        for statement in statements:
            resources = [_render(r) for r in _as_list(statement["Resource"])]
            if resources == ["*"]:
                continue  # the listings without resource-level permissions (tests/iam/test_static.py)
            # The alarms in this account, in the hub's Region (the stack's, by reference) and the other.
            regions = {r.split(":")[3] for r in resources}
            assert regions == {"<AWS.Region>", OTHER_REGION}, resources
            assert {r.split(":")[4] for r in resources} == {account}, resources
            assert all(r.startswith("arn:aws:cloudwatch:") for r in resources), resources


def test_the_member_role_trusts_the_hubs_execution_role_only(synth_variant):
    for stack in MEMBER_STACKS:
        trust = _maintenance_roles(synth_variant, stack)[ROLE]["AssumeRolePolicyDocument"]
        assert trust["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": EXECUTION_ROLE}}
        ]


def test_the_hubs_own_alarm_sync_role_names_every_region_and_the_other_jobs_the_hubs_only(synth_variant):
    roles = _maintenance_roles(synth_variant, "AIOps")
    assert set(roles) == {maintenance_role_name(job) for job in job_permissions()}
    for name, role in roles.items():
        document = json.dumps(_statements(role))
        assert (f":{OTHER_REGION}:" in document) == (name == ROLE), name


def test_the_dags_are_told_the_accounts_and_regions(synth, synth_variant):
    [environment] = synth_variant.resources("AIOps", "AWS::MWAA::Environment").values()
    options = environment["Properties"]["AirflowConfigurationOptions"]
    assert options["aiops.regions"] == f"{HUB_REGION},{OTHER_REGION}"
    assert options["aiops.member_accounts"] == ",".join(MEMBER_ACCOUNTS)
    assert options["aiops.hub_account"] == {"Ref": "AWS::AccountId"}
    # One Region, no members: neither option (MWAA refuses empty values); the defaults are the hub's own.
    [environment] = synth.resources("AIOps", "AWS::MWAA::Environment").values()
    options = environment["Properties"]["AirflowConfigurationOptions"]
    assert "aiops.regions" not in options and "aiops.member_accounts" not in options
