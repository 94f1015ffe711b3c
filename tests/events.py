"""EventBridge events in the formats of the AWS documentation, for tests."""

from __future__ import annotations

import uuid

ACCOUNT = "123456789012"
REGION = "us-east-1"


def envelope(source: str, detail_type: str, detail: dict, resources: list[str] | None = None,
             event_id: str | None = None) -> dict:
    return {"version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": detail_type, "source": source,
            "account": ACCOUNT, "time": "2026-11-27T03:00:00Z", "region": REGION,
            "resources": resources or [], "detail": detail}


def alarm_event(namespace: str, metric: str, dimensions: dict[str, str], *, alarm: str = "test-alarm",
                state: str = "ALARM", event_id: str | None = None) -> dict:
    """CloudWatch Alarm State Change (single-metric alarm)."""
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}"
    detail = {
        "alarmName": alarm,
        "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2026-11-27T03:00:00.000+0000"},
        "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-27T02:55:00.000+0000"},
        "configuration": {
            "description": f"{metric} alarm",
            "metrics": [{"id": "m1", "returnData": True,
                         "metricStat": {"metric": {"namespace": namespace, "name": metric,
                                                   "dimensions": dimensions},
                                        "period": 60, "stat": "Maximum"}}],
        },
    }
    return envelope("aws.cloudwatch", "CloudWatch Alarm State Change", detail, [arn], event_id)


def cloudtrail_event(service: str, event_name: str, request_parameters: dict, *, event_id: str | None = None) -> dict:
    """AWS API Call via CloudTrail."""
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT},
        "eventTime": "2026-11-27T03:00:00Z", "eventSource": f"{service}.amazonaws.com", "eventName": event_name,
        "awsRegion": REGION, "sourceIPAddress": "203.0.113.10", "requestParameters": request_parameters,
        "responseElements": None, "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT,
    }
    return envelope(f"aws.{service}", "AWS API Call via CloudTrail", detail, event_id=event_id)
