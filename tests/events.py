"""EventBridge events in the formats of the AWS documentation, for tests."""

from __future__ import annotations

import uuid

ACCOUNT = "123456789012"
REGION = "us-east-1"


def envelope(
    source: str,
    detail_type: str,
    detail: dict,
    resources: list[str] | None = None,
    event_id: str | None = None,
) -> dict:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": "2026-11-27T03:00:00Z",
        "region": REGION,
        "resources": resources or [],
        "detail": detail,
    }


def alarm_event(
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    *,
    alarm: str = "test-alarm",
    state: str = "ALARM",
    event_id: str | None = None,
) -> dict:
    """CloudWatch Alarm State Change (single-metric alarm)."""
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}"
    detail = {
        "alarmName": alarm,
        "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2026-11-27T03:00:00.000+0000"},
        "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-27T02:55:00.000+0000"},
        "configuration": {
            "description": f"{metric} alarm",
            "metrics": [
                {
                    "id": "m1",
                    "returnData": True,
                    "metricStat": {
                        "metric": {"namespace": namespace, "name": metric, "dimensions": dimensions},
                        "period": 60,
                        "stat": "Maximum",
                    },
                }
            ],
        },
    }
    return envelope("aws.cloudwatch", "CloudWatch Alarm State Change", detail, [arn], event_id)


def cloudtrail_event(
    service: str, event_name: str, request_parameters: dict, *, event_id: str | None = None
) -> dict:
    """AWS API Call via CloudTrail."""
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "accountId": ACCOUNT,
        },
        "eventTime": "2026-11-27T03:00:00Z",
        "eventSource": f"{service}.amazonaws.com",
        "eventName": event_name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.10",
        "requestParameters": request_parameters,
        "responseElements": None,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    return envelope(f"aws.{service}", "AWS API Call via CloudTrail", detail, event_id=event_id)


def config_compliance_event(
    rule_name: str,
    resource_type: str,
    resource_id: str,
    *,
    compliance: str = "NON_COMPLIANT",
    rule_id: str = "config-rule-abc123",
    event_id: str | None = None,
) -> dict:
    """Config Rules Compliance Change (AWS Config developer guide, "Example AWS Config events")."""
    qualifier = {"configRuleName": rule_name, "resourceType": resource_type, "resourceId": resource_id}
    detail = {
        "resourceId": resource_id,
        "awsRegion": REGION,
        "awsAccountId": ACCOUNT,
        "configRuleName": rule_name,
        "recordVersion": "1.0",
        "configRuleARN": f"arn:aws:config:{REGION}:{ACCOUNT}:config-rule/{rule_id}",
        "messageType": "ComplianceChangeNotification",
        "newEvaluationResult": {
            "evaluationResultIdentifier": {
                "evaluationResultQualifier": qualifier,
                "orderingTimestamp": "2026-11-27T02:59:00.000Z",
            },
            "complianceType": compliance,
            "resultRecordedTime": "2026-11-27T03:00:00.000Z",
            "configRuleInvokedTime": "2026-11-27T02:59:30.000Z",
        },
        "oldEvaluationResult": {
            "evaluationResultIdentifier": {
                "evaluationResultQualifier": qualifier,
                "orderingTimestamp": "2026-11-26T02:59:00.000Z",
            },
            "complianceType": "COMPLIANT",
            "resultRecordedTime": "2026-11-26T03:00:00.000Z",
            "configRuleInvokedTime": "2026-11-26T02:59:30.000Z",
        },
        "notificationCreationTime": "2026-11-27T03:00:01.000Z",
        "resourceType": resource_type,
    }
    return envelope("aws.config", "Config Rules Compliance Change", detail, event_id=event_id)


def guardduty_finding_event(
    finding_type: str,
    severity: float,
    *,
    user_name: str,
    user_type: str = "IAMUser",
    access_key_id: str = "ASIAEXAMPLEKEY000001",
    finding_id: str = "a1b2c3d4e5f6",
    account: str = ACCOUNT,
    event_id: str | None = None,
) -> dict:
    """GuardDuty Finding on an IAM access key (GuardDuty user guide, finding format, resourceType AccessKey).
    ``account`` is the finding's (member) account; the envelope is the administrator's."""
    detector = "12abc34d567e8fa901bc2d34e56789f0"
    detail = {
        "schemaVersion": "2.0",
        "accountId": account,
        "region": REGION,
        "partition": "aws",
        "id": finding_id,
        "arn": f"arn:aws:guardduty:{REGION}:{account}:detector/{detector}/finding/{finding_id}",
        "type": finding_type,
        "resource": {
            "resourceType": "AccessKey",
            "accessKeyDetails": {
                "accessKeyId": access_key_id,
                "principalId": "AIDAEXAMPLEPRINCIPAL",
                "userName": user_name,
                "userType": user_type,
            },
        },
        "service": {
            "serviceName": "guardduty",
            "detectorId": detector,
            "archived": False,
            "count": 1,
            "eventFirstSeen": "2026-11-27T02:50:00.000Z",
            "eventLastSeen": "2026-11-27T02:58:00.000Z",
            "resourceRole": "TARGET",
            "action": {"actionType": "AWS_API_CALL"},
        },
        "severity": severity,
        "createdAt": "2026-11-27T02:59:00.000Z",
        "updatedAt": "2026-11-27T02:59:00.000Z",
        "title": f"{finding_type} on {user_name}",
        "description": "test finding",
    }
    return envelope("aws.guardduty", "GuardDuty Finding", detail, event_id=event_id)


def ecs_service_action(
    service_arn: str,
    event_name: str = "SERVICE_TASK_START_IMPAIRED",
    *,
    event_type: str = "WARN",
    event_id: str | None = None,
) -> dict:
    """ECS Service Action (Amazon ECS service event)."""
    cluster = service_arn.split(":service/", 1)[1].split("/")[0] if service_arn.count("/") == 2 else "default"
    detail = {
        "eventType": event_type,
        "eventName": event_name,
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}",
        "createdAt": "2026-11-27T03:00:00.000Z",
    }
    return envelope("aws.ecs", "ECS Service Action", detail, [service_arn], event_id)
