"""Routing: every catalogue entry, the hand-written AWS samples, events to ignore, and malformed input."""

from __future__ import annotations

import json
import re

import pytest

from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.cli import main as aiops
from matcarv_aiops.ingress.routing import MAX_EVENT_BYTES, InvalidEvent, parse_event, route
from matcarv_aiops.models import RemediationRequest
from tests.events import alarm_event
from tests.ingress import samples

ENTRY_IDS = sorted(catalogue())
RUN_ID = re.compile(r"^ev_[0-9a-f]{16}$")


@pytest.mark.parametrize("entry_id", ENTRY_IDS)
def test_every_entry_is_started_by_an_event_of_its_own_pattern(entry_id):
    entry = catalogue()[entry_id]
    event = samples.event_for(entry)
    routed = route(event)
    found = {m.remediation: m for m in routed.matches}
    assert entry_id in found, routed.ignored
    match = found[entry_id]
    assert match.dag_id == entry.dag_id == f"remediate_{entry_id}"
    assert len(f"/dags/{match.dag_id}/dagRuns") <= 64  # MWAA's InvokeRestApi path limit
    assert RUN_ID.match(match.dag_run_id)
    assert match.target == entry.resolve_target(event).arn
    assert routed.ignored is None
    conf = routed.conf()
    assert RemediationRequest.model_validate(conf).event.id == event["id"]
    assert conf["event"]["detail"] == event["detail"]


@pytest.mark.parametrize("entry_id", ENTRY_IDS)
def test_a_near_miss_does_not_start_the_entry(entry_id):
    entry = catalogue()[entry_id]
    near_miss = samples.near_miss_for(entry)
    if near_miss is None:
        pytest.skip(f"{entry_id}'s pattern has no literal-only field to break")
    routed = route(near_miss)
    assert entry_id not in {m.remediation for m in routed.matches}
    if not routed.matches:
        assert f"{entry_id}: " in routed.ignored


@pytest.mark.parametrize("entry_id", ENTRY_IDS)
def test_run_ids_are_idempotent_per_event_and_entry(entry_id):
    entry = catalogue()[entry_id]
    event = samples.event_for(entry)
    first = {m.remediation: m.dag_run_id for m in route(event).matches}
    redelivered = {m.remediation: m.dag_run_id for m in route(json.dumps(event)).matches}
    assert first == redelivered
    other = dict(event, id="11111111-2222-4333-8444-555555555555")
    assert route(other).matches[0].dag_run_id != first[route(other).matches[0].remediation]
    assert len(set(first.values())) == len(first)  # one event, several entries: one run id each


def test_samples_cover_every_event_kind():
    kinds = {
        "ECS events" if s["detail-type"].startswith("ECS ") else s["detail-type"]
        for s in map(samples.load, samples.sample_names())
    }
    assert kinds >= {
        "CloudWatch Alarm State Change",
        "GuardDuty Finding",
        "Config Rules Compliance Change",
        "AWS API Call via CloudTrail",
        "ECS events",
    }


@pytest.mark.parametrize("name", samples.sample_names())
def test_hand_written_samples_route_as_documented(name):
    event = samples.load(name)
    parse_event(event)  # every sample is a valid envelope
    expected = samples.EXPECTED_STARTS.get(name, set())
    routed = route(event)
    started = {m.remediation for m in routed.matches}
    assert started & samples.CURRENT_ENTRIES == expected & set(catalogue())
    assert (routed.ignored is None) == bool(started)


