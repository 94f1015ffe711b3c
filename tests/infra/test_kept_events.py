"""Nothing lost at the front door, as synthesized: failed trigger invocations go to an encrypted queue that
keeps them 14 days, a scheduled rule replays them (and the rules' dead letters), alarms watch the queue,
and the function knows whose events it handles."""

from __future__ import annotations

from aiops_infra.alarms import KEPT_EVENT_MAX_AGE
from aiops_infra.trigger_function import ASYNC_RETRY_ATTEMPTS, REDRIVE_SCHEDULE
from matcarv_aiops.ingress.redrive import REDRIVE_REQUEST, VISIBILITY_TIMEOUT_SECONDS

FOURTEEN_DAYS = 14 * 24 * 3600


def _queues(synth) -> tuple[str, dict, str]:
    queues = synth.resources("AIOps", "AWS::SQS::Queue")
    [failed_events] = [lid for lid in queues if "FailedEvents" in lid]
    [rules_dlq] = [lid for lid in queues if "DeadLetterQueue" in lid]
    return failed_events, queues[failed_events]["Properties"], rules_dlq


def test_failed_invocations_go_to_an_encrypted_queue_kept_14_days(synth):
    failed_events, queue, _ = _queues(synth)
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert queue["VisibilityTimeout"] == VISIBILITY_TIMEOUT_SECONDS
    function_id, _ = synth.trigger_function()
    [config] = synth.resources("AIOps", "AWS::Lambda::EventInvokeConfig").values()
    properties = config["Properties"]
    assert properties["FunctionName"] == {"Ref": function_id}
    assert properties["MaximumRetryAttempts"] == ASYNC_RETRY_ATTEMPTS == 2
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [failed_events, "Arn"]
    }
    # TLS only: the queue policy denies insecure transport.
    policies = [
        p["Properties"]
        for p in synth.resources("AIOps", "AWS::SQS::QueuePolicy").values()
        if {"Ref": failed_events} in p["Properties"]["Queues"]
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for p in policies
        for s in p["PolicyDocument"]["Statement"]
    )


def test_a_schedule_invokes_the_redrive_with_both_queues(synth):
    failed_events, _, rules_dlq = _queues(synth)
    function_id, function = synth.trigger_function()
    [schedule] = [
        r["Properties"]
        for r in synth.resources("AIOps", "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    assert schedule["ScheduleExpression"] == f"rate({int(REDRIVE_SCHEDULE.to_minutes())} minutes)"
    [target] = schedule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["Input"] == '{"aiops":"redrive"}' and REDRIVE_REQUEST == {"aiops": "redrive"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["AIOPS_REDRIVE_QUEUE_URLS"] == {
        "Fn::Join": ["", [{"Ref": failed_events}, ",", {"Ref": rules_dlq}]]
    }


def test_the_function_knows_the_hub_and_its_members(synth, synth_variant):
    def variables(any_synth) -> dict:
        _, function = any_synth.trigger_function()
        return function["Properties"]["Environment"]["Variables"]

    assert variables(synth)["AIOPS_HUB_ACCOUNT"] == {"Ref": "AWS::AccountId"}
    assert variables(synth)["AIOPS_MEMBER_ACCOUNTS"] == ""
    assert variables(synth_variant)["AIOPS_MEMBER_ACCOUNTS"] == "111111111111,222222222222"


def test_alarms_watch_the_kept_events(synth):
    failed_events, _, _ = _queues(synth)
    alarms = {
        r["Properties"]["MetricName"]: r["Properties"]
        for r in synth.resources("AIOps", "AWS::CloudWatch::Alarm").values()
        if r["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [failed_events, "QueueName"]}}]
    }
    assert alarms["ApproximateNumberOfMessagesVisible"]["Threshold"] == 0
    assert alarms["ApproximateAgeOfOldestMessage"]["Threshold"] == KEPT_EVENT_MAX_AGE.to_seconds()
    assert KEPT_EVENT_MAX_AGE.to_seconds() < FOURTEEN_DAYS
    for alarm in alarms.values():
        assert alarm["AlarmActions"], "an alarm that tells no one"
