"""alarm_sync: keep the source alarms of the catalogue's metric entries in step with the catalogue.

For every resource that opts in (tag ``aiops:managed=true``; or, for an entry named in
``AIOPS_ALARM_SYNC_EVERY_RESOURCE_OF``, every resource of its kind not tagged ``aiops:managed=false``) it
creates or updates the alarm ``AIOps-<entry>-<resource>`` from the entry's ``metric_alarm`` trigger
condition: the same data the entry's EventBridge pattern is generated from, so an alarm it makes is one
the pattern matches (checked here, before any alarm is written). Alarms of that name whose resource is
gone or opted out are deleted; an alarm whose name does not start ``AIOps-<syncable entry>-`` is never
touched.

Which resource an entry's alarm watches, and under which dimension, comes from the entry's first target:
the dimension its path reads, and the ARN template the dimension's value fills (inverted here to read
the value back from a resource's ARN). Entries on agent metrics (CWAgent) are not synced: the agent's
dimensions are its own configuration, which no AWS API returns.

Calls are bounded: one paged Resource Groups Tagging API listing for every kind it supports (100 ARNs a
page), DescribeAutoScalingGroups (tag-filtered, 100 a page) for Auto Scaling groups, which GetResources
does not return; DescribeAlarms paged by the name prefix (100 a page); PutMetricAlarm only for an alarm
that is missing or differs; DeleteAlarms 100 names a call. Nothing is written until every listing is
complete, so a failed listing deletes nothing. Each run writes one audit record with its counts.

Every account and Region: the hub's account and each of ``AIOPS_MEMBER_ACCOUNTS``, in each of
``AIOPS_REGIONS`` (default: the hub's Region), one after the other, each with the job's role
``AIOpsMaintenance-alarm_sync`` in that account (``Clients.at``), so an alarm is made in its resource's own
account and Region (a CloudWatch alarm lives with its metric). Route 53 health checks are global and their
metrics are in us-east-1 only: their alarms are kept there, and deleted anywhere else. The calls above are
per account and Region. One that fails (its role missing, access denied) does not stop the others: the
run's one audit record names it and the error, its outcome is FAILURE, and the run fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from matcarv_aiops.aws import hub_account
from matcarv_aiops.catalogue import (
    ALARM_DETAIL_TYPE,
    ALARM_SOURCE,
    CatalogueEntry,
    MetricAlarmCondition,
    catalogue,
)
from matcarv_aiops.ingress.patterns import mismatch
from matcarv_aiops.maintenance.common import (
    Clients,
    JobFailed,
    JobPermissions,
    RunInfo,
    audit,
    audit_writer,
    chunked,
)
from matcarv_aiops.models import Outcome
from matcarv_aiops.settings import Settings

JOB = "alarm_sync"
ALARM_PREFIX = "AIOps-"
MANAGED_TAG = "aiops:managed"
# Every AWS call the job makes (its role AIOpsMaintenance-alarm_sync is generated from this).
PERMISSIONS = JobPermissions(
    actions=(
        "tag:GetResources",
        "autoscaling:DescribeAutoScalingGroups",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DeleteAlarms",
        # listing every resource of a kind, for the entries in AIOPS_ALARM_SYNC_EVERY_RESOURCE_OF
        "ec2:DescribeInstances",
        "sqs:ListQueues",
        "lambda:ListFunctions",
        "dynamodb:ListTables",
        "sns:ListTopics",
        "elasticloadbalancing:DescribeLoadBalancers",
        "route53:ListHealthChecks",
    ),
    # Resources opt in wherever they are: the role AIOpsMaintenance-alarm_sync is in every member account
    # too, and names every Region.
    every_account_and_region=True,
)
PAGE = 100  # GetResources, DescribeAutoScalingGroups and DescribeAlarms pages; DeleteAlarms names a call
_DIMENSION_PATH = re.compile(r"^detail\.configuration\.metrics\[\]\.metricStat\.metric\.dimensions\.(\w+)$")
# Kinds GetResources does not return (AWS's list of supported services says so for Auto Scaling groups).
_NOT_IN_TAGGING_API = {"autoscaling:autoScalingGroup"}
# The alarm's own settings, beyond the condition: missing data (a stopped instance, an idle queue) is
# not a problem to remediate.
TREAT_MISSING_DATA = "notBreaching"
# Route 53 publishes its health checks' metrics in US East (N. Virginia) only; an alarm elsewhere would
# never have data.
GLOBAL_METRICS_REGION = "us-east-1"


@dataclass(frozen=True)
class AlarmSource:
    """How one catalogue entry's alarm is made: its condition, and the resource its first target names."""

    entry: CatalogueEntry
    condition: MetricAlarmCondition
    dimension: str
    kind: str  # "ec2:instance", "sqs", ...: GetResources' ResourceTypeFilters form
    _arn: re.Pattern[str]
    # A global resource's (its ARN names no Region: Route 53 health checks) metrics, and so its alarm, are in
    # GLOBAL_METRICS_REGION only.
    regional: bool = True

    def kept_in(self, region: str) -> bool:
        """Whether this entry's alarms live in ``region``."""
        return self.regional or region == GLOBAL_METRICS_REGION

    def dimension_value(self, arn: str) -> str | None:
        found = self._arn.fullmatch(arn)
        return found.group("value") if found else None

    def alarm_name(self, value: str) -> str:
        return f"{ALARM_PREFIX}{self.entry.id}-{value}"

    def alarm(self, value: str) -> dict[str, Any]:
        """PutMetricAlarm's arguments for the resource whose dimension is ``value``."""
        condition = self.condition
        dimensions = [{"Name": self.dimension, "Value": value}]
        request: dict[str, Any] = {
            "AlarmName": self.alarm_name(value),
            "AlarmDescription": (
                f"Managed by AIOps alarm_sync from catalogue entry {self.entry.id}: {condition.describe()}. "
                f"Edits are overwritten within the hour; tag the resource {MANAGED_TAG}=false to remove it."
            ),
            "ActionsEnabled": True,  # EventBridge receives the state change whatever the actions
            "EvaluationPeriods": condition.evaluation_periods,
            "Threshold": float(condition.threshold),
            "ComparisonOperator": condition.comparison,
            "TreatMissingData": TREAT_MISSING_DATA,
        }
        if condition.percent_of:
            request["Metrics"] = _rate_metrics(condition, dimensions)
        else:
            request.update(
                Namespace=condition.namespace,
                MetricName=condition.metric_names[0],
                Dimensions=dimensions,
                Statistic=condition.statistic,
                Period=condition.period_seconds,
            )
        return request


