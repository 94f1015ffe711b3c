"""Lambda functions in moto, and GetAccountSettings (which moto lacks) answered by botocore's Stubber.

The stubbed answer is computed from moto's own state (account quota minus every reservation), so the
headroom a handler reads agrees with what moto enforces when MOTO_LAMBDA_CONCURRENCY_QUOTA is set.
"""

from __future__ import annotations

import io
import zipfile

import boto3
from botocore.stub import Stubber

from matcarv_aiops.remediations.base import RemediationContext

REGION = "us-east-1"


def create_function(name: str, *, reserved: int | None = None, tags: dict | None = None) -> str:
    iam = boto3.client("iam", region_name=REGION)
    try:
        role = iam.get_role(RoleName="fn-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    client = boto3.client("lambda", region_name=REGION)
    arn = client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
        Tags=tags or {},
    )["FunctionArn"]
    if reserved is not None:
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
    return arn


def reserved(name: str) -> int | None:
    return (
        boto3.client("lambda", region_name=REGION)
        .get_function_concurrency(FunctionName=name)
        .get("ReservedConcurrentExecutions")
    )


class _AccountSettingsFromStubber:
    """The moto Lambda client, except GetAccountSettings, which goes through a Stubber."""

    def __init__(self, moto_client, quota: int):
        self._moto, self._quota = moto_client, quota

    def __getattr__(self, name):
        return getattr(self._moto, name)

    def get_account_settings(self, **kwargs):
        tally = boto3.client("lambda", region_name=REGION)  # not the handler's client: its calls are audited
        functions = tally.list_functions()["Functions"]
        taken = sum(
            tally.get_function_concurrency(FunctionName=f["FunctionName"]).get(
                "ReservedConcurrentExecutions", 0
            )
            for f in functions
        )
        stubbed = boto3.client("lambda", region_name=REGION)
        with Stubber(stubbed) as stubber:
            stubber.add_response(
                "get_account_settings",
                {  # documented GetAccountSettings shape
                    "AccountLimit": {
                        "TotalCodeSize": 80530636800,
                        "CodeSizeUnzipped": 262144000,
                        "CodeSizeZipped": 52428800,
                        "ConcurrentExecutions": self._quota,
                        "UnreservedConcurrentExecutions": self._quota - taken,
                    },
                    "AccountUsage": {"TotalCodeSize": 1024 * len(functions), "FunctionCount": len(functions)},
                },
                kwargs,
            )
            return stubbed.get_account_settings(**kwargs)


def stub_account_settings(monkeypatch, quota: int = 1000) -> None:
    """Handlers' Lambda clients answer GetAccountSettings for an account with this concurrency quota."""
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", str(quota))
    real_client = RemediationContext.client

    def client(self, service):
        found = real_client(self, service)
        return _AccountSettingsFromStubber(found, quota) if service == "lambda" else found

    monkeypatch.setattr(RemediationContext, "client", client)
