"""boto3 sessions and clients: the hub's own (audit, approvals, diagnostics) and the target account's.

Clients retry throttling with the SDK's adaptive mode. ``AWS_ENDPOINT_URL`` (moto locally) is honoured
by boto3 itself.
"""

from __future__ import annotations

import boto3
from botocore.config import Config

from matcarv_aiops.models import Target
from matcarv_aiops.settings import Settings, get_settings

RETRYING = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=10, read_timeout=30)


def hub_client(service: str, settings: Settings | None = None):
    """A client in the account and region that run AIOps itself."""
    settings = settings or get_settings()
    return boto3.session.Session().client(service, region_name=settings.region, config=RETRYING)


def target_session(target: Target, remediation_id: str, settings: Settings | None = None) -> boto3.session.Session:
    """A session able to act on the target: the entry's remediation role in the target's account when
    ``remediation_role_arn_template`` is set (multi-account), else the worker's own credentials."""
    settings = settings or get_settings()
    if not settings.remediation_role_arn_template:
        return boto3.session.Session(region_name=target.region or settings.region)
    role_arn = settings.remediation_role_arn_template.format(account=target.account, remediation=remediation_id)
    sts = hub_client("sts", settings)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=f"aiops-{remediation_id}"[:64])["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=target.region or settings.region,
    )


def topic_arn(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if settings.sns_topic_arn:
        return settings.sns_topic_arn
    account = hub_client("sts", settings).get_caller_identity()["Account"]
    return f"arn:aws:sns:{settings.region}:{account}:{settings.sns_topic_name}"
