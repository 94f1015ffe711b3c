"""SPEC's trigger conditions, pinned: each case names the entry and SPEC's words, so changing a number in
an entry (CPU 90 -> 80, key age 90 -> 60, EBS 85 -> 80, DLQ 100 -> 50...) fails a test that says which."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from matcarv_aiops.catalogue import (
    ApiCallCondition,
    CatalogueError,
    ConfigRuleCondition,
    MetricAlarmCondition,
    SecurityHubFindingCondition,
    ServiceEventCondition,
    catalogue,
    load_catalogue,
)
from tests.conftest import REPO

ENTRIES = REPO / "plugins/matcarv_aiops/catalogue/entries"


def alarm(**fields: Any) -> dict[str, Any]:
    return {"kind": "metric_alarm", **fields}


def control(*control_ids: str, resource: str) -> dict[str, Any]:
    """A failed Security Hub control (AWS Foundational Security Best Practices / CIS control ids)."""
    return {
        "kind": "securityhub_finding",
        "control_ids": list(control_ids),
        "product_name": None,
        "resource_types": [resource],
    }


# entry id -> (SPEC's words, the condition that says it). Numbers SPEC leaves open (the ALB "spike", the
# evaluation window of a status check) are ours, pinned here all the same.
SPEC_CONDITIONS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "ec2_cpu_high": (
        "EC2 CPU > 90 % for 10 min",
        [
            alarm(
                namespace="AWS/EC2",
                metric_names=["CPUUtilization"],
                statistic="Average",
                comparison="GreaterThanThreshold",
                threshold=90,
                sustained_seconds=600,
            )
        ],
    ),
    "ecs_tasks_below_desired": (
        "ECS service task count < desired",
        [
            {
                "kind": "service_event",
                "source": "aws.ecs",
                "detail_type": "ECS Service Action",
                "event_name": "SERVICE_TASK_START_IMPAIRED",
            }
        ],
    ),
    "lambda_throttles": (
        "Lambda throttles > 100 / min",
        [
            alarm(
                namespace="AWS/Lambda",
                metric_names=["Throttles"],
                statistic="Sum",
                period_seconds=60,
                comparison="GreaterThanThreshold",
                threshold=100,
            )
        ],
    ),
    "ec2_status_check_failed": (
        "EC2 instance status check failed",
        [
            alarm(
                namespace="AWS/EC2",
                metric_names=["StatusCheckFailed", "StatusCheckFailed_Instance", "StatusCheckFailed_System"],
                statistic="Maximum",
                comparison="GreaterThanOrEqualToThreshold",
                threshold=1,
                sustained_seconds=120,
            )
        ],
    ),
    "s3_public_access": (
        "S3 bucket public access enabled",
        [
            {
                "kind": "api_call",
                "source": "aws.s3",
                "event_source": "s3.amazonaws.com",
                "event_names": [
                    "DeleteBucketPublicAccessBlock",
                    "PutBucketPublicAccessBlock",
                    "PutBucketPolicy",
                    "PutBucketAcl",
                ],
            },
            control("S3.8", "S3.2", "S3.3", resource="AwsS3Bucket"),
        ],
    ),
    "ebs_volume_utilisation_high": (
        "EBS volume utilisation > 85 %",
        [
            alarm(
                namespace="CWAgent",
                metric_names=["disk_used_percent"],
                comparison="GreaterThanThreshold",
                threshold=85,
            )
        ],
    ),
    "dynamodb_read_throttles": (
        "DynamoDB throttled reads",
        [
            alarm(
                namespace="AWS/DynamoDB",
                metric_names=["ReadThrottleEvents"],
                statistic="Sum",
                comparison="GreaterThanThreshold",
                threshold=0,
            )
        ],
    ),
    "sg_open_ssh": (
        "Security Group with 0.0.0.0/0 SSH",
        [
            {
                "kind": "api_call",
                "source": "aws.ec2",
                "event_source": "ec2.amazonaws.com",
                "event_names": ["AuthorizeSecurityGroupIngress"],
            },
            {
                "kind": "config_rule",
                "rule_name": "restricted-ssh",
                "source_identifier": "INCOMING_SSH_DISABLED",
                "input_parameters": {},
            },
            control("EC2.13", resource="AwsEc2SecurityGroup"),
        ],
    ),
    "alb_5xx_spike": (
        "ALB 5xx spike (no number in SPEC: 50 in five minutes)",
        [
            alarm(
                namespace="AWS/ApplicationELB",
                metric_names=["HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"],
                statistic="Sum",
                period_seconds=300,
                comparison="GreaterThanOrEqualToThreshold",
                threshold=50,
            )
        ],
    ),
    "route53_health_check_failed": (
        "Route53 health check failed",
        [
            alarm(
                namespace="AWS/Route53",
                metric_names=["HealthCheckStatus"],
                statistic="Minimum",
                comparison="LessThanThreshold",
                threshold=1,
            )
        ],
    ),
    "sqs_dlq_depth_high": (
        "SQS DLQ message count > 100",
        [
            alarm(
                namespace="AWS/SQS",
                metric_names=["ApproximateNumberOfMessagesVisible"],
                comparison="GreaterThanThreshold",
                threshold=100,
            )
        ],
    ),
    "sqs_queue_depth_high": (
        "SQS queue depth > 10,000",
        [
            alarm(
                namespace="AWS/SQS",
                metric_names=["ApproximateNumberOfMessagesVisible"],
                comparison="GreaterThanThreshold",
                threshold=10000,
            )
        ],
    ),
    "sns_delivery_failures": (
        "SNS delivery failure rate > 5 %",
        [
            alarm(
                namespace="AWS/SNS",
                metric_names=["NumberOfNotificationsFailed"],
                percent_of=["NumberOfNotificationsDelivered", "NumberOfNotificationsFailed"],
                statistic="Sum",
                comparison="GreaterThanThreshold",
                threshold=5,
            )
        ],
    ),
    "cloudtrail_disabled": (
        "CloudTrail disabled",
        [
            {
                "kind": "api_call",
                "source": "aws.cloudtrail",
                "event_source": "cloudtrail.amazonaws.com",
                "event_names": ["StopLogging", "DeleteTrail"],
            },
            {
                "kind": "config_rule",
                "rule_name": "cloudtrail-enabled",
                "source_identifier": "CLOUD_TRAIL_ENABLED",
                "input_parameters": {},
            },
            control("CloudTrail.1", resource="AwsAccount"),
        ],
    ),
    "iam_access_key_old": (
        "IAM access key age > 90 days",
        [
            {
                "kind": "config_rule",
                "rule_name": "access-keys-rotated",
                "source_identifier": "ACCESS_KEYS_ROTATED",
                "input_parameters": {"maxAccessKeyAge": 90},
            },
            control("IAM.3", resource="AwsIamUser"),
        ],
    ),
    "config_rule_noncompliant": (
        "Config rule non-compliant",
        [
            {
                "kind": "service_event",
                "source": "aws.config",
                "detail_type": "Config Rules Compliance Change",
                "compliance_type": "NON_COMPLIANT",
            }
        ],
    ),
    "guardduty_high_finding": (
        "GuardDuty HIGH/CRITICAL finding (severity 7 and over)",
        [
            {
                "kind": "service_event",
                "source": "aws.guardduty",
                "detail_type": "GuardDuty Finding",
                "min_severity": 7,
            },
            {
                "kind": "securityhub_finding",
                "control_ids": [],
                "product_name": "GuardDuty",
                "severity_labels": ["HIGH", "CRITICAL"],
                "resource_types": ["AwsIamAccessKey"],
            },
        ],
    ),
}


PINNED_CASES = [
    pytest.param(entry_id, conditions, id=f"{entry_id}: SPEC '{spec}'")
    for entry_id, (spec, conditions) in SPEC_CONDITIONS.items()
]


def _actual(condition: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """The condition's fields that the pinned case names (plus sustained_seconds, derived)."""
    return {name: getattr(condition, name) for name in wanted}


