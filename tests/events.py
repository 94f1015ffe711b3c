"""EventBridge events in the formats of the AWS documentation, for tests."""

from __future__ import annotations

import uuid

ACCOUNT = "123456789012"
REGION = "us-east-1"
SAMPLES = uuid.UUID("5d1c8e7a-3f0b-4c6e-9a2d-7b4f1e0c9a31")  # stable sample ids


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


FSBP_STANDARD = "aws-foundational-security-best-practices/v/1.0.0"


def securityhub_finding(
    control_id: str,
    resource_type: str,
    resource_id: str,
    *,
    record_state: str = "ACTIVE",
    compliance: str = "FAILED",
    workflow: str = "NEW",
    consolidated: bool = True,
    account: str = ACCOUNT,
    details: dict | None = None,
) -> dict:
    """One ASFF finding of a Security Hub control, as Security Hub CSPM writes them: with consolidated
    control findings (the default) GeneratorId ``security-control/<id>`` and
    ``Compliance.SecurityControlId``; per standard (``consolidated=False``) the standard's GeneratorId and
    ``ProductFields.ControlId``."""
    region_arn = f"arn:aws:securityhub:{REGION}:{account}"
    generator = f"security-control/{control_id}" if consolidated else f"{FSBP_STANDARD}/{control_id}"
    resource: dict = {"Type": resource_type, "Id": resource_id, "Partition": "aws", "Region": REGION}
    if details:
        resource["Details"] = details
    product_fields = {"aws/securityhub/ProductName": "Security Hub", "aws/securityhub/CompanyName": "AWS"}
    compliance_block: dict = {"Status": compliance}
    if consolidated:
        compliance_block["SecurityControlId"] = control_id
    else:
        product_fields |= {"StandardsArn": f"arn:aws:securityhub:::standards/{FSBP_STANDARD}"}
        product_fields["ControlId"] = control_id
    return {
        "SchemaVersion": "2018-10-08",
        "Id": f"{region_arn}:security-control/{control_id}/finding/{uuid.uuid5(SAMPLES, resource_id)}",
        "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/securityhub",
        "ProductName": "Security Hub",
        "CompanyName": "AWS",
        "Region": REGION,
        "GeneratorId": generator,
        "AwsAccountId": account,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "CreatedAt": "2026-11-27T02:00:00.000Z",
        "UpdatedAt": "2026-11-27T03:00:00.000Z",
        "Severity": {"Label": "HIGH", "Normalized": 70, "Original": "HIGH"},
        "Title": f"{control_id} failed",
        "Description": f"{control_id} failed for {resource_id}",
        "ProductFields": product_fields,
        "Resources": [resource],
        "Compliance": compliance_block,
        "WorkflowState": "NEW",
        "Workflow": {"Status": workflow},
        "RecordState": record_state,
    }


def guardduty_asff_finding(
    user_name: str,
    *,
    principal_type: str = "IAMUser",
    label: str = "HIGH",
    access_key_id: str = "ASIAEXAMPLEKEY000001",
    account: str = ACCOUNT,
    record_state: str = "ACTIVE",
    workflow: str = "NEW",
) -> dict:
    """A GuardDuty finding on an access key as Security Hub imports it (ASFF, ProductName GuardDuty)."""
    detector = "12abc34d567e8fa901bc2d34e56789f0"
    finding_arn = f"arn:aws:guardduty:{REGION}:{account}:detector/{detector}/finding/b2c3d4e5f6a7"
    return {
        "SchemaVersion": "2018-10-08",
        "Id": finding_arn,
        "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/guardduty",
        "ProductName": "GuardDuty",
        "CompanyName": "Amazon",
        "Region": REGION,
        "GeneratorId": "arn:aws:guardduty:us-east-1:123456789012:detector/" + detector,
        "AwsAccountId": account,
        "Types": ["TTPs/Initial Access/UnauthorizedAccess:IAMUser-InstanceCredentialExfiltration.OutsideAWS"],
        "CreatedAt": "2026-11-27T02:59:00.000Z",
        "UpdatedAt": "2026-11-27T02:59:00.000Z",
        "Severity": {"Label": label, "Normalized": 80 if label == "HIGH" else 40, "Product": 8},
        "Title": f"Credentials of {user_name} used from outside AWS",
        "Description": "test finding",
        "ProductFields": {"aws/securityhub/ProductName": "GuardDuty"},
        "Resources": [
            {
                "Type": "AwsIamAccessKey",
                "Id": f"AWS::IAM::AccessKey:{access_key_id}",
                "Partition": "aws",
                "Region": REGION,
                "Details": {
                    "AwsIamAccessKey": {
                        "PrincipalId": "AIDAEXAMPLEPRINCIPAL",
                        "PrincipalType": principal_type,
                        "PrincipalName": user_name,
                    }
                },
            }
        ],
        "Workflow": {"Status": workflow},
        "RecordState": record_state,
    }


def securityhub_event(
    *findings: dict, detail_type: str = "Security Hub Findings - Imported", event_id: str | None = None
) -> dict:
    """Security Hub Findings - Imported (or - Custom Action): the findings under detail.findings, their
    ARNs as the event's resources."""
    return envelope(
        "aws.securityhub",
        detail_type,
        {"findings": list(findings)},
        [f["Id"] for f in findings],
        event_id,
    )
