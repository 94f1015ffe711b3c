"""Synthesize the CDK app once per session (each synth costs seconds): the default context, and a
variant with member accounts, an existing VPC and explicit sizes. No AWS credentials, no network."""

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

STACKS = ("AIOpsSource", "AIOps", "AIOpsMember")
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
    "memberAccountIds": "111111111111,222222222222",
    "productionAccountIds": "",
    "nonProductionAccountIds": "111111111111",
    "existingConfigRules": "cloudtrail-enabled",
    "existingVpc": {
        "vpcId": "vpc-0abc1234def567890",
        "privateSubnetIds": ["subnet-0aaa1111bbbb22223", "subnet-0ccc3333dddd44445"],
    },
    "pluginsVersion": "v-plugins",
    "requirementsVersion": "v-requirements",
    "startupScriptVersion": "v-startup",
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
    templates = {stack: json.loads((outdir / f"{stack}.template.json").read_text()) for stack in STACKS}
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
