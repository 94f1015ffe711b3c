"""Runtime settings, read from ``AIOPS_*`` environment variables with production-sensible defaults.

On MWAA the startup script exports these; locally the Makefile and tests set them. They are grouped by
area, so a module reads only its own: ``settings.platform`` (where the hub's tables, bucket and topic
are), ``settings.safety``, ``settings.airflow``, ``settings.ssm``, ``settings.ingress`` and
``settings.maintenance``. Each field is the environment variable ``AIOPS_<FIELD NAME>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, ClassVar


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Platform:
    """The hub's own resources: names match the infra's."""

    region: str = "us-east-1"
    audit_table: str = "AutomationAuditLog"
    approvals_table: str = "AIOpsApprovals"
    # Idempotency claims, per-resource locks, cooldown history and the exemption list share one table.
    state_table: str = "AIOpsRemediationState"
    findings_table: str = "AIOpsSecurityHubFindings"
    anomaly_state_table: str = "AIOpsAnomalyState"
    diagnostics_bucket: str = "aiops-diagnostics"
    # Object Lock (compliance mode) copy of every audit record, written by the audit writer.
    audit_archive_bucket: str = "aiops-audit-archive"
    # The role the audit writer assumes for its puts and copies (the only principal the audit table lets
    # put); empty: the worker's own credentials, as locally.
    audit_writer_role_arn: str = ""
    sns_topic_arn: str = ""  # empty: arn:aws:sns:<region>:<account>:<sns_topic_name>
    sns_topic_name: str = "AIOpsNotifications"
    # Airflow connection (type slackwebhook) that approval requests, failures, expired approvals,
    # escalations and incidents are also posted to; empty: the SNS topic only.
    slack_conn_id: str = ""
    # SES identity (verified in the hub's account and region) that emails a resource's owner, e.g. the
    # owner of an access key AIOps disabled; empty: owners are told through the SNS topic.
    owner_email_sender: str = ""
    # Role assumed for the action in the event's account; empty: use the worker's own credentials.
    # Placeholders: {account}, {remediation}.
    remediation_role_arn_template: str = ""
    # The Regions AIOps covers, the hub's among them (the deployment's context ``regions``); empty: the
    # hub's Region only. alarm_sync keeps the alarms in each of them, in every account.
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Safety:
    """What decides whether a change may happen now, and whether a human must approve it."""

    production_accounts: tuple[str, ...] = ()
    # Accounts known to be non-production. An untagged resource anywhere else (an account of unknown
    # class) is treated as production: a missing tag never lets a change through without a human.
    non_production_accounts: tuple[str, ...] = ()
    production_tag_key: str = "Environment"
    production_tag_values: tuple[str, ...] = ("prod", "production")
    exempt_tag_key: str = "aiops:exempt"
    approval_timeout_minutes: float = 60.0
    approval_poke_seconds: float = 30.0
    cooldown_minutes: float = 30.0
    # More actions than this on one resource within flap_window_hours: stop and escalate to a human.
    max_actions_per_window: int = 3
    flap_window_hours: float = 24.0
    lock_ttl_minutes: float = 120.0
    # Who may decide an approval request: Airflow user names (the UI login; on MWAA the IAM-mapped name).
    # Empty: nobody, so every decision is refused until the group is configured.
    approvers: tuple[str, ...] = ()
    # The Airflow role granted (only) the right to trigger approve_remediation; empty: no DAG-level
    # access control. A task cannot read a user's roles, so the decision itself checks ``approvers``.
    approver_role: str = ""
    # A decision whose run no authenticated user started (an `airflow dags trigger` on the CLI, which
    # records the OS user name) is refused unless this is true.
    allow_unauthenticated_decisions: bool = False
    # Distinct approvers a production target needs (2: four eyes).
    production_approvals: int = 1
    # Airflow users that are the platform itself (the ingress's API user; on MWAA the trigger Lambda's
    # IAM-mapped user): runs they start were requested by "automated", whatever their conf says.
    service_users: tuple[str, ...] = ()
    # audit_reconciler leaves a claim younger than this alone: the run's own audit step (and its retries)
    # goes first. See matcarv_aiops.reconcile for when an older claim counts as stuck.
    reconcile_grace_minutes: float = 15.0
    # The longest an exemption may last (``aiops exempt add --expires``): every exemption lapses.
    exemption_max_days: float = 90.0


@dataclass(frozen=True)
class AirflowSettings:
    """The Airflow the DAGs run in: where its UI is, and how crashed tasks are retried."""

    airflow_base_url: str = "http://localhost:8080"
    # Retries for a crashed task (AWS errors the SDK's own retries did not absorb).
    task_retries: int = 2
    task_retry_delay_seconds: float = 30.0


@dataclass(frozen=True)
class SsmSettings:
    """SSM Automation documents run on SSM ("aws") or, where there is no Automation API (moto, the local
    stack), with the local emulator ("local"). Empty dirs: the repository's ssm/ and a temp directory."""

    ssm_backend: str = "aws"
    # AIOpsSSMAutomationRole, passed to documents as AutomationAssumeRole; {account} is the target's.
    ssm_automation_role_arn: str = ""
    ssm_documents_dir: str = ""
    ssm_local_state_dir: str = ""
    ssm_poll_seconds: float = 5.0
    ssm_retry_seconds: float = 2.0


