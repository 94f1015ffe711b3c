"""Ingress edge cases: events too deeply nested to parse or serialise, events from accounts the hub does
not handle, and targets in another account than the event's."""

from __future__ import annotations

import json
import logging

import pytest

from matcarv_aiops.ingress import handler as lambda_module
from matcarv_aiops.ingress.routing import AccountScope, InvalidEvent, route
from matcarv_aiops.settings import Settings, reload_settings
from tests.ingress import samples

HUB, MEMBER, STRANGER = "123456789012", "111111111111", "999999999999"


def _nested(depth: int) -> dict:
    root: dict = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


def _deep_event(depth: int) -> dict:
    event = samples.load("cloudwatch_alarm_ec2_status_check.json")
    event["detail"]["extra"] = _nested(depth)
    return event


@pytest.mark.parametrize("as_text", [True, False], ids=["json-text", "parsed"])
def test_a_3kb_event_nested_255_deep_is_an_invalid_event_not_a_crash(as_text):
    event = _deep_event(255)
    raw = json.dumps(event)
    assert len(raw) < 4096  # small: the size limit is not what stops it
    with pytest.raises(InvalidEvent, match=r"^event: cannot be serialised: ValueError"):
        route(raw if as_text else event)


def test_nesting_beyond_the_parsers_stack_is_an_invalid_event():
    raw = '{"detail":' + "[" * 100_000 + "]" * 100_000 + "}"  # 200 KB: within EventBridge's limit
    with pytest.raises(InvalidEvent, match=r"^event: cannot be parsed: RecursionError"):
        route(raw)


def test_a_parsed_event_that_cannot_be_serialised_is_an_invalid_event():
    event = samples.load("cloudwatch_alarm_ec2_status_check.json")
    event["detail"]["self"] = event["detail"]  # circular: only a Python caller can hand this over
    with pytest.raises(InvalidEvent, match=r"^event: cannot be serialised: ValueError: Circular reference"):
        route(event)


def test_the_handler_returns_the_reason_for_a_deep_event_instead_of_raising(caplog):
    with caplog.at_level(logging.ERROR, logger="matcarv_aiops.ingress"):
        outcome = lambda_module.handler(_deep_event(255), None)
    assert outcome["rejected"].startswith("event: cannot be serialised")
    assert '"rejected"' in caplog.text


def _from_account(name: str, account: str) -> dict:
    event = samples.load(name)
    event["account"] = account
    return event


def test_without_a_configured_scope_every_account_is_accepted():
    routed = route(_from_account("cloudwatch_alarm_ec2_status_check.json", STRANGER))
    assert [m.remediation for m in routed.matches] == ["ec2_status_check_failed"]


@pytest.mark.parametrize("account", [HUB, MEMBER])
def test_the_hub_and_its_members_are_accepted(account):
    scope = AccountScope(hub=HUB, members=(MEMBER,))
    routed = route(_from_account("cloudwatch_alarm_ec2_status_check.json", account), accounts=scope)
    assert [m.remediation for m in routed.matches] == ["ec2_status_check_failed"]
    assert routed.matches[0].target.split(":")[4] == account


def test_an_event_from_another_account_is_ignored_with_the_reason():
    scope = AccountScope(hub=HUB, members=(MEMBER,))
    routed = route(_from_account("cloudwatch_alarm_ec2_status_check.json", STRANGER), accounts=scope)
    assert routed.matches == ()
    assert routed.ignored == (
        f"account: {STRANGER} is neither the hub ({HUB}) nor a member account ({MEMBER})"
    )


def test_with_no_member_list_every_account_is_accepted():
    scope = AccountScope(hub=HUB)
    assert route(_from_account("cloudwatch_alarm_ec2_status_check.json", HUB), accounts=scope).matches
    assert route(_from_account("cloudwatch_alarm_ec2_status_check.json", MEMBER), accounts=scope).matches


def test_the_scope_comes_from_the_settings():
    settings = Settings(hub_account=HUB, member_accounts=(MEMBER,))
    assert AccountScope.from_settings(settings) == AccountScope(HUB, (MEMBER,))
    assert Settings.from_env(
        {"AIOPS_MEMBER_ACCOUNTS": f"{MEMBER}, 222222222222"}
    ).ingress.member_accounts == (
        MEMBER,
        "222222222222",
    )


def test_the_handler_ignores_a_strangers_event_without_raising(monkeypatch, caplog):
    monkeypatch.setenv("AIOPS_HUB_ACCOUNT", HUB)
    monkeypatch.setenv("AIOPS_MEMBER_ACCOUNTS", MEMBER)
    reload_settings()
    try:
        with caplog.at_level(logging.INFO, logger="matcarv_aiops.ingress"):
            outcome = lambda_module.handler(
                _from_account("cloudwatch_alarm_ec2_status_check.json", STRANGER), None
            )
    finally:
        monkeypatch.undo()
        reload_settings()
    assert outcome["matches"] == [] and outcome["ignored"].startswith(f"account: {STRANGER}")
    assert '"ignored"' in caplog.text


def test_a_target_arn_in_another_account_than_the_events_is_refused():
    event = samples.load("cloudtrail_ec2_authorize_ssh_world.json")
    foreign = f"arn:aws:ec2:us-east-1:{STRANGER}:security-group/sg-0123456789abcdef0"
    event["detail"]["requestParameters"]["groupId"] = foreign
    routed = route(event)
    assert routed.matches == ()
    assert (
        f"sg_open_ssh: matched but refused: target {foreign} is in account {STRANGER}, "
        f"not the event's account {HUB}"
    ) in routed.ignored


def test_a_target_arn_in_the_events_own_account_is_accepted():
    event = samples.load("cloudtrail_ec2_authorize_ssh_world.json")
    own = f"arn:aws:ec2:us-east-1:{HUB}:security-group/sg-0123456789abcdef0"
    event["detail"]["requestParameters"]["groupId"] = own
    assert [m.target for m in route(event).matches] == [own]


def _finding_for(account: str) -> dict:
    event = samples.load("guardduty_finding_credential_exfiltration.json")
    event["detail"]["accountId"] = account
    return event


def test_a_finding_may_name_a_member_account_the_hub_handles():
    scope = AccountScope(hub=HUB, members=(MEMBER,))
    [match] = route(_finding_for(MEMBER), accounts=scope).matches
    assert match.target == f"arn:aws:iam::{MEMBER}:role/web-instance-role"


def test_a_finding_naming_an_account_the_hub_does_not_handle_is_refused():
    scope = AccountScope(hub=HUB, members=(MEMBER,))
    routed = route(_finding_for(STRANGER), accounts=scope)
    assert routed.matches == ()
    assert f"matched but refused: target account {STRANGER} is neither the hub ({HUB})" in routed.ignored


def test_aiops_route_applies_the_configured_accounts(monkeypatch, tmp_path, capsys):
    from matcarv_aiops.cli import main

    path = tmp_path / "event.json"
    path.write_text(json.dumps(_from_account("cloudwatch_alarm_ec2_status_check.json", STRANGER)))
    assert main(["route", str(path)]) == 0  # nothing configured: every account
    assert json.loads(capsys.readouterr().out)["matches"]
    monkeypatch.setenv("AIOPS_MEMBER_ACCOUNTS", MEMBER)
    reload_settings()
    try:
        assert main(["route", str(path)]) == 0
        outcome = json.loads(capsys.readouterr().out)
    finally:
        monkeypatch.undo()
        reload_settings()
    assert outcome["matches"] == [] and outcome["ignored"].startswith(f"account: {STRANGER} is neither")