def _rate_metrics(condition: MetricAlarmCondition, dimensions: list[dict[str, str]]) -> list[dict[str, Any]]:
    """A metric math alarm: 100 x the metric / the sum of ``percent_of`` over the same period."""
    ids = {
        name: f"m{i}"
        for i, name in enumerate(dict.fromkeys([*condition.metric_names, *condition.percent_of]))
    }
    queries: list[dict[str, Any]] = [
        {
            "Id": ids[name],
            "MetricStat": {
                "Metric": {"Namespace": condition.namespace, "MetricName": name, "Dimensions": dimensions},
                "Period": condition.period_seconds,
                "Stat": condition.statistic,
            },
            "ReturnData": False,
        }
        for name in ids
    ]
    denominator = " + ".join(ids[name] for name in condition.percent_of)
    queries.append(
        {
            "Id": "rate",
            "Expression": f"100 * {ids[condition.metric_names[0]]} / ({denominator})",
            "Label": f"{condition.metric_names[0]} %",
            "ReturnData": True,
        }
    )
    return queries


def _arn_regex(template: str) -> re.Pattern[str]:
    """The entry's target ARN template, inverted: {region} and {account} any, * any, {value} captured."""
    parts = re.split(r"(\{region\}|\{account\}|\{value\}|\*)", template)
    pattern = ""
    for part in parts:
        if part in ("{region}", "{account}", "*"):
            pattern += r"[^:]*"
        elif part == "{value}":
            pattern += r"(?P<value>.+)"
        else:
            pattern += re.escape(part)
    return re.compile(pattern)


