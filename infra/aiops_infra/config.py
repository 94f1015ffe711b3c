"""Deployment settings, read from CDK context (``cdk.json`` or ``-c key=value``), validated once.

Every knob has a production-sensible default, so ``cdk synth`` needs no context at all. Bad values fail
the synth with a message naming the context key.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from constructs import Node

ENVIRONMENT_CLASSES = ("mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge")
WEBSERVER_ACCESS_MODES = ("PRIVATE_ONLY", "PUBLIC_ONLY")
# mw1.micro runs one scheduler and one worker; the other classes 2 to 5 schedulers.
MICRO_CLASS = "mw1.micro"
# The Airflow RBAC role the trigger Lambda acts as through InvokeRestApi: User can trigger DAG runs.
AIRFLOW_API_ROLES = ("User", "Op")
# Airflow's own roles (FAB): each has permissions on every DAG, so none of them can be the approver role.
BUILT_IN_AIRFLOW_ROLES = ("Admin", "Op", "User", "Viewer", "Public")
_ACCOUNT = re.compile(r"^\d{12}$")
# An AWS Region's name (the same shape the ingress accepts in an event's ``region``).
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


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
    # None: 1 on mw1.micro, else 5 workers and 2 schedulers.
    max_workers: int | None = None
    schedulers: int | None = None
    # PUBLIC_ONLY: the webserver is reachable from the internet, but only through an IAM-signed login
    # (airflow:CreateWebLoginToken). PRIVATE_ONLY needs webserverAllowedFrom: who may reach it on 443.
    webserver_access_mode: str = "PUBLIC_ONLY"
    webserver_allowed_from: tuple[str, ...] = ()
    airflow_api_role: str = "User"
    existing_vpc: ExistingVpc | None = None
    nat_gateways: int = 1
    # Member accounts whose events the hub handles; each gets its own stack (AIOpsMember-<account>) with
    # the remediation roles, runbooks and forwarding rules. The hub account is not one: the hub stack
    # holds its own.
    member_account_ids: tuple[str, ...] = ()
    # The hub's account, which the member stacks trust; needed only with member accounts, and only when
    # the synth has no credentials (under `cdk deploy` it is the credentials' account).
    hub_account_id: str = ""
    # Which accounts are production, and which are known not to be: the hub refuses to synth until
    # productionAccountIds is given (it may be given empty). An untagged resource in an account in
    # neither list is treated as production (needs a human).
    production_account_ids: tuple[str, ...] | None = None
    non_production_account_ids: tuple[str, ...] = ()
    # Config rules (by name) the organisation already has in every member account: the member stack
    # does not create them again.
    existing_config_rules: tuple[str, ...] = ()
    # The Regions AIOps covers, the hub's among them; empty: the hub's Region only. Every other Region
    # gets one AIOpsRegion-<account>-<region> stack per account (the hub's and each member's), whose rules
    # forward the catalogue's events to the hub's bus in the hub's Region.
    regions: tuple[str, ...] = ()
    # The hub's Region, which the regional stacks forward to; needed only with other Regions, and only
    # when the synth has no credentials (under `cdk deploy` it is the CLI's Region).
    hub_region_name: str = ""
    snapshot_retention_days: int = 7
    # How long S3 Object Lock (compliance mode) keeps each audit record's copy: nobody, root included,
    # can delete or shorten it before then. ~7 years by default.
    audit_archive_retention_days: int = 2557
    alarm_email: str = ""
    # The trigger Lambda's reserved concurrency; 0: none (a new account's quota of 10 leaves no room to
    # reserve any: Lambda keeps 10 unreserved).
    trigger_reserved_concurrency: int = 0
    extra_airflow_options: dict[str, str] = field(default_factory=dict)
    # Who may decide approval requests: the Airflow user names MWAA gives their IAM principals (the
    # AirflowIdentity of CreateWebLoginToken, e.g. assumed-role/AIOpsApprover/alice). Empty: nobody.
    approvers: tuple[str, ...] = ()
    # A custom Airflow role granted approve_remediation (DAG-level access control); empty: none.
    approver_role: str = ""
    # Distinct approvers a production target needs.
    production_approvals: int = 1
    # The trigger Lambda's Airflow user name: runs it starts were requested by "automated".
    service_users: tuple[str, ...] = ()

    def hub_account(self, credentials_account: str | None) -> str | None:
        """The hub's account id for the member stacks: the account of the deploying credentials
        (``CDK_DEFAULT_ACCOUNT``, set by the cdk CLI) or ``hubAccountId``; they must agree. None when
        neither is known, which only a synth without member accounts may be."""
        account = self.hub_account_id or credentials_account or None
        if self.hub_account_id and credentials_account and credentials_account != self.hub_account_id:
            raise ConfigError(
                f"context hubAccountId: {self.hub_account_id}, but the credentials are for account "
                f"{credentials_account}; deploy the hub with credentials for its own account"
            )
        if account in self.member_account_ids:
            raise ConfigError(
                f"context memberAccountIds: {account} is the hub account: the "
                "hub stack already holds its remediation roles, runbooks and rules; list only the other "
                "accounts"
            )
        if len(self.regions) > 1 and account is None:
            raise ConfigError(
                "context hubAccountId: the hub account's regional stacks need the hub's account id: "
                "deploy with the hub's credentials (cdk sets CDK_DEFAULT_ACCOUNT) or give "
                "-c hubAccountId=<12 digits>"
            )
        if self.member_account_ids and account is None:
            raise ConfigError(
                "context hubAccountId: the member stacks trust the hub's execution role, so they need the "
                "hub's account id: deploy with the hub's credentials (cdk sets CDK_DEFAULT_ACCOUNT) or give "
                "-c hubAccountId=<12 digits>"
            )
        return account

    def hub_region(self, credentials_region: str | None) -> str | None:
        """The hub's Region: the deploying CLI's (``CDK_DEFAULT_REGION``) or ``hubRegion``; they must
        agree, and it must be one of ``regions`` when those are given. None when neither is known, which
        only a synth without ``regions`` may be."""
        region = self.hub_region_name or credentials_region or None
        if self.hub_region_name and credentials_region and credentials_region != self.hub_region_name:
            raise ConfigError(
                f"context hubRegion: {self.hub_region_name}, but the CLI deploys to {credentials_region}; "
                "deploy the hub in its own Region"
            )
        if self.regions and region is None:
            raise ConfigError(
                "context hubRegion: the regional stacks forward events to the hub's bus in the hub's Region, "
                "so they need it: deploy with a Region (cdk sets CDK_DEFAULT_REGION) or give "
                "-c hubRegion=<region>"
            )
        if self.regions and region not in self.regions:
            raise ConfigError(
                f"context regions: {','.join(self.regions)} leaves out the hub's Region {region}; list it too"
            )
        return region

    def extra_regions(self, hub_region: str | None) -> tuple[str, ...]:
        """The Regions besides the hub's, each with its regional stacks, in the order given."""
        return tuple(region for region in self.regions if region != hub_region)

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
        micro = config.environment_class == MICRO_CLASS
        sizes = {"max_workers": 1 if micro else 5, "schedulers": 1 if micro else 2}
        return replace(config, **{key: value for key, value in sizes.items() if getattr(config, key) is None})

    def _check(self) -> None:
        def fail(key: str, why: str) -> None:
            raise ConfigError(f"context {key}: {why}")

        if not re.fullmatch(r"[A-Za-z][0-9A-Za-z_-]{0,79}", self.environment_name):
            fail("environmentName", "letters, digits, - and _, starting with a letter, at most 80")
        if self.environment_class not in ENVIRONMENT_CLASSES:
            fail("environmentClass", f"{self.environment_class!r} is not one of {ENVIRONMENT_CLASSES}")
        micro = self.environment_class == MICRO_CLASS
        max_workers = self.max_workers if self.max_workers is not None else (1 if micro else 5)
        if not 1 <= self.min_workers <= max_workers:
            fail(
                "minWorkers/maxWorkers",
                f"need 1 <= minWorkers ({self.min_workers}) <= maxWorkers ({max_workers})",
            )
        if micro and max_workers != 1:
            fail("maxWorkers", "mw1.micro runs exactly one worker (minWorkers = maxWorkers = 1)")
        if self.schedulers is not None:
            if micro and self.schedulers != 1:
                fail("schedulers", "mw1.micro runs exactly one scheduler")
            if not micro and not 2 <= self.schedulers <= 5:
                fail("schedulers", f"{self.environment_class} runs 2 to 5 schedulers")
        if self.webserver_access_mode not in WEBSERVER_ACCESS_MODES:
            fail(
                "webserverAccessMode",
                f"{self.webserver_access_mode!r} is not one of {WEBSERVER_ACCESS_MODES}",
            )
        for source in self.webserver_allowed_from:
            if not _is_webserver_source(source):
                fail(
                    "webserverAllowedFrom",
                    f"{source!r} is not an IPv4 CIDR, a prefix list (pl-...) or a security group (sg-...)",
                )
        if self.webserver_access_mode == "PRIVATE_ONLY" and not self.webserver_allowed_from:
            fail(
                "webserverAllowedFrom",
                "a PRIVATE_ONLY webserver needs the CIDR, prefix list or security group "
                "its approvers come from (e.g. the VPN's 10.0.0.0/8); or use webserverAccessMode=PUBLIC_ONLY",
            )
        if self.webserver_access_mode == "PUBLIC_ONLY" and self.webserver_allowed_from:
            fail(
                "webserverAllowedFrom",
                "applies to PRIVATE_ONLY only: a PUBLIC_ONLY webserver is reached "
                "through MWAA's public endpoint, with an IAM-signed login",
            )
        if not 0 <= self.trigger_reserved_concurrency <= 1000:
            fail("triggerReservedConcurrency", "0 (none) to 1000")
        try:
            check_airflow_options({k: v for k, v in self.extra_airflow_options.items() if v != ""})
        except ConfigError as exc:
            fail("airflowConfigurationOptions", str(exc))
        if self.airflow_api_role not in AIRFLOW_API_ROLES:
            fail("airflowApiRole", f"{self.airflow_api_role!r} is not one of {AIRFLOW_API_ROLES}")
        if self.approver_role in BUILT_IN_AIRFLOW_ROLES:
            fail(
                "approverRole",
                f"{self.approver_role!r} is a built-in Airflow role (it already reaches every DAG, and the "
                "trigger Lambda acts as one): name a custom role for the approvers",
            )
        both = sorted(set(self.approvers) & set(self.service_users))
        if both:
            fail("approvers", f"{both} also start runs for the platform (serviceUsers) and may not decide")
        if "automated" in self.approvers:
            fail("approvers", "'automated' is the platform's own name and cannot decide")
        if not 1 <= self.production_approvals <= 5:
            fail("productionApprovals", "1 to 5 distinct approvers")
        for key, accounts in (
            ("memberAccountIds", self.member_account_ids),
            ("productionAccountIds", self.production_account_ids or ()),
            ("nonProductionAccountIds", self.non_production_account_ids),
        ):
            bad = [a for a in accounts if not _ACCOUNT.match(a)]
            if bad:
                fail(key, f"not 12-digit account ids: {bad}")
        bad = [r for r in (*self.regions, self.hub_region_name) if r and not _REGION.match(r)]
        if bad:
            fail("regions" if set(bad) & set(self.regions) else "hubRegion", f"not AWS Region names: {bad}")
        repeated = sorted({r for r in self.regions if self.regions.count(r) > 1})
        if repeated:
            fail("regions", f"{repeated} listed more than once")
        if self.hub_account_id and not _ACCOUNT.match(self.hub_account_id):
            fail("hubAccountId", f"{self.hub_account_id!r} is not a 12-digit account id")
        both = sorted(set(self.production_account_ids or ()) & set(self.non_production_account_ids))
        if both:
            fail("nonProductionAccountIds", f"{both} are also in productionAccountIds")
        if not 0 <= self.nat_gateways <= 3:
            fail("natGateways", "0 to 3")
        if not 1 <= self.audit_archive_retention_days <= 36500:
            fail("auditArchiveRetentionDays", "1 to 36500 days (compliance mode: it cannot be shortened)")
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

    def hub_production_accounts(self) -> tuple[str, ...]:
        """The production accounts, for the hub; a ConfigError naming the option when nobody said which
        they are (the hub must not fail open by default)."""
        if self.production_account_ids is None:
            raise ConfigError(
                "context productionAccountIds: required to deploy the hub: list the production account "
                "ids (comma-separated), or give it empty ('') if no account is production as a whole; "
                "untagged resources in accounts not listed in nonProductionAccountIds are treated as "
                "production either way"
            )
        return self.production_account_ids


