import json
from datetime import UTC, datetime

import boto3
import pytest

from matcarv_aiops.remediations import config_rule_noncompliant
from tests.events import ACCOUNT, REGION, config_compliance_event
from tests.remediations.iam_setup import key_status, user_with_keys
from tests.remediations.notifications import TopicInbox
from tests.remediations.stubs import stubbed_clients

RULE = "access-keys-rotated"
RULE_ARN = f"arn:aws:config:{REGION}:{ACCOUNT}:config-rule/config-rule-abc123"
WHEN = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


@pytest.fixture
def inbox(aws):
    return TopicInbox(aws)


@pytest.fixture
def config(monkeypatch, aws):
    return stubbed_clients(monkeypatch)("config")


def _rule_is_described(config, noncompliant: list[tuple[str, str]], *, rules_page_token: bool = False):
    """Documented DescribeConfigRules / ListTagsForResource / GetComplianceDetailsByConfigRule responses."""
    rule = {
        "ConfigRuleName": RULE,
        "ConfigRuleArn": RULE_ARN,
        "ConfigRuleId": "config-rule-abc123",
        "Source": {"Owner": "AWS", "SourceIdentifier": "ACCESS_KEYS_ROTATED"},
        "ConfigRuleState": "ACTIVE",
        "InputParameters": json.dumps({"maxAccessKeyAge": "90"}),
    }
    if rules_page_token:  # the rule is on the second page
        config.add_response(
            "describe_config_rules",
            {
                "ConfigRules": [dict(rule, ConfigRuleName="other", ConfigRuleArn=RULE_ARN + "x")],
                "NextToken": "t1",
            },
            {},
        )
        config.add_response("describe_config_rules", {"ConfigRules": [rule]}, {"NextToken": "t1"})
    else:
        config.add_response("describe_config_rules", {"ConfigRules": [rule]}, {})
    config.add_response(
        "list_tags_for_resource",
        {"Tags": [{"Key": "Environment", "Value": "staging"}]},
        {"ResourceArn": RULE_ARN},
    )
    config.add_response(
        "get_compliance_details_by_config_rule",
        {
            "EvaluationResults": [
                {
                    "EvaluationResultIdentifier": {
                        "EvaluationResultQualifier": {
                            "ConfigRuleName": RULE,
                            "ResourceType": resource_type,
                            "ResourceId": resource_id,
                        },
                        "OrderingTimestamp": WHEN,
                    },
                    "ComplianceType": "NON_COMPLIANT",
                    "ResultRecordedTime": WHEN,
                    "ConfigRuleInvokedTime": WHEN,
                    "Annotation": "Access key is older than 90 days.",
                }
                for resource_type, resource_id in noncompliant
            ]
        },
        {"ConfigRuleName": RULE, "ComplianceTypes": ["NON_COMPLIANT"], "Limit": 100},
    )


def _findings():
    return boto3.client("securityhub", region_name=REGION).get_findings()["Findings"]


def test_records_a_finding_per_noncompliant_resource_and_alerts(remediate, config, inbox):
    _rule_is_described(
        config,
        [("AWS::IAM::User", "AIDAEXAMPLE1"), ("AWS::IAM::User", "AIDAEXAMPLE2")],
        rules_page_token=True,
    )
    event = config_compliance_event(RULE, "AWS::IAM::User", "AIDAEXAMPLE1")
    run = remediate("config_rule_noncompliant", {"event": event})
    assert run.outcome == "SUCCESS", run.audit.action
    config.assert_no_pending_responses()
    findings = sorted(_findings(), key=lambda f: f["Id"])
    assert [f["Resources"][0]["Id"] for f in findings] == ["AIDAEXAMPLE1", "AIDAEXAMPLE2"]
    assert {f["Resources"][0]["Type"] for f in findings} == {"AwsIamUser"}
    assert {f["Compliance"]["Status"] for f in findings} == {"FAILED"}
    assert findings[0]["SchemaVersion"] == "2018-10-08" and findings[0]["AwsAccountId"] == ACCOUNT
    [alert] = inbox.messages("alert")
    assert json.loads(alert["MessageAttributes"]["payload"]["Value"])["noncompliant"] == 2


def test_a_second_run_updates_the_same_findings(remediate, config, inbox, monkeypatch):
    from matcarv_aiops.settings import reload_settings

    monkeypatch.setenv("AIOPS_COOLDOWN_MINUTES", "0")  # let the second event act too
    reload_settings()
    for event_id in ("e1", "e2"):
        _rule_is_described(config, [("AWS::S3::Bucket", "logs-bucket")])
        event = config_compliance_event(RULE, "AWS::S3::Bucket", "logs-bucket", event_id=event_id)
        run = remediate("config_rule_noncompliant", {"event": event}, run_id=f"manual__{event_id}")
        assert run.outcome == "SUCCESS", run.audit.action
    config.assert_no_pending_responses()
    assert len(_findings()) == 1


def test_validation_failure_is_failure_and_nothing_else_changes(remediate, config, inbox, monkeypatch):
    _rule_is_described(config, [("AWS::IAM::User", "AIDAEXAMPLE1")])
    monkeypatch.setattr(
        config_rule_noncompliant.ConfigRuleNoncompliant,
        "execute",
        lambda self, ctx, state: {"finding_ids": ["never-imported"]},
    )
    run = remediate(
        "config_rule_noncompliant", {"event": config_compliance_event(RULE, "AWS::IAM::User", "AIDAEXAMPLE1")}
    )
    assert run.outcome == "FAILURE" and "not in Security Hub: never-imported" in run.audit.action
    assert run.record("rollback").done["rolled_back"] is False
    assert _findings() == [] and inbox.messages("alert")[0]["Subject"].startswith("AIOps remediation FAILED")


def test_rule_with_nothing_noncompliant_now_is_skipped(remediate, config, inbox):
    _rule_is_described(config, [])
    run = remediate(
        "config_rule_noncompliant", {"event": config_compliance_event(RULE, "AWS::IAM::User", "AIDAEXAMPLE1")}
    )
    assert run.outcome == "SKIPPED" and "no NON_COMPLIANT resource now" in run.audit.action
    assert _findings() == [] and inbox.messages("alert") == []


def test_one_event_runs_both_matching_entries_with_their_own_audit_records(remediate, config, inbox, aws):
    """access-keys-rotated NON_COMPLIANT matches iam_access_key_old and config_rule_noncompliant."""
    iam, user_id, (old,) = user_with_keys("deploy-bot", [150])
    _rule_is_described(config, [("AWS::IAM::User", user_id)])
    event = config_compliance_event(RULE, "AWS::IAM::User", user_id)

    key_run = remediate("iam_access_key_old", {"event": event}, run_id="event__iam")
    finding_run = remediate("config_rule_noncompliant", {"event": event}, run_id="event__config")

    assert (key_run.outcome, finding_run.outcome) == ("SUCCESS", "SUCCESS")
    assert key_status(iam, "deploy-bot") == {old: "Inactive"}
    assert [f["Resources"][0]["Id"] for f in _findings()] == [user_id]
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=aws.platform.audit_table)["Items"]
    records = {item["runbook"]["S"]: item for item in items}
    assert set(records) == {"remediate_iam_access_key_old", "remediate_config_rule_noncompliant"}
    ids = {item["executionId"]["S"] for item in items}
    assert len(items) == 2 and len(ids) == 2
    assert {json.loads(item["trigger"]["S"])["id"] for item in items} == {event["id"]}