def _kind(template: str) -> str:
    """GetResources' type filter for an ARN template: the service, and the type if the ARN has one."""
    fields = template.split(":", 5)
    service, resource = fields[2], fields[5]
    if resource.startswith("{value}"):
        return service
    return f"{service}:{re.split(r'[/:]', resource, maxsplit=1)[0]}"


def alarm_sources(entries: dict[str, CatalogueEntry] | None = None) -> dict[str, AlarmSource]:
    """Every entry whose alarm alarm_sync keeps, by entry id."""
    sources = {}
    for entry in (entries or catalogue()).values():
        conditions = [c for c in entry.trigger_conditions if isinstance(c, MetricAlarmCondition)]
        if not conditions or not conditions[0].namespace.startswith("AWS/"):
            continue  # no alarm, or an agent metric whose dimensions only the agent's configuration knows
        target = entry.targets[0]
        found = _DIMENSION_PATH.match(target.paths[0])
        if found is None:
            continue
        sources[entry.id] = AlarmSource(
            entry,
            conditions[0],
            found.group(1),
            _kind(target.arn),
            _arn_regex(target.arn),
            regional=bool(target.arn.split(":")[3]),
        )
    return sources


def alarm_event(request: dict[str, Any], *, account: str, region: str) -> dict[str, Any]:
    """The "CloudWatch Alarm State Change" event the alarm ``request`` sends when it goes to ALARM."""
    if "Metrics" in request:
        metrics = [
            {
                "id": query["Id"],
                **(
                    {"expression": query["Expression"], "label": query.get("Label", "")}
                    if "Expression" in query
                    else {
                        "metricStat": {
                            "metric": {
                                "namespace": query["MetricStat"]["Metric"]["Namespace"],
                                "name": query["MetricStat"]["Metric"]["MetricName"],
                                "dimensions": {
                                    d["Name"]: d["Value"] for d in query["MetricStat"]["Metric"]["Dimensions"]
                                },
                            },
                            "period": query["MetricStat"]["Period"],
                            "stat": query["MetricStat"]["Stat"],
                        }
                    }
                ),
                "returnData": query["ReturnData"],
            }
            for query in request["Metrics"]
        ]
    else:
        metrics = [
            {
                "id": "m1",
                "metricStat": {
                    "metric": {
                        "namespace": request["Namespace"],
                        "name": request["MetricName"],
                        "dimensions": {d["Name"]: d["Value"] for d in request["Dimensions"]},
                    },
                    "period": request["Period"],
                    "stat": request["Statistic"],
                },
                "returnData": True,
            }
        ]
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "source": ALARM_SOURCE,
        "detail-type": ALARM_DETAIL_TYPE,
        "account": account,
        "region": region,
        "time": "2026-01-01T00:00:00Z",
        "resources": [f"arn:aws:cloudwatch:{region}:{account}:alarm:{request['AlarmName']}"],
        "detail": {
            "alarmName": request["AlarmName"],
            "state": {"value": "ALARM", "reason": "alarm_sync", "timestamp": "2026-01-01T00:00:00Z"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-01-01T00:00:00Z"},
            "configuration": {"description": request.get("AlarmDescription", ""), "metrics": metrics},
        },
    }


def matching_source(
    candidates: list[AlarmSource], value: str, region: str
) -> tuple[AlarmSource, dict[str, Any]] | None:
    """The one entry whose pattern takes this resource's alarm (e.g. a queue's depth alarm goes to the
    dead-letter entry or the other by the queue's name), with the alarm; None if no pattern takes it."""
    for source in candidates:
        request = source.alarm(value)
        if (
            mismatch(source.entry.trigger, alarm_event(request, account="000000000000", region=region))
            is None
        ):
            return source, request
    return None


# --- comparing the alarm in CloudWatch with the one wanted --------------------------------------------
_COMPARED = (
    "AlarmDescription",
    "ActionsEnabled",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "Namespace",
    "MetricName",
    "Statistic",
    "Period",
)