def _option_constraints() -> tuple[dict[str, Any], dict[str, Any]]:
    """What MWAA's CreateEnvironment accepts for an Airflow configuration option's key and value, from
    botocore's own model of the MWAA API."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("mwaa")
    options = model.operation_model("CreateEnvironment").input_shape.members["AirflowConfigurationOptions"]
    return dict(options.key.metadata), dict(options.value.metadata)


def check_airflow_options(options: dict[str, Any]) -> None:
    """Every key and (resolved) value of ``options`` as MWAA's API accepts them: keys ``section.key``
    in lower case, values 1 to 65,536 printable ASCII characters. Values that are CloudFormation tokens
    (resolved at deploy time) are checked by their kind only. Raises ``ConfigError`` naming the option."""
    import aws_cdk as cdk

    key_rule, value_rule = _option_constraints()
    for key, value in options.items():
        if not (key_rule["min"] <= len(key) <= key_rule["max"]) or not re.fullmatch(key_rule["pattern"], key):
            raise ConfigError(
                f"option {key!r}: MWAA needs a key of {key_rule['min']} to {key_rule['max']} characters "
                f"matching {key_rule['pattern']} (section.key, lower case)"
            )
        if "." not in key:
            raise ConfigError(f"option {key!r}: MWAA needs section.key")
        if not isinstance(value, str):
            raise ConfigError(f"option {key!r}: value {value!r} is not a string")
        if cdk.Token.is_unresolved(value):
            continue
        if not value_rule["min"] <= len(value) <= value_rule["max"]:
            raise ConfigError(
                f"option {key!r}: value of {len(value)} characters; MWAA takes {value_rule['min']} "
                f"to {value_rule['max']} (leave an empty option out)"
            )
        if not re.fullmatch(value_rule["pattern"], value):
            raise ConfigError(
                f"option {key!r}: value {value!r} has characters MWAA refuses "
                f"(printable ASCII only: {value_rule['pattern']})"
            )


def _is_webserver_source(source: str) -> bool:
    """An IPv4 CIDR, a managed prefix list id or a security group id."""
    if re.fullmatch(r"pl-[0-9a-f]{8,17}|sg-([0-9a-f]{8}|[0-9a-f]{17})", source):
        return True
    try:
        return "/" in source and ipaddress.IPv4Network(source, strict=True) is not None
    except ValueError:
        return False


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
    "webserverAllowedFrom": ("webserver_allowed_from", _csv),
    "triggerReservedConcurrency": ("trigger_reserved_concurrency", _int),
    "airflowApiRole": ("airflow_api_role", str),
    "existingVpc": ("existing_vpc", _existing_vpc),
    "natGateways": ("nat_gateways", _int),
    "memberAccountIds": ("member_account_ids", _csv),
    "hubAccountId": ("hub_account_id", str),
    "productionAccountIds": ("production_account_ids", _csv),
    "nonProductionAccountIds": ("non_production_account_ids", _csv),
    "existingConfigRules": ("existing_config_rules", _csv),
    "regions": ("regions", _csv),
    "hubRegion": ("hub_region_name", str),
    "snapshotRetentionDays": ("snapshot_retention_days", _int),
    "auditArchiveRetentionDays": ("audit_archive_retention_days", _int),
    "alarmEmail": ("alarm_email", str),
    "airflowConfigurationOptions": ("extra_airflow_options", _options),
    "approvers": ("approvers", _csv),
    "approverRole": ("approver_role", str),
    "productionApprovals": ("production_approvals", _int),
    "serviceUsers": ("service_users", _csv),
}
