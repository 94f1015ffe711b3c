"""Build the CDK app: ``build_app()`` is what ``cdk synth`` (infra/app.py) and the tests call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from aiops_infra.bundle import build_bundle
from aiops_infra.config import DeploymentConfig
from aiops_infra.stacks import AIOpsStack, HubAddresses, MemberAccountStack, RegionalStack, SourceStack
from aiops_infra.trigger_function import REPO, build_package
from matcarv_aiops.catalogue import catalogue

SOURCE_STACK, HUB_STACK = "AIOpsSource", "AIOps"
DEFAULT_BUILD_DIR = REPO / "build" / "trigger-lambda"
FEATURE_FLAGS = {
    # Access logs are delivered under a bucket policy, so every bucket can enforce bucket-owner ownership
    # (no ACLs).
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def build_app(
    *,
    outdir: str | Path | None = None,
    context: dict[str, Any] | None = None,
    build_dir: Path = DEFAULT_BUILD_DIR,
) -> cdk.App:
    """The app with its stacks and the AwsSolutions checks; ``app.synth()`` writes the templates and raises
    if a check fails. Deployment order (``cdk deploy --all``): the source stack (bucket and bundle upload),
    the hub, then one member stack per ``memberAccountIds`` account, then one regional stack per account
    (the hub's and the members') and Region of ``regions`` besides the hub's."""
    app = cdk.App(outdir=str(outdir) if outdir else None, context={**FEATURE_FLAGS, **(context or {})})
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    config = DeploymentConfig.from_node(app.node)
    entries = list(catalogue().values())
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    # None only without member accounts and other Regions (config.hub_account refuses them without).
    hub_account = config.hub_account(env.account)
    hub_region = config.hub_region(env.region)
    other_regions = config.extra_regions(hub_region)
    bundle = build_bundle(build_dir.with_name(build_dir.name + "-mwaa-bundle"))
    source = SourceStack(app, SOURCE_STACK, bundle_dir=bundle.root, env=env)
    hub = AIOpsStack(
        app,
        HUB_STACK,
        config=config,
        source=source,
        entries=entries,
        trigger_code=build_package(build_dir),
        other_regions=other_regions,
        env=env,
    )
    home_stacks: dict[str, cdk.Stack] = {}
    if hub_account:
        home_stacks[hub_account] = hub
    for account in config.member_account_ids if hub_account else ():
        # In the member's account and the hub's region; deployed after the hub, whose execution role its
        # remediation roles trust (IAM refuses a trust in a role that does not exist yet).
        member = MemberAccountStack(
            app,
            member_stack_name(account),
            entries=entries,
            hub_account=hub_account,
            existing_config_rules=config.existing_config_rules,
            other_regions=other_regions,
            env=cdk.Environment(account=account, region=env.region),
        )
        member.add_stack_dependency(hub)
        home_stacks[account] = member
    for account, home in home_stacks.items() if other_regions else ():
        assert hub_account is not None and hub_region is not None  # config.hub_account/hub_region refuse
        for region in other_regions:
            # Names the roles of its account's home stack, which is deployed before it.
            regional = RegionalStack(
                app,
                regional_stack_name(account, region),
                entries=entries,
                hub=HubAddresses(account=hub_account, region=hub_region),
                existing_config_rules=config.existing_config_rules,
                env=cdk.Environment(account=account, region=region),
            )
            regional.add_stack_dependency(home)
    return app


def member_stack_name(account: str) -> str:
    return f"AIOpsMember-{account}"


def regional_stack_name(account: str, region: str) -> str:
    return f"AIOpsRegion-{account}-{region}"