def _metric_query(query: dict[str, Any]) -> tuple:
    stat = query.get("MetricStat")
    if stat:
        metric = stat["Metric"]
        dims = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
        return (query["Id"], metric["Namespace"], metric["MetricName"], dims, stat["Period"], stat["Stat"])
    return (query["Id"], query.get("Expression"), query.get("ReturnData", True))


def _shape(alarm: dict[str, Any]) -> tuple:
    """What decides whether an alarm must be rewritten, in a form both a request and DescribeAlarms give."""
    values = tuple(alarm.get(key) for key in _COMPARED)
    dims = tuple(sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions", []) or []))
    metrics = tuple(_metric_query(q) for q in alarm.get("Metrics", []) or [])
    actions = tuple(alarm.get(key) or () for key in ("AlarmActions", "OKActions", "InsufficientDataActions"))
    return (*values, dims, metrics, *actions)


def differs(wanted: dict[str, Any], existing: dict[str, Any]) -> bool:
    wanted = {**wanted, "Threshold": float(wanted["Threshold"])}
    existing = {**existing, "Threshold": float(existing.get("Threshold", 0.0))}
    return _shape(wanted) != _shape(existing)


# --- listing ---------------------------------------------------------------------------------------
@dataclass
class Calls:
    """API calls made by one run, by operation (the benchmark's figure)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, operation: str) -> None:
        self.counts[operation] = self.counts.get(operation, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _pages(client: Any, operation: str, calls: Calls, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        calls.add(operation)
        yield page


def _tag_value(tags: list[dict[str, str]], key: str = MANAGED_TAG) -> str | None:
    return next((t.get("Value", "") for t in tags if t.get("Key") == key), None)


# Every resource of a kind, for the entries that take every resource: operation, arguments and the ARNs
# (or, for kinds whose listing gives no ARN, the dimension values) on one page.
_Lister = tuple[str, str, dict[str, Any], Callable[[dict[str, Any]], list[str]]]
_EVERY: dict[str, _Lister] = {
    "ec2:instance": (
        "ec2",
        "describe_instances",
        {
            "Filters": [
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}
            ]
        },
        lambda page: [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]],
    ),
    "sqs": ("sqs", "list_queues", {}, lambda page: [u.rsplit("/", 1)[1] for u in page.get("QueueUrls", [])]),
    "lambda:function": (
        "lambda",
        "list_functions",
        {},
        lambda page: [f["FunctionName"] for f in page["Functions"]],
    ),
    "dynamodb:table": ("dynamodb", "list_tables", {}, lambda page: list(page.get("TableNames", []))),
    "sns": ("sns", "list_topics", {}, lambda page: [t["TopicArn"].rsplit(":", 1)[1] for t in page["Topics"]]),
    "elasticloadbalancing:loadbalancer": (
        "elbv2",
        "describe_load_balancers",
        {},
        lambda page: [
            lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]
            for lb in page["LoadBalancers"]
            if lb.get("Type") == "application"
        ],
    ),
    "route53:healthcheck": (
        "route53",
        "list_health_checks",
        {},
        lambda page: [h["Id"] for h in page["HealthChecks"]],
    ),
}


@dataclass
class Inventory:
    """Resources by kind (dimension values): opted in by tag, listed whole (for the entries that take
    every resource), and opted out by tag."""

    tagged: dict[str, set[str]] = field(default_factory=dict)
    listed: dict[str, set[str]] = field(default_factory=dict)
    opted_out: dict[str, set[str]] = field(default_factory=dict)

    def add_tagged(self, kind: str, value: str, managed: str | None) -> None:
        if managed == "true":
            self.tagged.setdefault(kind, set()).add(value)
        elif managed is not None:
            self.opted_out.setdefault(kind, set()).add(value)

    def add_listed(self, kind: str, value: str) -> None:
        if value not in self.opted_out.get(kind, set()):
            self.listed.setdefault(kind, set()).add(value)

    def wants(self, kind: str, value: str, entry_id: str, every_of: set[str]) -> bool:
        """Whether the resource's alarm for this entry should exist."""
        if value in self.tagged.get(kind, set()):
            return True
        return entry_id in every_of and value in self.listed.get(kind, set())

    def values(self, kind: str) -> set[str]:
        return self.tagged.get(kind, set()) | self.listed.get(kind, set())


def inventory(
    clients: Clients, sources: dict[str, AlarmSource], every_of: set[str], calls: Calls
) -> Inventory:
    """Every opted-in resource, and for the kinds taken whole, every resource not opted out."""
    found = Inventory()
    by_kind: dict[str, list[AlarmSource]] = {}
    for source in sources.values():
        by_kind.setdefault(source.kind, []).append(source)
    whole = {source.kind for source in sources.values() if source.entry.id in every_of}
    tagged = sorted(k for k in by_kind if k not in _NOT_IN_TAGGING_API)
    if tagged:
        values = ["true", "false"] if whole - _NOT_IN_TAGGING_API else ["true"]
        for page in _pages(
            clients("resourcegroupstaggingapi"),
            "get_resources",
            calls,
            TagFilters=[{"Key": MANAGED_TAG, "Values": values}],
            ResourceTypeFilters=tagged,
            ResourcesPerPage=PAGE,
        ):
            for resource in page.get("ResourceTagMappingList", []):
                arn = resource["ResourceARN"]
                for kind in tagged:
                    value = by_kind[kind][0].dimension_value(arn)
                    if value is not None:
                        found.add_tagged(kind, value, _tag_value(resource.get("Tags", [])))
                        break
    groups = "autoscaling:autoScalingGroup"
    if groups in by_kind:
        filters = {} if groups in whole else {"Filters": [{"Name": f"tag:{MANAGED_TAG}", "Values": ["true"]}]}
        for page in _pages(
            clients("autoscaling"),
            "describe_auto_scaling_groups",
            calls,
            PaginationConfig={"PageSize": PAGE},
            **filters,
        ):
            for group in page["AutoScalingGroups"]:
                managed = _tag_value(group.get("Tags", []))
                found.add_tagged(groups, group["AutoScalingGroupName"], managed)
                if managed is None:
                    found.add_listed(groups, group["AutoScalingGroupName"])
    for kind in sorted(whole - {groups}):
        service, operation, kwargs, values_of = _EVERY[kind]
        client = clients(service)
        for page in _pages(client, operation, calls, **kwargs):
            for value in values_of(page):
                found.add_listed(kind, value)
    return found


def existing_alarms(clients: Clients, calls: Calls) -> Iterator[dict[str, Any]]:
    for page in _pages(
        clients("cloudwatch"),
        "describe_alarms",
        calls,
        AlarmNamePrefix=ALARM_PREFIX,
        AlarmTypes=["MetricAlarm"],
        PaginationConfig={"PageSize": PAGE},
    ):
        yield from page.get("MetricAlarms", [])


def _owner(name: str, sources: dict[str, AlarmSource]) -> str | None:
    """The syncable entry an alarm name belongs to (AIOps-<entry>-<resource>), else None: not ours."""
    if not name.startswith(ALARM_PREFIX):
        return None
    entry, sep, resource = name[len(ALARM_PREFIX) :].partition("-")
    return entry if sep and resource and entry in sources else None


# --- the run ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Location:
    """One account and Region the job keeps alarms in."""

    account: str
    region: str

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"


def _regions(settings: Settings) -> tuple[str, ...]:
    """The Regions of the deployment: AIOPS_REGIONS, or the hub's."""
    return settings.platform.regions or (settings.platform.region,)


def locations(settings: Settings) -> list[Location]:
    """Every account (the hub's, then AIOPS_MEMBER_ACCOUNTS) in every Region of the deployment."""
    accounts = dict.fromkeys((hub_account(settings), *settings.ingress.member_accounts))
    return [Location(account, region) for account in accounts for region in _regions(settings)]


COUNTED = ("created", "updated", "unchanged", "deleted")
_SHOWN_LOCATIONS = 10  # the audit record names at most this many accounts/Regions with changes


@dataclass
class LocationResult:
    """What one account and Region's sync did, or why it failed (then nothing after the failure ran)."""

    location: Location
    calls: Calls = field(default_factory=Calls)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    resources: int = 0
    unmatched: int = 0
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            **self.counts,
            "resources": self.resources,
            "calls": dict(self.calls.counts),
            "error": self.error,
        }


