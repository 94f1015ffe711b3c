"""One IAM role per scheduled maintenance job, holding exactly the actions the job's module declares
(``PERMISSIONS`` in ``matcarv_aiops.maintenance.<module>``), each scoped like a remediation role's
through ``iam_actions.scope_for``. The jobs assume it in the hub account for their AWS calls:
``AIOPS_MAINTENANCE_ROLE_ARN_TEMPLATE`` = ``MAINTENANCE_ROLE_ARN_TEMPLATE``. The platform's own tables,
bucket and topic stay with the execution role.

A job that works in every account and Region (``every_account_and_region``, alarm_sync) has its role in
each member account's stack too (``cross_account_jobs``), and its roles name every Region AIOps covers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from aiops_infra.iam_actions import Scope, scope_in_regions
from aiops_infra.remediation_roles import acknowledge_scoped_wildcards
from matcarv_aiops.maintenance.common import JobPermissions

ROLE_NAME_PREFIX = "AIOpsMaintenance-"
MAINTENANCE_ROLE_ARN_TEMPLATE = "arn:aws:iam::{account}:role/" + ROLE_NAME_PREFIX + "{job}"


def maintenance_role_name(job: str) -> str:
    return ROLE_NAME_PREFIX + job


def cross_account_jobs(jobs: Mapping[str, JobPermissions]) -> dict[str, JobPermissions]:
    """The jobs that act in every account and Region: only these have roles in the member accounts."""
    return {job: permissions for job, permissions in jobs.items() if permissions.every_account_and_region}


def job_statements(
    job: str,
    permissions: JobPermissions,
    *,
    region: str,
    account: str,
    other_regions: Iterable[str] = (),
) -> list[iam.PolicyStatement]:
    """The job's actions, grouped by how they are scoped, in the declaration's order, in ``region`` and
    each of ``other_regions``; its metrics only in its declared namespaces."""
    by_scope: dict[Scope, list[str]] = defaultdict(list)
    for action in permissions.actions:
        scope = scope_in_regions(
            owner=f"maintenance job {job!r}",
            action=action,
            regions=(region, *other_regions),
            account=account,
            sibling_actions=permissions.actions,
        )
        if action == "cloudwatch:PutMetricData":
            scope = Scope(
                scope.resources,
                (("StringEquals", "cloudwatch:namespace", permissions.metric_namespaces),),
            )
        by_scope[scope].append(action)
    return [
        iam.PolicyStatement(
            actions=actions, resources=list(scope.resources), conditions=scope.condition_block()
        )
        for scope, actions in by_scope.items()
    ]


class MaintenanceRoles(Construct):
    """``AIOpsMaintenance-<job>`` for each of ``jobs``, trusted by the execution role only; a job that acts
    in every Region also in each of ``other_regions`` (IAM is global: the home stack's role acts there)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        jobs: Mapping[str, JobPermissions],
        trusted_role_arn: str,
        other_regions: Iterable[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        other_regions = tuple(other_regions)
        self.roles: dict[str, iam.Role] = {}
        for job, permissions in sorted(jobs.items()):
            statements = job_statements(
                job,
                permissions,
                region=stack.region,
                account=stack.account,
                other_regions=other_regions if permissions.every_account_and_region else (),
            )
            role = iam.Role(
                self,
                job,
                role_name=maintenance_role_name(job),
                assumed_by=iam.ArnPrincipal(trusted_role_arn),
                description=f"MatCarv AIOps maintenance job {job}: the AWS actions it declares",
                max_session_duration=cdk.Duration.hours(1),
                inline_policies={"Maintenance": iam.PolicyDocument(statements=statements)},
            )
            acknowledge_scoped_wildcards(
                role,
                statements,
                f"the job {job} looks at every resource of this type in the account (that is its task); "
                "the role may act on that one resource type in this account and its Regions, nothing else",
            )
            self.roles[job] = role

    @property
    def role_arns(self) -> list[str]:
        return [role.role_arn for role in self.roles.values()]
