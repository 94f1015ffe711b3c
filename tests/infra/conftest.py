"""Synthesize the CDK app once per session (each synth costs seconds): the default context, and a
variant with member accounts, a second Region, an existing VPC and explicit sizes. No AWS credentials,
no network."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "infra"))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

# The stacks every synth has; with member accounts, one AIOpsMember-<account> each besides.
STACKS = ("AIOpsSource", "AIOps")
HUB_ACCOUNT = "999999999999"
# aws-cdk-lib's id of the AwsCustomResource singleton function.
AWS_CUSTOM_RESOURCE_HANDLER = "AWS679f53fac002430cb0da5b7982bd2287"
MEMBER_ACCOUNTS = ("111111111111", "222222222222")
MEMBER_STACKS = tuple(f"AIOpsMember-{account}" for account in MEMBER_ACCOUNTS)
# The variant covers a second Region: one AIOpsRegion-<account>-<region> per account, the hub's included.
HUB_REGION, OTHER_REGION = "us-east-1", "eu-west-1"
REGIONAL_STACKS = tuple(
    f"AIOpsRegion-{account}-{OTHER_REGION}" for account in (HUB_ACCOUNT, *MEMBER_ACCOUNTS)
)
# The hub refuses to synth without productionAccountIds: the default synth gives it empty, on purpose.
DEFAULT_CONTEXT = {"productionAccountIds": ""}
VARIANT_CONTEXT = {
    "environmentName": "aiops-prod",
    "environmentClass": "mw1.medium",
    "minWorkers": 2,
    "maxWorkers": 8,
    "webserverAccessMode": "PRIVATE_ONLY",
    "webserverAllowedFrom": "10.20.0.0/16,pl-0123456789abcdef0,sg-0123456789abcdef0",
    "triggerReservedConcurrency": 20,
    "airflowApiRole": "Op",
    "memberAccountIds": ",".join(MEMBER_ACCOUNTS),
    "hubAccountId": HUB_ACCOUNT,
    "productionAccountIds": "",
    "nonProductionAccountIds": MEMBER_ACCOUNTS[0],
    "existingConfigRules": "cloudtrail-enabled",
    "regions": f"{HUB_REGION},{OTHER_REGION}",
    "hubRegion": HUB_REGION,
    "existingVpc": {
        "vpcId": "vpc-0abc1234def567890",
        "privateSubnetIds": ["subnet-0aaa1111bbbb22223", "subnet-0ccc3333dddd44445"],
    },
    "auditArchiveRetentionDays": 3650,
}


@dataclass
class Synth:
    outdir: Path
    templates: dict[str, dict[str, Any]]
    error: str | None  # what app.synth() raised (cdk-nag failures land here), None if it passed

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())

    @property
    def member_stacks(self) -> tuple[str, ...]:
        """This synth's member stacks (the variant's; the default synth has no member accounts)."""
        return tuple(name for name in self.templates if name.startswith("AIOpsMember-"))

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.outdir / "manifest.json").read_text())

    def own_account(self, stack: str) -> str | dict[str, str]:
        """How ``stack``'s template names its own account: the literal id of a stack with an explicit
        account (the member stacks), else ``{"Ref": "AWS::AccountId"}``."""
        account = self.manifest["artifacts"][stack]["environment"].split("/")[2]
        return {"Ref": "AWS::AccountId"} if account == "unknown-account" else account

    def trigger_function(self) -> tuple[str, dict[str, Any]]:
        """The hub's one platform function (the trigger Lambda): its logical id and resource. The only
        other function there is CDK's AwsCustomResource handler, which reads the bundle's versions at
        deploy time."""
        functions = self.resources("AIOps", "AWS::Lambda::Function")
        platform = {lid: r for lid, r in functions.items() if not lid.startswith(AWS_CUSTOM_RESOURCE_HANDLER)}
        assert len(functions) - len(platform) == 1, sorted(functions)
        [(logical_id, function)] = platform.items()
        return logical_id, function

    def resources(self, stack: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.templates[stack]["Resources"].items()
            if resource["Type"] == resource_type
        }


def _synth(outdir: Path, context: dict[str, Any]) -> Synth:
    # Credentials would make no difference to synth; their absence must not either.
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "CDK_DEFAULT_ACCOUNT",
        "CDK_DEFAULT_REGION",
    ):
        os.environ.pop(variable, None)
    from aiops_infra.app import build_app

    app = build_app(outdir=outdir, context=context, build_dir=outdir.parent / f"{outdir.name}-lambda")
    error = None
    try:
        app.synth()
    except RuntimeError as exc:
        error = str(exc)
    manifest = json.loads((outdir / "manifest.json").read_text())
    templates = {
        name: json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    return Synth(outdir=outdir, templates=templates, error=error)


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Synth:
    saved = dict(os.environ)
    try:
        return _synth(tmp_path_factory.mktemp("cdk") / "default", DEFAULT_CONTEXT)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def synth_variant(tmp_path_factory) -> Synth:
    saved = dict(os.environ)
    try:
        return _synth(tmp_path_factory.mktemp("cdk") / "variant", VARIANT_CONTEXT)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(params=["default", "variant"])
def any_synth(request, synth, synth_variant) -> Synth:
    return synth if request.param == "default" else synth_variant