def sync_location(
    clients: Clients,
    location: Location,
    sources: dict[str, AlarmSource],
    every_of: set[str],
    *,
    dry_run: bool,
) -> LocationResult:
    """Create, update and delete the catalogue's alarms in one account and Region, with clients acting
    there. Nothing is written until every listing there is complete, so a failed listing deletes nothing.
    An AWS error (the role missing, access denied) ends this location's sync and is returned, not raised."""
    result = LocationResult(location)
    kept_here = {entry_id: s for entry_id, s in sources.items() if s.kept_in(location.region)}
    try:
        found = inventory(clients, kept_here, every_of, result.calls)
        by_kind: dict[str, list[AlarmSource]] = {}
        for source in kept_here.values():
            by_kind.setdefault(source.kind, []).append(source)
        wanted: dict[str, dict[str, Any]] = {}
        for kind, candidates in by_kind.items():
            for value in sorted(found.values(kind)):
                chosen = matching_source(candidates, value, location.region)
                if chosen is None:
                    result.unmatched += 1
                    continue
                source, request = chosen
                if found.wants(kind, value, source.entry.id, every_of):
                    wanted[request["AlarmName"]] = request
        # Every alarm of a syncable entry's name here, so an alarm kept_in elsewhere is deleted here.
        existing = {
            a["AlarmName"]: a
            for a in existing_alarms(clients, result.calls)
            if _owner(a["AlarmName"], sources)
        }
        to_put = [
            r for name, r in sorted(wanted.items()) if name not in existing or differs(r, existing[name])
        ]
        created = sum(1 for r in to_put if r["AlarmName"] not in existing)
        to_delete = sorted(name for name in existing if name not in wanted)
        result.resources = len(wanted)
        result.counts = {
            "created": created,
            "updated": len(to_put) - created,
            "unchanged": len(wanted) - len(to_put),
            "deleted": len(to_delete),
        }
        if not dry_run:
            cloudwatch = clients("cloudwatch")
            for request in to_put:
                cloudwatch.put_metric_alarm(**request)
                result.calls.add("put_metric_alarm")
            for names in chunked(to_delete, PAGE):
                cloudwatch.delete_alarms(AlarmNames=names)
                result.calls.add("delete_alarms")
    except (ClientError, BotoCoreError) as exc:
        written = result.calls.counts.get("put_metric_alarm", 0)
        deleted = result.calls.counts.get("delete_alarms", 0)
        done = f" after {written} alarm writes and {deleted} deletions" if written or deleted else ""
        result.error = f"{_one_line(exc)}{done}"
    return result


