"""Deployment settings, read from CDK context (``cdk.json`` or ``-c key=value``), validated once.

Every knob has a production-sensible default, so ``cdk synth`` needs no context at all. Bad values fail
the synth with a message naming the context key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from constructs import Node

ENVIRONMENT_CLASSES = ("mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge")
WEBSERVER_ACCESS_MODES = ("PRIVATE_ONLY", "PUBLIC_ONLY")
# The Airflow RBAC role the trigger Lambda acts as through InvokeRestApi: User can trigger DAG runs.
AIRFLOW_API_ROLES = ("User", "Op")
_ACCOUNT = re.compile(r"^\d{12}$")


class ConfigError(ValueError):
    """A CDK context value is invalid; the message names the key."""


@dataclass(frozen=True)
class ExistingVpc:
    vpc_id: str
    private_subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class DeploymentConfig:
    environment_name: str = "matcarv-aiops"
    airflow_version: str = "3.3.1"
    environment_class: str = "mw1.small"
    min_workers: int = 1
    max_workers: int = 5
    schedulers: int = 2
    webserver_access_mode: str = "PRIVATE_ONLY"
    airflow_api_role: str = "User"
    # S3 object versions of the uploaded bundle; empty: MWAA takes the latest version at deploy time.
    plugins_version: str = ""
    requirements_version: str = ""
    startup_script_version: str = ""
    existing_vpc: ExistingVpc | None = None
    nat_gateways: int = 1
    # Member accounts whose events the hub handles (their StackSet instances hold the remediation roles).
    member_account_ids: tuple[str, ...] = ()
    production_account_ids: tuple[str, ...] = ()
    snapshot_retention_days: int = 7
    alarm_email: str = ""
    extra_airflow_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_node(cls, node: Node) -> DeploymentConfig:
        def get(key: str) -> Any:
            return node.try_get_context(key)

        return cls.from_mapping({key: get(key) for key in _CONTEXT_KEYS if get(key) is not None})

    @classmethod
    def from_mapping(cls, context: dict[str, Any]) -> DeploymentConfig:
        unknown = set(context) - set(_CONTEXT_KEYS)
        if unknown:
            raise ConfigError(f"unknown context keys {sorted(unknown)}; known: {sorted(_CONTEXT_KEYS)}")
        values: dict[str, Any] = {}
        for key, raw in context.items():
            attr, parse = _CONTEXT_KEYS[key]
            try:
                values[attr] = parse(raw)
            except (TypeError, ValueError, json.JSONDecodeError) as exc:
                raise ConfigError(f"context {key}={raw!r}: {exc}") from None
        config = cls(**values)
        config._check()
        return config

    def _check(self) -> None:
        def fail(key: str, why: str) -> None:
            raise ConfigError(f"context {key}: {why}")

        if not re.fullmatch(r"[A-Za-z][0-9A-Za-z_-]{0,79}", self.environment_name):
            fail("environmentName", "letters, digits, - and _, starting with a letter, at most 80")
        if self.environment_class not in ENVIRONMENT_CLASSES:
            fail("environmentClass", f"{self.environment_class!r} is not one of {ENVIRONMENT_CLASSES}")
        if not 1 <= self.min_workers <= self.max_workers:
            fail(
                "minWorkers/maxWorkers",
                f"need 1 <= minWorkers ({self.min_workers}) <= maxWorkers ({self.max_workers})",
            )
        if not 2 <= self.schedulers <= 5:
            fail("schedulers", "MWAA runs 2 to 5 schedulers")
        if self.webserver_access_mode not in WEBSERVER_ACCESS_MODES:
            fail(
                "webserverAccessMode",
                f"{self.webserver_access_mode!r} is not one of {WEBSERVER_ACCESS_MODES}",
            )
        if self.airflow_api_role not in AIRFLOW_API_ROLES:
            fail("airflowApiRole", f"{self.airflow_api_role!r} is not one of {AIRFLOW_API_ROLES}")
        for key, accounts in (
            ("memberAccountIds", self.member_account_ids),
            ("productionAccountIds", self.production_account_ids),
        ):
            bad = [a for a in accounts if not _ACCOUNT.match(a)]
            if bad:
                fail(key, f"not 12-digit account ids: {bad}")
        if not 0 <= self.nat_gateways <= 3:
            fail("natGateways", "0 to 3")
        if not 1 <= self.snapshot_retention_days <= 365:
            fail("snapshotRetentionDays", "Recycle Bin keeps 1 to 365 days")
        if self.existing_vpc:
            if not re.fullmatch(r"vpc-([0-9a-f]{8}|[0-9a-f]{17})", self.existing_vpc.vpc_id):
                fail("existingVpc", f"vpcId {self.existing_vpc.vpc_id!r} is not a VPC id")
            bad = [
                s
                for s in self.existing_vpc.private_subnet_ids
                if not re.fullmatch(r"subnet-([0-9a-f]{8}|[0-9a-f]{17})", s)
            ]
            if bad:
                fail("existingVpc", f"not subnet ids: {bad}")
            if len(self.existing_vpc.private_subnet_ids) != 2:
                fail("existingVpc", "MWAA needs exactly two private subnets in different Availability Zones")


def _csv(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected an integer")
    return int(raw)


def _existing_vpc(raw: Any) -> ExistingVpc:
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, dict) or set(data) != {"vpcId", "privateSubnetIds"}:
        raise ValueError('expected {"vpcId": "vpc-...", "privateSubnetIds": ["subnet-...", "subnet-..."]}')
    return ExistingVpc(vpc_id=str(data["vpcId"]), private_subnet_ids=_csv(data["privateSubnetIds"]))


def _options(raw: Any) -> dict[str, str]:
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, dict):
        raise ValueError("expected a mapping of Airflow configuration options (section.key: value)")
    return {str(k): str(v) for k, v in data.items()}


# context key -> (DeploymentConfig attribute, parser)
_CONTEXT_KEYS: dict[str, tuple[str, Any]] = {
    "environmentName": ("environment_name", str),
    "airflowVersion": ("airflow_version", str),
    "environmentClass": ("environment_class", str),
    "minWorkers": ("min_workers", _int),
    "maxWorkers": ("max_workers", _int),
    "schedulers": ("schedulers", _int),
    "webserverAccessMode": ("webserver_access_mode", str),
    "airflowApiRole": ("airflow_api_role", str),
    "pluginsVersion": ("plugins_version", str),
    "requirementsVersion": ("requirements_version", str),
    "startupScriptVersion": ("startup_script_version", str),
    "existingVpc": ("existing_vpc", _existing_vpc),
    "natGateways": ("nat_gateways", _int),
    "memberAccountIds": ("member_account_ids", _csv),
    "productionAccountIds": ("production_account_ids", _csv),
    "snapshotRetentionDays": ("snapshot_retention_days", _int),
    "alarmEmail": ("alarm_email", str),
    "airflowConfigurationOptions": ("extra_airflow_options", _options),
}