@pytest.mark.parametrize(
    "queue, entry",
    [
        ("orders-dlq", "sqs_dlq_depth_high"),
        ("orders-dlq.fifo", "sqs_dlq_depth_high"),
        ("orders", "sqs_queue_depth_high"),
        ("orders.fifo", "sqs_queue_depth_high"),
        ("dlq-orders", "sqs_queue_depth_high"),  # "-dlq" is what names a dead-letter queue, not "dlq"
    ],
)
def test_a_queue_depth_alarm_starts_only_the_entry_for_its_kind_of_queue(queue, entry):
    event = alarm_event("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue})
    routed = route(event)
    assert [m.remediation for m in routed.matches] == [entry]
    assert routed.matches[0].target == f"arn:aws:sqs:us-east-1:123456789012:{queue}"


def test_the_dead_letter_queue_sample_starts_only_the_dlq_entry():
    routed = route(samples.load("cloudwatch_alarm_sqs_dlq_depth.json"))
    assert [m.remediation for m in routed.matches] == ["sqs_dlq_depth_high"]
    (reason,) = [r for r in routed.passed_over if r.startswith("sqs_queue_depth_high:")]
    assert "dimensions.QueueName does not match" in reason, reason


def test_one_event_can_start_several_entries():
    entry = catalogue()["ec2_status_check_failed"]
    twin = entry.model_copy(update={"id": "ec2_status_check_twin"})
    event = samples.load("cloudwatch_alarm_ec2_status_check.json")
    routed = route(event, entries={entry.id: entry, twin.id: twin})
    assert [m.remediation for m in routed.matches] == ["ec2_status_check_failed", "ec2_status_check_twin"]
    assert routed.matches[0].dag_run_id != routed.matches[1].dag_run_id


def test_an_alarm_back_to_ok_is_ignored_with_the_reason():
    routed = route(samples.load("cloudwatch_alarm_ok.json"))
    assert routed.matches == ()
    assert 'ec2_status_check_failed: detail.state.value does not match (event has "OK")' in routed.ignored


def test_a_matched_event_without_a_target_is_not_started():
    event = samples.load("cloudtrail_s3_delete_public_access_block.json")
    del event["detail"]["requestParameters"]["bucketName"]
    routed = route(event)
    assert routed.matches == ()
    assert "s3_public_access: matched but the event names no target" in routed.ignored


def _event(**changes):
    event = samples.load("cloudwatch_alarm_ec2_status_check.json")
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            event.pop(key)
        else:
            event[key] = value
    return event


MALFORMED = [
    pytest.param(b'{"version": "0", "id": ', "event: malformed JSON", id="malformed-json"),
    pytest.param(b"", "event: malformed JSON", id="empty"),
    pytest.param(b"\xff\xfe{}", "event: not UTF-8", id="not-utf8"),
    pytest.param(b"[1, 2]", "event: must be a JSON object, got list", id="not-an-object"),
    pytest.param(_event(detail_type=None), "detail-type: Field required", id="missing-detail-type"),
    pytest.param(_event(id=None), "id: Field required", id="missing-id"),
    pytest.param(_event(detail=None), "detail: Field required", id="missing-detail"),
    pytest.param(_event(source=42), "source: Input should be a valid string", id="mistyped-source"),
    pytest.param(_event(detail=["x"]), "detail: Input should be a valid dictionary", id="mistyped-detail"),
    pytest.param(_event(account="12345"), "account: String should match pattern", id="bad-account"),
    pytest.param(_event(time="yesterday"), "time: Input should be a valid datetime", id="bad-time"),
    pytest.param(_event(region="Mars"), "region: String should match pattern", id="bad-region"),
    pytest.param(
        _event(detail={"blob": "x" * MAX_EVENT_BYTES}), "over EventBridge's 262144-byte limit", id="oversized"
    ),
]


def _finding(detail_type: str, generator_id: str) -> dict:
    """A well-formed Security Hub finding event, as EventBridge delivers it."""
    return _event(
        source="aws.securityhub",
        detail_type=detail_type,
        resources=["arn:aws:securityhub:us-east-1:123456789012:subscription/aws-foundational/v/1.0.0"],
        detail={
            "findings": [
                {
                    "GeneratorId": generator_id,
                    "Compliance": {"Status": "FAILED"},
                    "RecordState": "ACTIVE",
                    "Workflow": {"Status": "NEW"},
                    "Resources": [
                        {"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:123456789012:instance/i-1"}
                    ],
                }
            ]
        },
    )


def _api_call(source: str, event_source: str, event_name: str) -> dict:
    """A well-formed CloudTrail API call event: the same service as an entry's, another call."""
    event = samples.load("cloudtrail_stop_logging.json")
    event["source"] = source
    event["detail"]["eventSource"] = event_source
    event["detail"]["eventName"] = event_name
    return event


# Well-formed events that no entry acts on: ignored (no retry, no dead-letter noise), never invalid.
# The hard negatives look like what an entry listens to but are not.
IGNORED = [
    pytest.param(
        _event(source="com.example.orders"), "source: 'com.example.orders' is not a source", id="custom-app"
    ),
    pytest.param(
        _event(
            source="aws.health",
            detail_type="AWS Health Event",
            detail={"eventTypeCode": "AWS_EC2_MAINTENANCE"},
        ),
        "source: 'aws.health' is not a source",
        id="health-event",
    ),
    pytest.param(
        _finding("Security Hub Findings - Imported", "security-control/EC2.10"),
        "sg_open_ssh: detail.findings.Resources.Type does not match",
        id="securityhub-control-no-entry-fixes",
    ),
    pytest.param(
        _finding("Security Hub Findings - Custom Action", "security-control/S3.8"),
        "s3_public_access: detail-type does not match",
        id="securityhub-custom-action",
    ),
    pytest.param(
        _api_call("aws.cloudtrail", "cloudtrail.amazonaws.com", "StartLogging"),
        "cloudtrail_disabled: detail.eventName does not match",
        id="cloudtrail-start-logging",
    ),
    pytest.param(
        _api_call("aws.ec2", "ec2.amazonaws.com", "AuthorizeSecurityGroupEgress"),
        "sg_open_ssh: detail.eventName does not match",
        id="ec2-authorize-egress",
    ),
    pytest.param(
        samples.load("cloudtrail_s3_get_public_access_block.json"),
        "s3_public_access: detail.eventName does not match",
        id="s3-get-public-access-block",
    ),
    pytest.param(
        _api_call("aws.iam", "iam.amazonaws.com", "UpdateAccessKey"),
        "source: 'aws.iam' is not a source",
        id="iam-update-access-key",
    ),
]


@pytest.mark.parametrize("event, reason", IGNORED)
def test_a_well_formed_event_no_entry_acts_on_is_ignored_not_invalid(event, reason):
    parse_event(event)  # well-formed
    routed = route(event)
    assert routed.matches == ()
    assert reason in routed.ignored and "\n" not in routed.ignored


@pytest.mark.parametrize("event, reason", IGNORED)
def test_aiops_route_exits_0_on_an_ignored_event(event, reason, tmp_path, capsys):
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    assert aiops(["route", str(path)]) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out)
    assert printed["matches"] == [] and reason in printed["ignored"] and err == ""