def _one_line(exc: Exception) -> str:
    """An AWS error as one line: the SDK's message with its code, or, where the SDK could not parse the
    error body (an XML answer to a JSON API), that body's text without its tags."""
    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Message"):
        error = exc.response["Error"]
        text = f"{exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
    else:
        text = re.sub(r"<[^>]*>", " ", str(exc))
    return " ".join(text.split())[:400]


def _audit_target(settings: Settings) -> str:
    """The alarms the run keeps: the one Region's, or every Region's (``*``); every account's with members."""
    regions = _regions(settings)
    region = regions[0] if len(regions) == 1 else "*"
    account = "*" if settings.ingress.member_accounts else ""
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{ALARM_PREFIX}*"


def sync(settings: Settings, clients: Clients, run: RunInfo, *, dry_run: bool = False) -> dict[str, Any]:
    """Create, update and delete the catalogue's alarms in every account and Region (``locations``), each
    with the job's role there (``clients.at``); one audit record with the counts. A location that fails
    does not stop the others: the record names it and why, its outcome is FAILURE, and the run fails."""
    sources = alarm_sources()
    every_of = set(settings.maintenance.alarm_sync_every_resource_of)
    unknown = sorted(every_of - set(sources))
    target = _audit_target(settings)
    if unknown:
        why = (
            f"AIOPS_ALARM_SYNC_EVERY_RESOURCE_OF names {unknown}, which are not entries whose alarm "
            f"alarm_sync keeps (those are {sorted(sources)}); nothing was changed"
        )
        audit_writer(settings).write(
            audit(
                run,
                key=f"{run.run_id}|sync",
                target=target,
                action=f"refused to sync: {why}",
                outcome=Outcome.FAILURE,
                rollback="nothing to roll back: no alarm was changed",
            )
        )
        raise JobFailed(why)
    results = [
        sync_location(clients.at(place.account, place.region), place, sources, every_of, dry_run=dry_run)
        for place in locations(settings)
    ]
    calls = Calls()
    for result in results:
        for operation, count in result.calls.counts.items():
            calls.counts[operation] = calls.counts.get(operation, 0) + count
    # The totals are those of the places that synced; a failed one says what it did in its error.
    failed = [r for r in results if r.error]
    synced = [r for r in results if not r.error]
    counts = {what: sum(r.counts[what] for r in synced) for what in COUNTED}
    resources = sum(r.resources for r in synced)
    unmatched = sum(r.unmatched for r in synced)
    verb = "would be " if dry_run else ""
    action = (
        f"{'dry run: ' if dry_run else ''}catalogue alarms for {resources} resources: "
        + ", ".join(f"{n} {verb}{what}" for what, n in counts.items())
        + f"; {calls.total} API calls"
        + (f"; {unmatched} opted-in resources no entry's pattern takes" if unmatched else "")
        + _by_location(results, verb)
        + _not_kept(settings, sources)
    )
    audit_writer(settings).write(
        audit(
            run,
            key=f"{run.run_id}|sync",
            target=target,
            action=action,
            outcome=Outcome.FAILURE if failed else Outcome.SUCCESS,
            rollback="the next run recreates a deleted alarm while its resource opts in; "
            "an updated alarm takes the catalogue's condition, as it should",
        )
    )
    if failed:
        raise JobFailed(
            f"alarm_sync failed in {len(failed)} of {len(results)} accounts/Regions "
            f"({'; '.join(f'{r.location}: {r.error}' for r in failed[:3])}); the others were synced, "
            "as the run's audit record says"
        )
    return {
        **counts,
        "dry_run": dry_run,
        "calls": dict(calls.counts),
        "resources": resources,
        "locations": {str(r.location): r.summary() for r in results},
    }