@dataclass(frozen=True)
class IngressSettings:
    """How the trigger Lambda starts DAG runs: "mwaa" (InvokeRestApi) or "local" (the REST API v2 of
    `airflow standalone` at airflow_base_url, with these credentials)."""

    trigger_backend: str = "mwaa"
    mwaa_environment_name: str = ""
    airflow_api_username: str = "admin"
    airflow_api_password: str = ""
    # Whose events are handled: the hub's account and its members; neither set: every account's.
    hub_account: str = ""
    member_accounts: tuple[str, ...] = ()
    # Queues of kept events that `aiops redrive` and the Lambda's scheduled redrive replay: the trigger's
    # on-failure destination and the rule targets' dead-letter queue.
    redrive_queue_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaintenanceSettings:
    """The scheduled maintenance jobs."""

    snapshot_retention_days: int = 30
    # Airflow connection of the Slack incoming webhook (conn type slackwebhook) for the cost report.
    slack_webhook_conn_id: str = "slack_aiops"
    cost_report_top_anomalies: int = 10
    access_key_max_age_days: int = 90
    # A deactivated key is deleted (with approval) only after this many days inactive.
    access_key_grace_days: int = 14
    # Rotated keys go to the Secrets Manager secret <prefix><user name>, where their consumers read them.
    access_key_secret_prefix: str = "aiops/iam-access-keys/"
    # Metrics the anomaly model watches, comma-separated: Namespace|MetricName|Dim=Value;Dim=Value|Stat
    anomaly_metrics: tuple[str, ...] = ()
    anomaly_period_seconds: int = 300
    # Points scoring at least this are anomalies; 0: the model's own ALERT_THRESHOLD.
    anomaly_threshold: float = 0.0
    # How far back a series nobody has scored yet starts (the model warms up on a day).
    anomaly_first_lookback_hours: float = 24.0
    anomaly_metric_namespace: str = "AIOps/Anomaly"
    # alarm_sync: entries whose alarm every resource of the kind gets (unless tagged aiops:managed=false);
    # for the others a resource opts in with the tag aiops:managed=true.
    alarm_sync_every_resource_of: tuple[str, ...] = ()
    # Role each job acts with (its declared PERMISSIONS), assumed from the execution role; empty: the
    # worker's own credentials. Placeholders: {account} (the hub's, the worker's own), {job} (the DAG id).
    maintenance_role_arn_template: str = ""


class Settings:
    """Every setting, by area. ``Settings(audit_table=...)`` builds one from flat names (tests, scripts);
    ``Settings.from_env()`` reads the ``AIOPS_*`` variables."""

    AREAS: ClassVar[dict[str, type]] = {
        "platform": Platform,
        "safety": Safety,
        "airflow": AirflowSettings,
        "ssm": SsmSettings,
        "ingress": IngressSettings,
        "maintenance": MaintenanceSettings,
    }
    platform: Platform
    safety: Safety
    airflow: AirflowSettings
    ssm: SsmSettings
    ingress: IngressSettings
    maintenance: MaintenanceSettings

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.names())
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        for area, cls in self.AREAS.items():
            own = {f.name: values[f.name] for f in fields(cls) if f.name in values}
            object.__setattr__(self, area, cls(**own))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("settings are read-only")

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{area}={getattr(self, area)!r}' for area in self.AREAS)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and all(getattr(self, a) == getattr(other, a) for a in self.AREAS)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, a) for a in self.AREAS))

    @classmethod
    def names(cls) -> dict[str, Any]:
        """Every setting's flat name and default, across the areas."""
        return {f.name: f.default for area in cls.AREAS.values() for f in fields(area)}

    def as_flat(self) -> dict[str, Any]:
        return {
            f.name: getattr(getattr(self, area), f.name)
            for area, cls in self.AREAS.items()
            for f in fields(cls)
        }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, default in cls.names().items():
            raw = env.get(f"AIOPS_{name.upper()}")
            if raw is None:
                continue
            try:
                if isinstance(default, tuple):
                    values[name] = _csv(raw)
                elif isinstance(default, bool):
                    values[name] = raw.lower() in ("1", "true", "yes")
                elif isinstance(default, int):
                    values[name] = int(raw)
                elif isinstance(default, float):
                    values[name] = float(raw)
                else:
                    values[name] = raw
            except ValueError as exc:
                kind = type(default).__name__
                raise ValueError(f"setting AIOPS_{name.upper()}={raw!r} is not a valid {kind}") from exc
        if "region" not in values and env.get("AWS_DEFAULT_REGION"):
            values["region"] = env["AWS_DEFAULT_REGION"]
        return cls(**values)


@cache
def get_settings() -> Settings:
    return Settings.from_env()


def reload_settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()
