"""Trust policies for roles that an AWS service assumes, with the confused-deputy guard its docs give:
``aws:SourceAccount`` (this account) and ``aws:SourceArn`` (the resource the service acts for), so another
account's resource of the same service cannot make the service assume our role.

Services that document both keys for the role they assume (each service's confused-deputy page):
MWAA (the environment), VPC Flow Logs (``vpc-flow-log/*``), EventBridge (the rule), SSM Automation
(``automation-execution/*``). Lambda execution roles are the exception: Lambda documents no source keys
on the assume of the execution role, so ``lambda.amazonaws.com`` trusts stay unconditioned."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

# service principal -> the ARN pattern of its source, under arn:aws:<service>:<region>:<account>:
SOURCE_ARN_SERVICES = {
    "airflow.amazonaws.com": "airflow",
    "airflow-env.amazonaws.com": "airflow",
    "vpc-flow-logs.amazonaws.com": "ec2",
    "events.amazonaws.com": "events",
    "ssm.amazonaws.com": "ssm",
}
# Service principals whose docs give no source keys for the assumed role; listed so a new one is a decision.
NO_SOURCE_KEYS = frozenset({"lambda.amazonaws.com"})


def source_conditions(*, account: str, source_arn: str | list[str]) -> dict[str, dict[str, str | list[str]]]:
    # One pattern stays a string, as before: the templates of a one-Region deployment do not change.
    arns = source_arn[0] if isinstance(source_arn, list) and len(source_arn) == 1 else source_arn
    return {"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": arns}}


def service_principal(service: str, *, account: str, source_arn: str | list[str]) -> iam.IPrincipal:
    """``service`` may assume the role only on behalf of ``source_arn`` (an ARN or ARN pattern, or a list
    of them: one per Region for a role the service assumes in several) in ``account``."""
    if service not in SOURCE_ARN_SERVICES:
        raise ValueError(f"{service} documents no aws:SourceArn for its assumed roles; trust it without one")
    return iam.ServicePrincipal(service, conditions=source_conditions(account=account, source_arn=source_arn))