def _by_location(results: list[LocationResult], verb: str) -> str:
    """The record's per account/Region part: each that failed, and the first few that changed something."""
    if len(results) == 1 and not results[0].error:
        return ""
    changed = [
        r for r in results if not r.error and any(r.counts[w] for w in ("created", "updated", "deleted"))
    ]
    shown = ", ".join(
        f"{r.location} "
        + " ".join(f"{r.counts[w]} {verb}{w}" for w in ("created", "updated", "deleted") if r.counts[w])
        for r in changed[:_SHOWN_LOCATIONS]
    )
    more = f" and {len(changed) - _SHOWN_LOCATIONS} more" if len(changed) > _SHOWN_LOCATIONS else ""
    failed = "".join(f"; FAILED in {r.location}: {r.error}" for r in results if r.error)
    return f"; in {len(results)} accounts/Regions" + (f" ({shown}{more})" if shown else "") + failed


def _not_kept(settings: Settings, sources: dict[str, AlarmSource]) -> str:
    """Entries whose alarms live in no Region of the deployment (said on every run, not left out silently)."""
    nowhere = sorted(e for e, s in sources.items() if not any(s.kept_in(r) for r in _regions(settings)))
    if not nowhere:
        return ""
    return (
        f"; not kept: {', '.join(nowhere)} (their metrics are in {GLOBAL_METRICS_REGION} only, "
        "not a Region of this deployment)"
    )