@pytest.mark.parametrize("raw, message", MALFORMED)
def test_malformed_input_is_one_clear_line(raw, message):
    with pytest.raises(InvalidEvent) as raised:
        route(raw)
    text = str(raised.value)
    assert message in text and "\n" not in text


@pytest.mark.parametrize("raw, message", MALFORMED)
def test_aiops_route_rejects_malformed_input_with_exit_2(raw, message, tmp_path, capsys):
    path = tmp_path / "event.json"
    path.write_bytes(raw if isinstance(raw, bytes) else json.dumps(raw).encode())
    assert aiops(["route", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err and err.startswith("aiops route: ")


def test_aiops_route_prints_the_matches(capsys):
    assert aiops(["route", str(samples.EVENTS_DIR / "cloudwatch_alarm_sqs_dlq_depth.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"event_id", "matches", "ignored"}
    assert printed["event_id"] == "7a1e4f3b-1c2d-4e5f-8a9b-0c1d2e3f4a5b" and printed["ignored"] is None
    sqs = [m for m in printed["matches"] if m["remediation"] == "sqs_dlq_depth_high"]
    assert sqs == [
        {
            "remediation": "sqs_dlq_depth_high",
            "dag_id": "remediate_sqs_dlq_depth_high",
            "dag_run_id": sqs[0]["dag_run_id"],
            "target": "arn:aws:sqs:us-east-1:123456789012:orders-dlq",
        }
    ]
    assert "status" not in sqs[0]  # nothing was triggered


def test_aiops_route_reports_an_ignored_event(capsys):
    assert aiops(["route", str(samples.EVENTS_DIR / "cloudwatch_alarm_ok.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["matches"] == [] and "detail.state.value" in printed["ignored"]


def test_aiops_route_reads_stdin(monkeypatch, capsys):
    import io
    import sys

    raw = (samples.EVENTS_DIR / "cloudtrail_s3_delete_public_access_block.json").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert aiops(["route", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["matches"][0]["target"] == "arn:aws:s3:::customer-exports"


def test_aiops_route_missing_file(capsys):
    assert aiops(["route", "/nonexistent/event.json"]) == 2
    assert "cannot read /nonexistent/event.json: No such file or directory" in capsys.readouterr().err


def test_aiops_route_trigger_starts_the_runs_once(monkeypatch, capsys):
    from matcarv_aiops.settings import reload_settings
    from tests.ingress.airflow_api import FakeAirflowApi

    with FakeAirflowApi(password="pw") as api:
        for name, value in {
            "AIOPS_TRIGGER_BACKEND": "local",
            "AIOPS_AIRFLOW_BASE_URL": api.url,
            "AIOPS_AIRFLOW_API_USERNAME": "admin",
            "AIOPS_AIRFLOW_API_PASSWORD": "pw",
        }.items():
            monkeypatch.setenv(name, value)
        reload_settings()
        try:
            path = str(samples.EVENTS_DIR / "cloudtrail_s3_delete_public_access_block.json")
            assert aiops(["route", path, "--trigger"]) == 0
            first = json.loads(capsys.readouterr().out)
            assert aiops(["route", path, "--trigger"]) == 0
            second = json.loads(capsys.readouterr().out)
        finally:
            monkeypatch.undo()
            reload_settings()
    assert [m["status"] for m in first["matches"]] == ["created"]
    assert [m["status"] for m in second["matches"]] == ["duplicate"]
    run = api.runs[("remediate_s3_public_access", first["matches"][0]["dag_run_id"])]
    assert run["conf"]["event"]["id"] == first["event_id"] and run["logical_date"] is None
    assert api.counts["created"] == 1 and api.counts["duplicate"] == 1


def test_a_target_that_is_not_an_arn_is_not_started():
    event = samples.load("cloudtrail_s3_delete_public_access_block.json")
    event["detail"]["requestParameters"]["bucketName"] = "arn:not-an-arn"
    routed = route(event)
    assert routed.matches == ()
    assert "s3_public_access: matched but its target 'arn:not-an-arn' is not an ARN" in routed.ignored


def test_the_compiled_route_table_routes_as_the_catalogue_does(tmp_path):
    """The Lambda's route_table.json (compiled at package time) gives the same runs as the YAML catalogue."""
    from matcarv_aiops.ingress.route_table import compile_route_table, from_rows

    compiled = from_rows(json.loads(compile_route_table(tmp_path / "route_table.json").read_text()))
    assert set(compiled) == set(catalogue())
    events = [samples.load(name) for name in samples.sample_names()]
    events += [samples.event_for(entry) for entry in catalogue().values()]
    for event in events:
        try:
            expected = route(event, entries=catalogue())
        except InvalidEvent as exc:
            with pytest.raises(InvalidEvent, match=re.escape(str(exc))):
                route(event, entries=compiled)
            continue
        assert route(event, entries=compiled) == expected
