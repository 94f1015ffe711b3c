import json

import pytest

from matcarv_aiops.remediations import iam_access_key_old
from tests.events import ACCOUNT, config_compliance_event
from tests.remediations.iam_setup import key_status, user_with_keys
from tests.remediations.notifications import TopicInbox


@pytest.fixture
def inbox(aws):
    return TopicInbox(aws)


def _event(user_id):
    return config_compliance_event("access-keys-rotated", "AWS::IAM::User", user_id)


def test_disables_only_the_old_key_and_notifies_the_owner(remediate, inbox):
    iam, user_id, (old, new) = user_with_keys(
        "deploy-bot", [120, 10], tags={"Owner": "team-payments@example.com"}
    )
    run = remediate("iam_access_key_old", {"event": _event(user_id)})
    assert run.outcome == "SUCCESS", run.audit.action
    assert key_status(iam, "deploy-bot") == {old: "Inactive", new: "Active"}
    [note] = inbox.messages("notification")
    payload = json.loads(note["MessageAttributes"]["payload"]["Value"])
    assert payload["owner"] == "team-payments@example.com" and payload["disabledAccessKeys"] == old


def test_key_age_scan_starts_it_with_the_user_arn(remediate, inbox):
    iam, _, (old,) = user_with_keys("ci", [400])
    run = remediate(
        "iam_access_key_old", {"target": f"arn:aws:iam::{ACCOUNT}:user/ci", "reason": "key-age scan"}
    )
    assert run.outcome == "SUCCESS", run.audit.action
    assert key_status(iam, "ci") == {old: "Inactive"}


def test_validation_failure_re_enables_the_keys(remediate, inbox, monkeypatch):
    iam, user_id, (old1, old2) = user_with_keys("legacy", [200, 95])
    real_keys = iam_access_key_old.IamAccessKeyOld._keys
    calls = {"n": 0}

    def stale_read_after_execute(self, ctx, user_name):  # validate's read still sees the first key Active
        keys = real_keys(self, ctx, user_name)
        calls["n"] += 1
        if calls["n"] == 3:  # 1: describe, 2: execute, 3: validate
            keys = [dict(k, status="Active") if k["access_key_id"] == old1 else k for k in keys]
        return keys

    monkeypatch.setattr(iam_access_key_old.IamAccessKeyOld, "_keys", stale_read_after_execute)
    run = remediate("iam_access_key_old", {"event": _event(user_id)})
    assert run.outcome == "FAILURE" and f"still Active: {old1}" in run.audit.action
    assert run.record("rollback").done["rolled_back"] and old1 in run.record("rollback").done["detail"]
    assert key_status(iam, "legacy") == {old1: "Active", old2: "Active"}


def test_keys_within_age_are_skipped(remediate, inbox):
    iam, user_id, (key,) = user_with_keys("fresh", [30])
    run = remediate("iam_access_key_old", {"event": _event(user_id)})
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action
    assert key_status(iam, "fresh") == {key: "Active"} and inbox.messages("notification") == []


def test_old_key_already_inactive_is_skipped(remediate, inbox):
    iam, user_id, (key,) = user_with_keys("rotated", [300])
    iam.update_access_key(UserName="rotated", AccessKeyId=key, Status="Inactive")
    run = remediate("iam_access_key_old", {"event": _event(user_id)})
    assert run.outcome == "SKIPPED" and key_status(iam, "rotated") == {key: "Inactive"}


def test_the_owner_named_by_the_aiops_owner_tag_is_emailed_through_ses(remediate, inbox, monkeypatch):
    import boto3
    from moto.ses.models import ses_backends

    from matcarv_aiops.settings import reload_settings

    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress="aiops@example.com")
    monkeypatch.setenv("AIOPS_OWNER_EMAIL_SENDER", "aiops@example.com")
    reload_settings()
    iam, user_id, (old,) = user_with_keys(
        "billing-export", [150], tags={"aiops:owner": "dana@example.com", "Owner": "team-billing"}
    )
    run = remediate("iam_access_key_old", {"event": _event(user_id)})
    assert run.outcome == "SUCCESS" and "notified (email:dana@example.com)" in run.audit.action
    [email] = ses_backends[ACCOUNT]["us-east-1"].sent_messages
    assert email.destinations["ToAddresses"] == ["dana@example.com"] and old in email.body
    assert inbox.messages("notification") == []  # told directly, not through the topic
