import pytest
from pydantic import ValidationError

from matcarv_aiops.models import EventBridgeEvent, Outcome, RemediationRequest, Target
from tests.events import alarm_event
from tests.records import audit_record

SPEC_FIELDS = {
    "executionId",
    "timestamp",
    "trigger",
    "runbook",
    "targetResource",
    "action",
    "outcome",
    "operator",
    "rollbackPlan",
}


def test_audit_record_has_exactly_the_nine_spec_fields_and_the_requester_as_strings():
    item = audit_record().to_item()
    assert set(item) == SPEC_FIELDS | {"requestedBy"}
    assert item["requestedBy"] == "automated"
    assert all(isinstance(v, str) for v in item.values())
    assert item["outcome"] in {o.value for o in Outcome}
    assert item["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "field,value",
    [
        ("timestamp", "2026-11-27T03:00:00+02:00"),  # not UTC
        ("timestamp", "yesterday"),
        ("executionId", "not-a-uuid"),
        ("outcome", "DONE"),
        ("trigger", "{not json"),
        ("operator", "  "),
    ],
)
def test_audit_record_rejects_bad_fields(field, value):
    with pytest.raises(ValidationError) as err:
        audit_record(**{field: value})
    assert field in str(err.value)


def test_audit_record_rejects_extra_fields():
    with pytest.raises(ValidationError):
        audit_record(reason="extra")


def test_request_needs_event_or_target():
    with pytest.raises(ValidationError, match="needs 'event'"):
        RemediationRequest.model_validate({"dry_run": True})
    with pytest.raises(ValidationError):
        RemediationRequest.model_validate({"target": "arn:aws:s3:::b", "unknown": 1})


def test_execution_id_is_stable_per_event_and_remediation():
    event = alarm_event("AWS/SQS", "X", {"QueueName": "q"})
    request = RemediationRequest.model_validate({"event": event})
    assert request.execution_id("a", "run1") == request.execution_id("a", "run2")
    assert request.execution_id("a", "run1") != request.execution_id("b", "run1")
    manual = RemediationRequest(target="arn:aws:s3:::b")
    assert manual.execution_id("a", "run1") != manual.execution_id("a", "run2")


def test_envelope_errors_name_the_field():
    event = alarm_event("AWS/SQS", "X", {"QueueName": "q"})
    event["account"] = "12"
    with pytest.raises(ValidationError, match="account"):
        EventBridgeEvent.model_validate(event)
    del event["detail"]
    with pytest.raises(ValidationError, match="detail"):
        EventBridgeEvent.model_validate(event)


def test_target_from_arn():
    target = Target.from_arn("arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc")
    assert (target.resource_id, target.region, target.account) == ("i-0abc", "eu-west-1", "123456789012")
    bucket = Target.from_arn("arn:aws:s3:::logs", default_region="us-east-1", default_account="123456789012")
    assert (bucket.resource_id, bucket.region, bucket.account) == ("logs", "us-east-1", "123456789012")
    with pytest.raises(ValueError, match="not an ARN"):
        Target.from_arn("i-0abc")
