"""The trigger Lambda: EventBridge event -> catalogue entry -> MWAA InvokeRestApi (start the entry's DAG).

Its runtime code is the core's ingress handler (``matcarv_aiops.ingress.handler``), packaged locally,
without Docker and without Airflow, by ``aiops_infra.bundle.build_lambda_package``: an explicit list of
modules, the catalogue compiled to JSON, the pure-Python dependencies and their bytecode.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from aiops_infra.bundle import LAMBDA_ARCHITECTURE, LAMBDA_PYTHON_VERSION, REPO, PackagingError
from aiops_infra.bundle import LAMBDA_DEPENDENCIES as DEPENDENCIES
from aiops_infra.bundle import LAMBDA_HANDLER as HANDLER
from aiops_infra.bundle import build_lambda_package as build_package
from aiops_infra.nag import acknowledge
from aiops_infra.remediation_roles import nag_finding

# The runtime and architecture the package is built for (aiops_infra.bundle installs its wheels for them).
RUNTIME = lambda_.Runtime(f"python{LAMBDA_PYTHON_VERSION}", lambda_.RuntimeFamily.PYTHON)
ARCHITECTURE = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}[
    LAMBDA_ARCHITECTURE
]

# Two InvokeRestApi requests that each run into the client's timeouts (3 s connect + 12 s read), their
# backoff and the safety margin fit; quick failures (throttling, 5xx) are retried many times within it.
TIMEOUT_SECONDS = 45

__all__ = [
    "DEPENDENCIES",
    "HANDLER",
    "REPO",
    "TIMEOUT_SECONDS",
    "PackagingError",
    "TriggerFunction",
    "build_package",
]


class TriggerFunction(Construct):
    """The ingress Lambda and its role: it may call ``airflow:InvokeRestApi`` as one Airflow role of one
    environment, and write its own logs; nothing else."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        environment_name: str,
        airflow_api_role: str,
        environment: dict[str, str],
        reserved_concurrency: int = 0,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.ONE_YEAR, removal_policy=cdk.RemovalPolicy.RETAIN
        )
        self.airflow_role_arn = (
            f"arn:aws:airflow:{stack.region}:{stack.account}:role/{environment_name}/{airflow_api_role}"
        )
        log_streams = (
            f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{self.log_group.log_group_name}"
            ":log-stream:*"
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="MatCarv AIOps trigger Lambda: start remediation DAG runs through the MWAA API",
            inline_policies={
                "TriggerDagRuns": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["airflow:InvokeRestApi"], resources=[self.airflow_role_arn]
                        ),
                        iam.PolicyStatement(
                            actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_streams]
                        ),
                    ]
                )
            },
        )
        acknowledge(
            self.role,
            "IAM5",
            "log streams are created by the Lambda runtime with generated names; scoped to this "
            "function's own log group",
            finding=nag_finding(log_streams, stack),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="MatCarv AIOps: EventBridge event -> catalogue entry -> MWAA DAG run",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(code_dir)),
            role=self.role,
            timeout=cdk.Duration.seconds(TIMEOUT_SECONDS),
            memory_size=256,
            log_group=self.log_group,
            environment=environment,
        )
        # Nothing but EventBridge invokes it; it starts at most one DAG run per event, so a cap keeps a
        # flood of events from flooding the Airflow API. From the deployment config: an account must keep
        # 10 executions unreserved, so a new account (quota 10) can reserve none.
        if reserved_concurrency:
            self.function.node.default_child.add_property_override(
                "ReservedConcurrentExecutions", reserved_concurrency
            )
        acknowledge(
            self.function,
            "L1",
            f"{RUNTIME.name} is MWAA's Python (3.12), the one the package's wheels (pydantic_core) and "
            "bytecode are built for; the project targets 3.11 and 3.12",
        )