def test_every_entry_has_a_pinned_spec_condition():
    assert set(SPEC_CONDITIONS) == set(catalogue())


@pytest.mark.parametrize("entry_id, pinned", PINNED_CASES)
def test_entry_has_specs_trigger_condition(entry_id, pinned):
    conditions = catalogue()[entry_id].trigger_conditions
    assert len(conditions) == len(pinned), f"{entry_id}: {[c.describe() for c in conditions]}"
    for condition, wanted in zip(conditions, pinned, strict=True):
        assert _actual(condition, wanted) == wanted, f"{entry_id}: {condition.describe()}"


@pytest.mark.parametrize(
    "entry_id, live, acts",
    [
        pytest.param("ec2_cpu_high", 90.5, True, id="ec2_cpu_high: SPEC 'CPU > 90 %': 90.5 acts"),
        pytest.param("ec2_cpu_high", 90, False, id="ec2_cpu_high: SPEC 'CPU > 90 %': 90 does not"),
        pytest.param("ebs_volume_utilisation_high", 85.1, True, id="ebs: SPEC '> 85 %': 85.1 acts"),
        pytest.param("ebs_volume_utilisation_high", 85, False, id="ebs: SPEC '> 85 %': 85 does not"),
        pytest.param("sqs_dlq_depth_high", 101, True, id="sqs_dlq: SPEC '> 100': 101 acts"),
        pytest.param("sqs_dlq_depth_high", 100, False, id="sqs_dlq: SPEC '> 100': 100 does not"),
        pytest.param("sqs_queue_depth_high", 10001, True, id="sqs_queue: SPEC '> 10,000': 10001 acts"),
        pytest.param("sqs_queue_depth_high", 10000, False, id="sqs_queue: SPEC '> 10,000': 10000 does not"),
        pytest.param("lambda_throttles", 101, True, id="lambda: SPEC '> 100 / min': 101 acts"),
        pytest.param("lambda_throttles", 100, False, id="lambda: SPEC '> 100 / min': 100 does not"),
        pytest.param("sns_delivery_failures", 5.1, True, id="sns: SPEC '> 5 %': 5.1 acts"),
        pytest.param("sns_delivery_failures", 5, False, id="sns: SPEC '> 5 %': 5 does not"),
        pytest.param("dynamodb_read_throttles", 1, True, id="dynamodb: any throttled read acts"),
        pytest.param("dynamodb_read_throttles", 0, False, id="dynamodb: none does not"),
        pytest.param("route53_health_check_failed", 0, True, id="route53: unhealthy (0) acts"),
        pytest.param("route53_health_check_failed", 1, False, id="route53: healthy (1) does not"),
    ],
)
def test_the_eligibility_comparison_is_specs(entry_id, live, acts):
    assert catalogue()[entry_id].metric_alarm.breached(live) is acts


