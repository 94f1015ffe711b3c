"""boto3 sessions and clients: the hub's own (audit, approvals, diagnostics) and the target account's.

Clients retry throttling with the SDK's adaptive mode. ``AWS_ENDPOINT_URL`` (moto locally) is honoured
by boto3 itself. Sessions and hub clients are cached per process: creating a botocore session costs a
few hundred milliseconds, and a task makes many calls. An assumed role's session is its credentials over
the process's one session for the region (``AssumedSession``), not a botocore session of its own.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import TYPE_CHECKING, TypeAlias

import boto3
from botocore.config import Config
from botocore.credentials import Credentials

from matcarv_aiops.models import Target
from matcarv_aiops.settings import Settings, get_settings

if TYPE_CHECKING:
    from matcarv_aiops.catalogue import CatalogueEntry

RETRYING = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=10, read_timeout=30)
_REFRESH_BEFORE_EXPIRY_SECONDS = 300

# botocore sessions are not safe for concurrent client creation; reentrant, as an assumed session's
# client() takes it and session_client() takes it around any session's.
_lock = threading.RLock()
_sessions: dict[tuple, boto3.session.Session] = {}
_clients: dict[tuple, object] = {}
_assumed: dict[tuple, tuple[float, AssumedSession]] = {}
_STS_DISALLOWED = re.compile(r"[^\w+=,.@-]")


def _environment_key() -> tuple:
    return (os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_ACCESS_KEY_ID"))


def _session(region: str) -> boto3.session.Session:
    key = (region, *_environment_key())
    with _lock:
        if key not in _sessions:
            _sessions[key] = boto3.session.Session(region_name=region)
        return _sessions[key]


def hub_client(service: str, settings: Settings | None = None, *, region: str | None = None):
    """A client in the account that runs AIOps itself, in its region (or in ``region``)."""
    settings = settings or get_settings()
    region = region or settings.platform.region
    key = (service, region, *_environment_key())
    session = _session(region)
    with _lock:
        if key not in _clients:
            _clients[key] = session.client(service, region_name=region, config=RETRYING)
        return _clients[key]


class AssumedSession:
    """An assumed role's credentials, handed to each client made from the process's shared session for
    the region. A botocore session of its own per assumed role would register all of botocore's and
    boto3's handlers again (about a tenth of a remediation task's CPU, measured with py-spy), for the same
    clients: a client made with explicit credentials uses those and nothing of the session's own."""

    def __init__(self, credentials: Credentials, region_name: str):
        self._credentials = credentials
        self.region_name = region_name

    def get_credentials(self) -> Credentials:
        return self._credentials

    def client(self, service_name: str, region_name: str | None = None, config: Config | None = None):
        region = region_name or self.region_name
        with _lock:
            return _session(region).client(
                service_name,
                region_name=region,
                config=config,
                aws_access_key_id=self._credentials.access_key,
                aws_secret_access_key=self._credentials.secret_key,
                aws_session_token=self._credentials.token,
            )


# What a client of the hub's own credentials, or of an assumed role's, is made from.
AwsSession: TypeAlias = boto3.session.Session | AssumedSession


def session_client(session: AwsSession, service: str, region: str):
    """A new client from a (possibly shared) session, safely."""
    with _lock:
        return session.client(service, region_name=region, config=RETRYING)


def sts_name(value: str, what: str) -> str:
    """``value`` as STS takes a session name or a SourceIdentity: 2 to 64 of ``[\\w+=,.@-]``; any other
    character (an approver given as an ARN has ``:`` and ``/``) becomes ``_``, so CloudTrail still shows a
    readable name."""
    cleaned = _STS_DISALLOWED.sub("_", value.strip())[:64]
    if len(cleaned) < 2:
        raise ValueError(f"{what} {value!r} is too short for STS (2 to 64 characters)")
    return cleaned


def target_session(
    target: Target,
    entry: CatalogueEntry,
    settings: Settings | None = None,
    *,
    execution_id: str,
    source_identity: str,
) -> AwsSession:
    """A session able to act on the target: the entry's remediation role in the target's account when
    ``remediation_role_arn_template`` is set (multi-account), else the worker's own credentials.

    The assumed session is named after the execution and carries its human as ``SourceIdentity`` (the
    approver, or ``automated``), so every CloudTrail record of the change names both; and it is narrowed
    by a session policy to the target and the entry's related resources (``session_policy``). An entry
    with resolved related resources first assumes the role narrowed to the target and its declared
    resources, asks its resolvers through that session, then assumes it again with what they found."""
    from matcarv_aiops import session_policy as narrowing  # only a remediation's session needs the catalogue

    settings = settings or get_settings()
    region = target.region or settings.platform.region
    if not settings.platform.remediation_role_arn_template:
        return _session(region)
    role_arn = settings.platform.remediation_role_arn_template.format(
        account=target.account, remediation=entry.id
    )
    session_name = sts_name(execution_id, "execution id")
    human = sts_name(source_identity, "source identity")

    def narrowed(grants: list) -> AssumedSession:
        return assumed_session(
            role_arn,
            region=region,
            session_name=session_name,
            source_identity=human,
            session_policy=narrowing.session_policy(entry, target, grants),
            settings=settings,
        )

    grants = narrowing.declared_grants(entry, target)
    session = narrowed(grants)
    if not narrowing.has_resolvers(entry):
        return session
    return narrowed(grants + narrowing.resolved_grants(entry, target, session))


def assumed_session(
    role_arn: str,
    *,
    region: str,
    session_name: str,
    source_identity: str | None = None,
    session_policy: str | None = None,
    settings: Settings | None = None,
) -> AssumedSession:
    """A session of ``role_arn`` assumed from the hub's credentials, cached until shortly before its
    credentials expire. Every argument is part of the cache key: a session named after one execution,
    or narrowed by one session policy, is never handed to another."""
    key = (role_arn, region, session_name, source_identity, session_policy, *_environment_key())
    with _lock:
        cached = _assumed.get(key)
    if cached and cached[0] - time.time() > _REFRESH_BEFORE_EXPIRY_SECONDS:
        return cached[1]
    request: dict[str, str] = {"RoleArn": role_arn, "RoleSessionName": session_name[:64]}
    if source_identity:
        request["SourceIdentity"] = source_identity
    if session_policy:
        request["Policy"] = session_policy
    creds = hub_client("sts", settings).assume_role(**request)["Credentials"]
    session = AssumedSession(
        Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]), region
    )
    with _lock:
        _assumed[key] = (creds["Expiration"].timestamp(), session)
    return session


def hub_account(settings: Settings) -> str:
    """The account AIOps itself runs in: its own credentials' account."""
    return hub_client("sts", settings).get_caller_identity()["Account"]


def topic_arn(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if settings.platform.sns_topic_arn:
        return settings.platform.sns_topic_arn
    account = hub_account(settings)
    return f"arn:aws:sns:{settings.platform.region}:{account}:{settings.platform.sns_topic_name}"
