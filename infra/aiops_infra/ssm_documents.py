"""Every YAML runbook in ``ssm/`` as an SSM Automation document (named by its file stem, as the core's
``matcarv_aiops.ssm`` expects), and AIOpsSSMAutomationRole they run under.

The role holds exactly the IAM actions the documents' steps call, read from the documents by the core's
``matcarv_aiops.ssm.permissions.document_permissions`` (API steps, instance state changes, and the
boto3 calls of executeScript handlers), each scoped as tightly as the action allows: diagnostics to
the ``diagnostics/`` prefix of the diagnostics bucket, notifications to the AIOps topic, metrics to the
``AIOps/Automation`` namespace, resource actions to their resource type (``iam_actions``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import aws_cdk as cdk
import yaml
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from aiops_infra.alarms import METRIC_NAMESPACE
from aiops_infra.iam_actions import SSM_AUTOMATION_ROLE_NAME, scope_in_regions
from aiops_infra.remediation_roles import acknowledge_scoped_wildcards
from aiops_infra.trust import service_principal

SSM_DIR = Path(__file__).resolve().parents[2] / "ssm"
DIAGNOSTICS_PREFIX = "diagnostics/"


def document_files(directory: Path = SSM_DIR) -> list[Path]:
    return (
        sorted(p for p in directory.glob("*") if p.suffix in (".yaml", ".yml")) if directory.is_dir() else []
    )


def document_permissions(path: Path) -> list[str]:
    """The IAM actions one runbook calls, via the core's reader (which also validates the document)."""
    try:
        from matcarv_aiops.ssm.document import load
        from matcarv_aiops.ssm.permissions import document_permissions as read_permissions
    except ImportError as exc:
        raise RuntimeError(
            f"SSM document {path.name}: reading its IAM actions needs matcarv_aiops.ssm ({exc})"
        ) from None
    return read_permissions(load(path))


def runbook_resources(
    action: str,
    *,
    document: str,
    region: str,
    account: str,
    diagnostics_bucket_arn: str,
    topic_arn: str,
    other_regions: tuple[str, ...] = (),
) -> list[str]:
    if action == "s3:PutObject":
        return [f"{diagnostics_bucket_arn}/{DIAGNOSTICS_PREFIX}*"]
    if action == "sns:Publish":
        return [topic_arn]
    return list(
        scope_in_regions(
            owner=f"SSM document {document}",
            action=action,
            regions=(region, *other_regions),
            account=account,
        ).resources
    )


def add_runbook_documents(scope: Construct, directory: Path = SSM_DIR) -> dict[str, ssm.CfnDocument]:
    """The runbooks as SSM Automation documents of ``scope``'s Region, by file name: in the home Region's
    stack beside their role, and alone in each other Region's stack (a runbook runs in its target's
    Region, under the home stack's AIOpsSSMAutomationRole: IAM is global)."""
    return {
        path.name: ssm.CfnDocument(
            scope,
            f"Document-{path.stem}",
            name=path.stem,
            document_type="Automation",
            document_format="YAML",
            content=yaml.safe_load(path.read_text(encoding="utf-8")),
            update_method="NewVersion",
        )
        for path in document_files(directory)
    }


class SsmAutomation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        diagnostics_bucket_arn: str,
        topic_arn: str,
        directory: Path = SSM_DIR,
        other_regions: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        regions = (stack.region, *other_regions)
        files = document_files(directory)
        # Statements by resource list; the metric gets its own, limited to the AIOps namespace.
        by_resources: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for path in files:
            for action in document_permissions(path):
                resources = runbook_resources(
                    action,
                    document=path.name,
                    region=stack.region,
                    account=stack.account,
                    diagnostics_bucket_arn=diagnostics_bucket_arn,
                    topic_arn=topic_arn,
                    other_regions=other_regions,
                )
                key = (*resources, "metric") if action == "cloudwatch:PutMetricData" else tuple(resources)
                by_resources[key].add(action)
        statements = []
        for key, actions in by_resources.items():
            metric = key[-1] == "metric"
            statements.append(
                iam.PolicyStatement(
                    actions=sorted(actions),
                    resources=list(key[:-1] if metric else key),
                    conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}
                    if metric
                    else None,
                )
            )
        self.role = iam.Role(
            self,
            "Role",
            role_name=SSM_AUTOMATION_ROLE_NAME,
            assumed_by=service_principal(
                "ssm.amazonaws.com",
                account=stack.account,
                source_arn=[
                    f"arn:aws:ssm:{region}:{stack.account}:automation-execution/*" for region in regions
                ],
            ),
            description="MatCarv AIOps SSM Automation runbooks",
        )
        if statements:
            self.role.attach_inline_policy(iam.Policy(self, "Runbooks", statements=statements))
            acknowledge_scoped_wildcards(
                self.node.find_child("Runbooks"),
                statements,
                "runbooks act on the resource named at run time: one resource type per action, in this "
                "account and region",
                reasons={
                    f"{diagnostics_bucket_arn}/{DIAGNOSTICS_PREFIX}*": (
                        "runbooks write diagnostics under diagnostics/<execution id>/ in the "
                        "diagnostics bucket"
                    )
                },
            )
        self.documents = add_runbook_documents(self, directory)