def test_the_access_key_age_the_remediation_compares_is_the_config_rule_parameter():
    from types import SimpleNamespace

    from matcarv_aiops.remediations.iam_access_key_old import max_age_days

    ctx = SimpleNamespace(entry=catalogue()["iam_access_key_old"])
    assert max_age_days(ctx) == 90  # SPEC: "IAM access key age > 90 days"


def test_metric_alarm_entries_patterns_are_generated_from_their_condition():
    for entry in catalogue().values():
        conditions = entry.trigger_conditions
        if isinstance(conditions[0], MetricAlarmCondition):
            metric = entry.trigger["detail"]["configuration"]["metrics"]["metricStat"]["metric"]
            assert metric["namespace"] == [conditions[0].namespace], entry.id
            assert metric["name"] == conditions[0].metric_names, entry.id
            assert "trigger" not in yaml.safe_load((ENTRIES / f"{entry.id}.yaml").read_text()), entry.id


def test_every_condition_kind_is_in_use():
    kinds = {type(c) for entry in catalogue().values() for c in entry.trigger_conditions}
    assert kinds == {
        MetricAlarmCondition,
        ConfigRuleCondition,
        ApiCallCondition,
        ServiceEventCondition,
        SecurityHubFindingCondition,
    }


def _write(tmp_path: Path, entry_id: str, edit) -> Path:
    raw = yaml.safe_load((ENTRIES / f"{entry_id}.yaml").read_text())
    edit(raw)
    (tmp_path / f"{entry_id}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return tmp_path


def _set(path: str, value: Any):
    def edit(raw: dict[str, Any]) -> None:
        node: Any = raw
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return edit


@pytest.mark.parametrize(
    "entry_id, edit, message",
    [
        ("sqs_dlq_depth_high", _set("trigger_conditions", None), "trigger_conditions: Field required"),
        (
            "sqs_dlq_depth_high",
            _set("trigger_conditions", []),
            "trigger_conditions: List should have at least 1",
        ),
        (
            "sqs_dlq_depth_high",
            _set("trigger_conditions.0.kind", "alarm"),
            "does not match any of the expected tags",
        ),
        ("sqs_dlq_depth_high", _set("trigger_conditions.0.surprise", 1), "Extra inputs are not permitted"),
        ("sqs_dlq_depth_high", _set("trigger_conditions.0.threshold", None), "threshold: Field required"),
        (
            "sqs_dlq_depth_high",
            _set("trigger_conditions.0.threshold", "many"),
            "threshold: Input should be a valid",
        ),
        ("sqs_dlq_depth_high", _set("trigger_conditions.0.comparison", ">"), "comparison: Input should be"),
        (
            "sqs_dlq_depth_high",
            _set("trigger_conditions.0.period_seconds", 90),
            "90 is not a CloudWatch alarm period",
        ),
        (
            "sqs_dlq_depth_high",
            _set("trigger", {"source": ["aws.cloudwatch"]}),
            "a metric_alarm entry's pattern is generated from its condition",
        ),
        (
            "iam_access_key_old",
            _set("trigger_conditions.0.rule_name", "access-keys-rotated-v2"),
            "trigger.detail.configRuleName: must match 'access-keys-rotated-v2'",
        ),
        (
            "iam_access_key_old",
            _set("trigger_conditions.0.source_identifier", "access keys rotated"),
            "source_identifier: String should match pattern",
        ),
        (
            "s3_public_access",
            _set("trigger_conditions.0.event_names", ["DeleteBucket"]),
            "trigger.detail.eventName: must match 'DeleteBucket'",
        ),
        (
            "s3_public_access",
            _set("trigger_conditions.0.event_source", "s3.example.com"),
            "event_source: String should match pattern",
        ),
        (
            "guardduty_high_finding",
            _set("trigger_conditions.0.min_severity", 4),
            "trigger.detail.severity: must match [{'numeric': ['>=', 4.0]}]",
        ),
        (
            "ecs_tasks_below_desired",
            _set("trigger_conditions.0.detail_type", "ECS Task State Change"),
            "trigger.detail-type: must match 'ECS Task State Change'",
        ),
        (
            "s3_public_access",
            _set("trigger_conditions.1.control_ids", ["S3 8"]),
            "control_ids.0: String should match pattern",
        ),
        (
            "guardduty_high_finding",
            _set("trigger_conditions.1.control_ids", ["GuardDuty.1"]),
            "give exactly one of 'control_ids' (a failed control) or 'product_name'",
        ),
        (
            "sg_open_ssh",
            _set("trigger.detail.findings", {"RecordState": ["ACTIVE"]}),
            "the Security Hub alternative is generated from the securityhub_finding conditions",
        ),
        (
            "iam_access_key_old",
            lambda raw: raw.update(targets=raw["targets"][:1]),
            "targets: a securityhub_finding entry needs a target read from the finding",
        ),
    ],
)
def test_condition_errors_name_the_entry_and_field(tmp_path, entry_id, edit, message):
    with pytest.raises(CatalogueError) as err:
        load_catalogue(_write(tmp_path, entry_id, edit))
    text = str(err.value)
    assert f"catalogue entry '{entry_id}' ({entry_id}.yaml)" in text and message in text, text
    assert "\n" not in text


def test_a_changed_threshold_changes_the_comparison_and_keeps_the_pattern(tmp_path):
    loaded = load_catalogue(
        _write(tmp_path, "sqs_dlq_depth_high", _set("trigger_conditions.0.threshold", 50))
    )
    entry = loaded["sqs_dlq_depth_high"]
    assert entry.metric_alarm.breached(51) and not entry.metric_alarm.breached(50)
    assert entry.trigger == catalogue()["sqs_dlq_depth_high"].trigger


def test_aiops_catalogue_json_shows_the_trigger_conditions(capsys):
    from matcarv_aiops.cli import main

    assert main(["catalogue", "--json"]) == 0
    by_id = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert by_id["iam_access_key_old"]["trigger_conditions"][0]["input_parameters"] == {"maxAccessKeyAge": 90}
    assert by_id["ec2_cpu_high"]["trigger_conditions"][0]["threshold"] == 90


def test_the_readme_table_shows_each_entrys_trigger_conditions():
    readme = (REPO / "README.md").read_text()
    for entry in catalogue().values():
        row = f"| `{entry.id}` | " + "<br>".join(f"`{c.describe()}`" for c in entry.trigger_conditions) + " |"
        assert row in readme, f"README's trigger conditions table: {entry.id} should read {row}"
