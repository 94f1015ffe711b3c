"""The trigger Lambda: EventBridge event -> catalogue entry -> MWAA InvokeRestApi (start the entry's DAG).

Its runtime code is the core's ingress handler (``matcarv_aiops.ingress.handler``), packaged locally,
without Docker and without Airflow, by ``aiops_infra.bundle.build_lambda_package``: an explicit list of
modules, the catalogue compiled to JSON, the pure-Python dependencies and their bytecode.

Nothing is lost at the front door. EventBridge invokes the function asynchronously; when MWAA is down or
throttling for longer than the function and Lambda's two retries can wait, the invocation record (the
event, the error) goes to the on-failure destination, ``FailedEvents``: an encrypted queue that keeps it
14 days. A scheduled rule invokes the function with ``REDRIVE_REQUEST`` every few minutes; that pass
replays the kept events (this queue and the rule targets' dead-letter queue) with the same run ids, so
they go out on their own once MWAA answers again, and never start a run twice.

Why an on-failure destination rather than SQS between EventBridge and the function: events keep the
direct, push-driven path (no polling, no batch or concurrency tuning of an event source mapping); the
queue holds only what failed, so its depth is an alarm in itself; and the record says why it failed.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from aiops_infra.bundle import LAMBDA_ARCHITECTURE, LAMBDA_PYTHON_VERSION, REPO, PackagingError
from aiops_infra.bundle import LAMBDA_DEPENDENCIES as DEPENDENCIES
from aiops_infra.bundle import LAMBDA_HANDLER as HANDLER
from aiops_infra.bundle import build_lambda_package as build_package
from aiops_infra.nag import SQS_MANAGED_ENCRYPTION, acknowledge, skip_checkov
from aiops_infra.remediation_roles import nag_finding
from matcarv_aiops.ingress.redrive import REDRIVE_REQUEST, VISIBILITY_TIMEOUT_SECONDS

# The runtime and architecture the package is built for (aiops_infra.bundle installs its wheels for them).
RUNTIME = lambda_.Runtime(f"python{LAMBDA_PYTHON_VERSION}", lambda_.RuntimeFamily.PYTHON)
ARCHITECTURE = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}[
    LAMBDA_ARCHITECTURE
]

# Two InvokeRestApi requests that each run into the client's timeouts (3 s connect + 12 s read), their
# backoff and the safety margin fit; quick failures (throttling, 5xx) are retried many times within it.
TIMEOUT_SECONDS = 45
# Lambda's own retries of a failed asynchronous invocation (its maximum), then the on-failure destination.
ASYNC_RETRY_ATTEMPTS = 2
# How long an event may wait in Lambda's queue (throttled, say) before it goes to the destination.
MAX_EVENT_AGE = cdk.Duration.hours(6)
# SQS's longest retention: an outage, a weekend and a redeploy fit.
FAILED_EVENTS_RETENTION = cdk.Duration.days(14)
# How often the kept events are replayed.
REDRIVE_SCHEDULE = cdk.Duration.minutes(5)

__all__ = [
    "DEPENDENCIES",
    "HANDLER",
    "REPO",
    "ASYNC_RETRY_ATTEMPTS",
    "FAILED_EVENTS_RETENTION",
    "REDRIVE_SCHEDULE",
    "TIMEOUT_SECONDS",
    "PackagingError",
    "TriggerFunction",
    "build_package",
]


class TriggerFunction(Construct):
    """The ingress Lambda and its role: it may call ``airflow:InvokeRestApi`` as one Airflow role of one
    environment, write its own logs, send to its failure queue and read the queues it redrives; nothing
    else."""

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
        # Failed invocations are kept, not dropped: see the module's docstring.
        self.failed_events = sqs.Queue(
            self,
            "FailedEvents",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=FAILED_EVENTS_RETENTION,
            # A redrive pass reads a message once; what it keeps becomes visible again for the next pass.
            visibility_timeout=cdk.Duration.seconds(VISIBILITY_TIMEOUT_SECONDS),
        )
        skip_checkov(self.failed_events, "CKV_AWS_27", SQS_MANAGED_ENCRYPTION)
        acknowledge(
            self.failed_events,
            "SQS3",
            "this queue is itself where failed trigger invocations are kept; the redrive leaves a message "
            "it cannot replay in place, with the reason logged, and the depth alarm tells a human",
        )
        self.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.failed_events),
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
        )
        self.redrive_schedule = events.Rule(
            self,
            "Redrive",
            description="MatCarv AIOps: replay the events the trigger kept, once MWAA answers again",
            schedule=events.Schedule.rate(REDRIVE_SCHEDULE),
        )
        # No retries: the next scheduled pass is the retry, and what a pass did not replay stays queued.
        self.redrive_schedule.add_target(
            targets.LambdaFunction(
                self.function, event=events.RuleTargetInput.from_object(REDRIVE_REQUEST), retry_attempts=0
            )
        )
        self.redrive_from(self.failed_events)
        # Nothing but EventBridge invokes it; it starts at most one DAG run per event, so a cap keeps a
        # flood of events from flooding the Airflow API. From the deployment config: an account must keep
        # 10 executions unreserved, so a new account (quota 10) can reserve none.
        if reserved_concurrency:
            self.function.node.default_child.add_property_override(
                "ReservedConcurrentExecutions", reserved_concurrency
            )
        else:
            skip_checkov(
                self.function,
                "CKV_AWS_115",
                "triggerReservedConcurrency is 0 in this deployment: a new account's quota (10) leaves "
                "nothing to reserve; set it where the account allows",
            )
        skip_checkov(
            self.function,
            "CKV_AWS_116",
            "failed async invocations go to the FailedEvents queue as an on-failure destination (which "
            "keeps the request and the error, and is redriven); checkov only sees DeadLetterConfig",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_117",
            "it calls only AWS APIs (MWAA InvokeRestApi, SQS, CloudWatch Logs), signed, over their "
            "endpoints; in a VPC it would need NAT or an interface endpoint each, for no private resource",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_173",
            "its environment holds names, account ids and queue URLs, no secret; Lambda encrypts it at "
            "rest with its AWS managed key",
        )
        skip_checkov(
            self.log_group,
            "CKV_AWS_158",
            "CloudWatch Logs encrypts it at rest with service keys; the lines hold event ids and DAG run "
            "ids, no secret, so a customer key would add a key policy and no protection",
        )
        acknowledge(
            self.function,
            "L1",
            f"{RUNTIME.name} is MWAA's Python (3.12), the one the package's wheels (pydantic_core) and "
            "bytecode are built for; the project targets 3.11 and 3.12",
        )

    def redrive_from(self, *queues: sqs.IQueue) -> None:
        """Let the scheduled redrive replay these queues too (read, delete, give back)."""
        self._redrive_queues = [*getattr(self, "_redrive_queues", []), *queues]
        for queue in queues:
            queue.grant_consume_messages(self.role)
        self.function.add_environment(
            "AIOPS_REDRIVE_QUEUE_URLS", ",".join(queue.queue_url for queue in self._redrive_queues)
        )
