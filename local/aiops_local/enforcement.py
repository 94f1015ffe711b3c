"""IAM enforced in the local stack's moto_server, with the principals AWS would use.

After the stacks are deployed (auth off: CloudFormation creates what ``cdk deploy`` would), ``prepare``
creates the one human principal, adapts the deployed roles to what moto can evaluate, and
``enforce`` turns authorisation on for every later request (``POST /moto-api/reset-auth`` with 0).

Who acts as whom, as in AWS:
- the local admin IAM user ``aiops-local-admin`` (AdministratorAccess, keys in the stack state): what a
  human or AWS itself does: the scenarios that create problems, the tests' reads and seeds; and the
  services moto cannot stand in for: MWAA assuming its execution role, Lambda assuming the trigger role;
  in a member account, the same admin through that account's ``OrganizationAccountAccessRole`` (as AWS
  Organizations creates it);
- Airflow's tasks: the hub's MWAA execution role, assumed by an AWS config profile (``role_arn`` with
  ``source_profile``: botocore's own refreshable assume-role credentials), session ``airflow-worker``;
  from it, the roles the hub's settings name (remediation roles, maintenance roles, the audit writer);
- the trigger handler (run in-process as the Lambda would run it): the trigger Lambda's role.

Local fallbacks (moto's gaps, see ``aiops_local.moto_iam``), none of them in the synthesized templates:
- a role's inline policy that moto's CloudFormation stored as a Python literal is put again as JSON;
- each deployed role also gets, per policy of its own, ``AIOpsLocalMotoView-<policy>``: that policy's
  ``moto_view`` (moto's action names, ``"*"`` resources where moto checks no ARN), no action added;
- a trust naming the execution role also names its session's ARN (moto compares the caller verbatim);
- a role only a service assumes here gets its stand-in as principal instead of the service (moto fails
  a request on a ``Service`` principal): the admin for MWAA's execution role and the trigger Lambda's
  role, the worker's session for the runbooks' role (the local SSM emulator, standing in for SSM, runs
  in the task with the worker's credentials);
- the execution role may ``sts:AssumeRole`` the runbooks' role (``AIOpsLocalSsmStandIn``): on AWS, SSM
  assumes it after checking the caller's ``iam:PassRole``, which the synthesized policy grants.
"""

from __future__ import annotations

import ast
import configparser
import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiops_local.cloudformation import HUB_STACK, ClientFactory, Deployment
from aiops_local.moto_iam import as_list, moto_view

ADMIN_USER = "aiops-local-admin"
MEMBER_ADMIN_ROLE = "OrganizationAccountAccessRole"  # the local admin's way into a member account
EXECUTION_ROLE = "AIOpsMwaaExecutionRole"
SSM_AUTOMATION_ROLE = "AIOpsSSMAutomationRole"
WORKER_SESSION = "airflow-worker"
TRIGGER_SESSION = "aiops-trigger-lambda"
TRIGGER_HANDLER = "matcarv_aiops.ingress.handler.handler"
MWAA_PROFILE = "aiops-mwaa-execution-role"
MOTO_VIEW_PREFIX = "AIOpsLocalMotoView-"
SSM_STAND_IN_POLICY = "AIOpsLocalSsmStandIn"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass
class Principals:
    """The principals of the enforced local AWS."""

    admin_keys: dict[str, str]  # aws_access_key_id, aws_secret_access_key: the admin IAM user's
    admin_arn: str
    execution_role_arn: str
    worker_session_arn: str
    trigger_role_arn: str
    adapted_roles: dict[str, list[str]] = field(default_factory=dict)  # account -> roles given a local view

    def summary(self) -> str:
        return "; ".join(f"{len(roles)} roles adapted in {a}" for a, roles in self.adapted_roles.items())


def prepare(deployment: Deployment, accounts: dict[str, ClientFactory]) -> Principals:
    """Create the admin user in the hub account and adapt every role of ``accounts`` (account -> clients;
    the hub's first) to moto. Call with authorisation still off."""
    hub_account, hub = next(iter(accounts.items()))
    iam = hub("iam")
    admin_arn = iam.create_user(UserName=ADMIN_USER)["User"]["Arn"]
    iam.put_user_policy(
        UserName=ADMIN_USER, PolicyName="AdministratorAccess", PolicyDocument=json.dumps(ADMIN_POLICY)
    )
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    execution_role_arn = f"arn:aws:iam::{hub_account}:role/{EXECUTION_ROLE}"
    worker_session_arn = f"arn:aws:sts::{hub_account}:assumed-role/{EXECUTION_ROLE}/{WORKER_SESSION}"
    trigger_role = _trigger_role_name(deployment)
    stand_ins = {EXECUTION_ROLE: admin_arn, trigger_role: admin_arn, SSM_AUTOMATION_ROLE: worker_session_arn}
    principals = Principals(
        admin_keys={"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]},
        admin_arn=admin_arn,
        execution_role_arn=execution_role_arn,
        worker_session_arn=worker_session_arn,
        trigger_role_arn=iam.get_role(RoleName=trigger_role)["Role"]["Arn"],
    )
    for account, clients in accounts.items():
        principals.adapted_roles[account] = _adapt_roles(
            clients("iam"), execution_role_arn, worker_session_arn, stand_ins
        )
    for clients in list(accounts.values())[1:]:
        _member_admin_role(clients("iam"), admin_arn)
    iam.put_role_policy(
        RoleName=EXECUTION_ROLE,
        PolicyName=SSM_STAND_IN_POLICY,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Resource": [
                            f"arn:aws:iam::{account}:role/{SSM_AUTOMATION_ROLE}" for account in accounts
                        ],
                    }
                ],
            }
        ),
    )
    return principals


