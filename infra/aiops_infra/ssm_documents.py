"""Every YAML file in ``ssm/`` as an SSM Automation document, and AIOpsSSMAutomationRole they run under.

A runbook carries out a catalogue entry whose pattern is ``ssm``, so the role holds the actions those
entries declare (scoped like their remediation roles), plus writing diagnostics and the
``RemediationExecuted`` metric (SPEC: runbook authoring guidelines 1 and 5).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import aws_cdk as cdk
import yaml
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from aiops_infra.alarms import METRIC_NAMESPACE
from aiops_infra.remediation_roles import acknowledge_scoped_wildcards, entry_statements
from matcarv_aiops.catalogue import CatalogueEntry

SSM_AUTOMATION_ROLE_NAME = "AIOpsSSMAutomationRole"
SSM_DIR = Path(__file__).resolve().parents[2] / "ssm"


def document_files(directory: Path = SSM_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml")) if directory.is_dir() else []


def load_document(path: Path) -> dict:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"SSM document {path.name}: not valid YAML: {exc}") from None
    if not isinstance(content, dict) or "mainSteps" not in content or "schemaVersion" not in content:
        raise ValueError(f"SSM document {path.name}: an Automation document needs schemaVersion and mainSteps")
    return content


def document_name(path: Path) -> str:
    """``ssm/ec2-restart.yaml`` -> ``AIOps-ec2-restart``."""
    return "AIOps-" + path.stem


class SsmAutomation(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, entries: Iterable[CatalogueEntry],
                 diagnostics_bucket_arn: str, directory: Path = SSM_DIR) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        statements = [statement for entry in entries if entry.pattern == "ssm"
                      for statement in entry_statements(entry, region=stack.region, account=stack.account)]
        statements += [
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[f"{diagnostics_bucket_arn}/ssm/*"]),
            iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                                conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}),
        ]
        self.role = iam.Role(
            self, "Role", role_name=SSM_AUTOMATION_ROLE_NAME,
            assumed_by=iam.ServicePrincipal("ssm.amazonaws.com",
                                            conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
            description="MatCarv AIOps SSM Automation runbooks",
            inline_policies={"Runbooks": iam.PolicyDocument(statements=statements)},
        )
        acknowledge_scoped_wildcards(
            self.role, statements,
            "runbooks act on the resource named at run time: one resource type per action, in this account "
            "and region", reasons={f"{diagnostics_bucket_arn}/ssm/*":
                                   "runbooks write diagnostics under the ssm/ prefix of the diagnostics bucket, keyed by execution"})
        self.documents: dict[str, ssm.CfnDocument] = {}
        for path in document_files(directory):
            self.documents[path.name] = ssm.CfnDocument(
                self, f"Document-{path.stem}", name=document_name(path), document_type="Automation",
                document_format="YAML", content=load_document(path), update_method="NewVersion")
