"""The trigger Lambda: EventBridge event -> catalogue entry -> MWAA InvokeRestApi (start the entry's DAG).

Its runtime code is the core's ingress handler (``matcarv_aiops.ingress.handler``). It is packaged
locally, without Docker and without Airflow: the ``matcarv_aiops`` package minus every module that
imports Airflow, plus the pure-Python dependencies copied from this project's environment (built for
CPython 3.11 on manylinux x86_64, the Lambda runtime below). boto3 comes with the Lambda runtime.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from aiops_infra.nag import acknowledge
from aiops_infra.remediation_roles import nag_finding

REPO = Path(__file__).resolve().parents[2]
CORE_PACKAGE = REPO / "plugins" / "matcarv_aiops"
HANDLER = "matcarv_aiops.ingress.handler.handler"
# Top-level modules and packages the handler needs beyond the standard library and boto3.
DEPENDENCIES = ("pydantic", "pydantic_core", "typing_extensions", "annotated_types", "typing_inspection", "yaml")
_IMPORTS_AIRFLOW = re.compile(r"^\s*(from|import)\s+airflow\b", re.MULTILINE)
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.dist-info", "tests")


class PackagingError(RuntimeError):
    """The Lambda package cannot be built; the message says what is missing."""


def build_package(out_dir: Path) -> Path:
    """Write the Lambda code to ``out_dir`` (emptied first) and return it."""
    handler_module = CORE_PACKAGE / "ingress" / "handler.py"
    if not handler_module.is_file():
        raise PackagingError(f"the trigger Lambda's handler {handler_module} does not exist")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)

    def skip(directory: str, names: list[str]) -> set[str]:
        ignored = set(_SKIP(directory, names))
        for name in names:
            path = Path(directory) / name
            if path.suffix == ".py" and _IMPORTS_AIRFLOW.search(path.read_text(encoding="utf-8")):
                ignored.add(name)
        return ignored

    shutil.copytree(CORE_PACKAGE, out_dir / "matcarv_aiops", ignore=skip)
    if not (out_dir / "matcarv_aiops" / "ingress" / "handler.py").is_file():
        raise PackagingError("matcarv_aiops/ingress/handler.py imports Airflow; the trigger Lambda must not")
    for name in DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise PackagingError(f"dependency {name!r} is not installed in this environment (run `uv sync`)")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, out_dir / name, ignore=_SKIP)
        else:
            shutil.copy2(origin, out_dir / origin.name)
    return out_dir


class TriggerFunction(Construct):
    """The ingress Lambda and its role: it may call ``airflow:InvokeRestApi`` as one Airflow role of one
    environment, and write its own logs; nothing else."""

    def __init__(self, scope: Construct, construct_id: str, *, code_dir: Path, environment_name: str,
                 airflow_api_role: str, environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_YEAR,
                                       removal_policy=cdk.RemovalPolicy.RETAIN)
        self.airflow_role_arn = f"arn:aws:airflow:{stack.region}:{stack.account}:role/{environment_name}/{airflow_api_role}"
        log_streams = (f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{self.log_group.log_group_name}"
                       ":log-stream:*")
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="MatCarv AIOps trigger Lambda: start remediation DAG runs through the MWAA API",
            inline_policies={"TriggerDagRuns": iam.PolicyDocument(statements=[
                iam.PolicyStatement(actions=["airflow:InvokeRestApi"], resources=[self.airflow_role_arn]),
                iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_streams]),
            ])},
        )
        acknowledge(self.role, "IAM5",
                    "log streams are created by the Lambda runtime with generated names; scoped to this "
                    "function's own log group", finding=nag_finding(log_streams, stack))
        self.function = lambda_.Function(
            self, "Function",
            description="MatCarv AIOps: EventBridge event -> catalogue entry -> MWAA DAG run",
            runtime=lambda_.Runtime.PYTHON_3_11,
            architecture=lambda_.Architecture.X86_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(code_dir)),
            role=self.role,
            timeout=cdk.Duration.seconds(30),
            memory_size=256,
            log_group=self.log_group,
            environment=environment,
        )
        # Nothing but EventBridge invokes it; it starts at most one DAG run per event, so a cap keeps a
        # flood of events from flooding the Airflow API.
        self.function.node.default_child.add_property_override("ReservedConcurrentExecutions", 10)
        acknowledge(self.function, "L1",
                    "python3.11 matches the CPython 3.11 manylinux wheels (pydantic_core) the package is built "
                    "from; the whole project targets 3.11 and 3.12")