def _member_admin_role(iam: Any, admin_arn: str) -> None:
    """What AWS Organizations creates in a member account, ``OrganizationAccountAccessRole``: administrator
    access for the management account's humans, here the local admin (moto compares the caller verbatim).
    The scenarios that raise a problem in a member account act through it."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": admin_arn}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=MEMBER_ADMIN_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=MEMBER_ADMIN_ROLE, PolicyName="AdministratorAccess", PolicyDocument=json.dumps(ADMIN_POLICY)
    )


def enforce(moto_url: str) -> None:
    """Authorise every request from now on (moto counts requests; 0 left without authorisation)."""
    # The count is the raw body: a form content type (urllib's default) would leave moto nothing to read.
    request = urllib.request.Request(
        f"{moto_url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        if answer.status != 200:
            raise RuntimeError(f"moto_server refused to enforce IAM: {answer.status} {answer.read()!r}")


def write_profiles(directory: Path, principals: Principals, *, region: str) -> dict[str, str]:
    """The AWS config and credentials files of Airflow's processes; returns the environment that selects
    the execution role's profile. botocore assumes the role itself and refreshes the credentials before
    they expire, as MWAA's container credentials are refreshed."""
    directory.mkdir(parents=True, exist_ok=True)
    credentials, config = configparser.ConfigParser(), configparser.ConfigParser()
    credentials[ADMIN_USER] = dict(principals.admin_keys)
    config[f"profile {MWAA_PROFILE}"] = {
        "role_arn": principals.execution_role_arn,
        "role_session_name": WORKER_SESSION,
        "source_profile": ADMIN_USER,
        "region": region,
    }
    paths = {
        "AWS_SHARED_CREDENTIALS_FILE": directory / "credentials",
        "AWS_CONFIG_FILE": directory / "config",
    }
    for parser, path in (
        (credentials, paths["AWS_SHARED_CREDENTIALS_FILE"]),
        (config, paths["AWS_CONFIG_FILE"]),
    ):
        with open(path, "w") as file:
            parser.write(file)
        path.chmod(0o600)
    return {**{k: str(v) for k, v in paths.items()}, "AWS_PROFILE": MWAA_PROFILE}


def assumed_keys(sts: Any, role_arn: str, session_name: str) -> dict[str, str]:
    """Environment credentials of a session of ``role_arn`` assumed with ``sts``."""
    found = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": found["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": found["SecretAccessKey"],
        "AWS_SESSION_TOKEN": found["SessionToken"],
    }


def _trigger_role_name(deployment: Deployment) -> str:
    """The physical name of the role of the Lambda function that runs the trigger handler."""
    hub = deployment.stacks[HUB_STACK]
    functions = [
        r["Properties"]
        for r in hub.template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == TRIGGER_HANDLER
    ]
    if len(functions) != 1:
        raise RuntimeError(f"stack {hub.name}: expected one Lambda function running {TRIGGER_HANDLER}")
    logical_id = functions[0]["Role"]["Fn::GetAtt"][0]
    return hub.physical_ids[logical_id].rsplit("/", 1)[-1]


def _adapt_roles(
    iam: Any, execution_role_arn: str, worker_session_arn: str, stand_ins: dict[str, str]
) -> list[str]:
    adapted = []
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            for policy_name, document in _policies_of(iam, name):
                view = moto_view(_allows(document))
                if view["Statement"]:
                    iam.put_role_policy(
                        RoleName=name,
                        PolicyName=f"{MOTO_VIEW_PREFIX}{policy_name}"[:128],
                        PolicyDocument=json.dumps(view),
                    )
            trust = _trust_for_moto(
                role["AssumeRolePolicyDocument"], execution_role_arn, worker_session_arn, stand_ins.get(name)
            )
            if trust != role["AssumeRolePolicyDocument"]:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            adapted.append(name)
    return adapted


def _policies_of(iam: Any, role: str) -> list[tuple[str, dict]]:
    """(name, document) of every inline and attached managed policy of ``role``. An inline policy moto's
    CloudFormation stored as a Python literal (it does so for a role's ``Policies``; moto's own
    authorisation then fails on it) is put again, as JSON, under its own name."""
    found = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            document = ast.literal_eval(document)
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
        found.append((name, document))
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(
            PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
        )
        document = version["PolicyVersion"]["Document"]
        found.append(
            (attached["PolicyName"], json.loads(document) if isinstance(document, str) else document)
        )
    return found


def _allows(document: dict) -> dict:
    """The Allow statements of ``document`` that name their resources (a role's own Denies stay in force in
    its own policy; so does a ``NotResource`` statement, which moto treats as if it named no resource)."""
    statements = [
        s
        for s in as_list(document["Statement"])
        if s["Effect"] == "Allow" and "Action" in s and "Resource" in s
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def _trust_for_moto(
    document: dict, execution_role_arn: str, worker_session_arn: str, stand_in: str | None
) -> dict:
    statements = []
    for statement in as_list(document["Statement"]):
        principal = dict(statement.get("Principal") or {})
        if "Service" in principal and stand_in:
            principal = {"AWS": stand_in}
        trusted = as_list(principal.get("AWS", []))
        if execution_role_arn in trusted and worker_session_arn not in trusted:
            principal["AWS"] = [*trusted, worker_session_arn]
        statements.append({**statement, "Principal": principal} if principal else statement)
    return {**document, "Statement": statements}
