from datetime import UTC, datetime, timedelta

import pytest

from matcarv_aiops.approvals import ApprovalError, ApprovalStore
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, Target, iso_utc
from matcarv_aiops.safety import SafetyStore, is_production
from matcarv_aiops.settings import Settings

TARGET = Target.from_arn("arn:aws:sqs:us-east-1:123456789012:q")


@pytest.mark.parametrize(
    "tags,accounts,non_production,expected",
    [
        ({"Environment": "prod"}, (), (), True),
        ({"environment": "Production"}, (), (), True),
        ({"Environment": "staging"}, (), (), False),
        ({"Environment": "staging"}, ("123456789012",), (), True),  # the account wins over the tag
        ({}, ("123456789012",), (), True),
        ({}, ("999999999999",), ("123456789012",), False),  # a known non-production account
        # An account of unknown class: an untagged (or blank-tagged) resource is production.
        ({}, ("999999999999",), (), True),
        ({}, (), ("999999999999",), True),
        ({"Environment": " "}, (), (), True),
        ({"Environment": "prod"}, (), ("123456789012",), True),
    ],
)
def test_production(tags, accounts, non_production, expected):
    settings = Settings(production_accounts=accounts, non_production_accounts=non_production)
    assert is_production(TARGET, tags, settings) is expected


def test_claim_lock_cooldown_and_exemption(aws):
    store = SafetyStore(aws)
    assert store.claim_execution("e1", "run-a", "d") is None
    assert store.claim_execution("e1", "run-a", "d") is None  # a retry of the same run
    assert store.claim_execution("e1", "run-b", "d") == "run-a"

    assert store.acquire_lock(TARGET.arn, "e1") is None
    assert store.acquire_lock(TARGET.arn, "e2") == "e1"
    store.release_lock(TARGET.arn, "e2")  # not the holder: no effect
    assert store.acquire_lock(TARGET.arn, "e2") == "e1"
    store.release_lock(TARGET.arn, "e1")
    assert store.acquire_lock(TARGET.arn, "e2") is None

    assert store.cooldown_or_flapping("x", TARGET.arn) is None
    assert store.record_action("x", TARGET.arn, "e1") is True
    reason, escalate = store.cooldown_or_flapping("x", TARGET.arn)
    assert "in cooldown" in reason and not escalate
    # One execution counts once, however often its action is recorded (a retried audit, the reconciler).
    assert store.record_action("x", TARGET.arn, "e1") is False
    assert len(store.recent_actions("x", TARGET.arn)) == 1
    for n in (2, 3):
        store.record_action("x", TARGET.arn, f"e{n}")
    reason, escalate = store.cooldown_or_flapping("x", TARGET.arn)
    assert "flapping" in reason and escalate

    assert store.exemption(TARGET, {"aiops:exempt": "TRUE"}).startswith("exempt: tagged")
    assert store.exemption(TARGET, {}) is None
    store.add_exemption(
        TARGET.arn,
        owner="team-a",
        reason="migration",
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    assert "owner team-a: migration" in store.exemption(TARGET, {})
    store.add_exemption(
        TARGET.arn, owner="team-a", reason="old", expires_at=datetime.now(UTC) - timedelta(days=1)
    )
    assert store.exemption(TARGET, {}) is None


def request(execution_id: str, minutes: float = 30, **extra) -> ApprovalRecord:
    now = datetime.now(UTC)
    return ApprovalRecord(
        **extra,
        execution_id=execution_id,
        remediation="s3_public_access",
        dag_id="d",
        run_id="r",
        target_resource="arn:aws:s3:::b",
        action="a",
        diagnostics_uri="s3://x/y",
        rollback_plan="none",
        reason_for_approval="always",
        requested_at=iso_utc(now),
        expires_at=iso_utc(now + timedelta(minutes=minutes)),
    )


def test_approval_is_bound_to_one_execution_and_decided_once(aws):
    store = ApprovalStore(aws)
    assert store.create(request("e1")) and not store.create(request("e1"))
    with pytest.raises(ApprovalError, match="no approval request for execution e2"):
        store.decide("e2", approve=True, approver="alice", reason="ok")
    with pytest.raises(ApprovalError, match="no approver identity"):
        store.decide("e1", approve=True, approver=" ", reason="ok")
    decided = store.decide("e1", approve=True, approver="alice", reason="ok")
    assert decided.status is ApprovalStatus.APPROVED and decided.approver == "alice"
    with pytest.raises(ApprovalError, match="already APPROVED by alice"):
        store.decide("e1", approve=False, approver="carol", reason="no")
    assert store.get("e1").approver == "alice"


def test_expired_request_cannot_be_approved(aws):
    store = ApprovalStore(aws)
    store.create(request("e3", minutes=-1))
    with pytest.raises(ApprovalError, match="expired"):
        store.decide("e3", approve=True, approver="alice", reason="late")
    assert store.get("e3").status is ApprovalStatus.EXPIRED


def test_the_intent_marker_is_written_once_and_read_back(aws):
    from matcarv_aiops.safety import SafetyStore

    store = SafetyStore(aws)
    assert store.intent("e-1") is None
    assert store.mark_intent("e-1", "run-1", "revoke 0.0.0.0/0:22") is None
    again = store.mark_intent("e-1", "run-1", "revoke 0.0.0.0/0:22")
    assert again is not None and again["runId"] == "run-1" and again["action"] == "revoke 0.0.0.0/0:22"
    assert store.intent("e-1") == again
    assert store.intent("e-2") is None


@pytest.mark.parametrize(
    "approver,authenticated,refusal",
    [
        ("mallory", True, "mallory is not in the approver group"),
        ("automated", True, "'automated' is the platform's own name"),
        ("bob@example.com", True, "bob@example.com requested the run of execution e4 and cannot decide it"),
        ("alice", False, "no authenticated user is behind this decision"),
    ],
)
def test_who_may_not_decide_is_refused_and_the_request_stays_pending(aws, approver, authenticated, refusal):
    store = ApprovalStore(aws)
    store.create(request("e4", requested_by="bob@example.com"))
    with pytest.raises(ApprovalError, match=refusal):
        store.decide("e4", approve=True, approver=approver, reason="ok", authenticated=authenticated)
    record = store.get("e4")
    assert (record.status, record.approver) == (ApprovalStatus.PENDING, None)


def test_an_empty_approver_group_refuses_everyone(aws, monkeypatch):
    from matcarv_aiops.settings import reload_settings

    monkeypatch.setenv("AIOPS_APPROVERS", "")
    settings = reload_settings()
    store = ApprovalStore(settings)
    store.create(request("e5"))
    with pytest.raises(ApprovalError, match="no approver group is configured"):
        store.decide("e5", approve=True, approver="alice", reason="ok")


def test_a_cli_decision_counts_only_where_the_setting_allows_it(aws, monkeypatch):
    from matcarv_aiops.settings import reload_settings

    monkeypatch.setenv("AIOPS_ALLOW_UNAUTHENTICATED_DECISIONS", "true")
    store = ApprovalStore(reload_settings())
    store.create(request("e6"))
    decided = store.decide("e6", approve=True, approver="alice", reason="ok", authenticated=False)
    assert decided.status is ApprovalStatus.APPROVED


def test_two_approvers_the_same_person_twice_is_not_two(aws):
    store = ApprovalStore(aws)
    store.create(request("e7", approvals_required=2, requested_by="carol"))
    first = store.decide("e7", approve=True, approver="alice", reason="looks right")
    assert (first.status, first.approver, first.decided_at) == (ApprovalStatus.PENDING, "alice", None)
    with pytest.raises(ApprovalError, match="alice already approved execution e7; it needs 2 distinct"):
        store.decide("e7", approve=True, approver="alice", reason="again")
    with pytest.raises(ApprovalError, match="carol requested the run"):
        store.decide("e7", approve=True, approver="carol", reason="mine")
    second = store.decide("e7", approve=True, approver="bob@example.com", reason="agreed")
    assert (second.status, second.approver) == (ApprovalStatus.APPROVED, "alice,bob@example.com")
    assert second.decided_at


def test_a_second_approver_may_still_reject(aws):
    store = ApprovalStore(aws)
    store.create(request("e8", approvals_required=2))
    store.decide("e8", approve=True, approver="alice", reason="fine")
    rejected = store.decide("e8", approve=False, approver="carol", reason="not in business hours")
    assert (rejected.status, rejected.approver) == (ApprovalStatus.REJECTED, "carol")
    assert rejected.decision_reason == "not in business hours (rejected after approval by alice)"


def test_a_decision_raced_by_another_fails_rather_than_counting_twice(aws, monkeypatch):
    """The write is conditional on the approvers read: a decision landing in between makes it fail."""
    store = ApprovalStore(aws)
    store.create(request("e9", approvals_required=2))
    stale = store.get("e9")
    store.decide("e9", approve=True, approver="alice", reason="first")
    monkeypatch.setattr(store, "get", lambda execution_id: stale)  # as read before alice's decision
    with pytest.raises(ApprovalError, match="changed while deciding"):
        store.decide("e9", approve=True, approver="bob@example.com", reason="raced")
    monkeypatch.undo()
    assert ApprovalStore(aws).get("e9").approver == "alice"


def test_history_written_before_it_kept_execution_ids_still_counts(aws):
    import time

    from matcarv_aiops.aws import hub_client

    hub_client("dynamodb", aws).put_item(
        TableName=aws.platform.state_table,
        Item={"pk": {"S": f"history#x#{TARGET.arn}"}, "actions": {"NS": [repr(time.time() - 60)]}},
    )
    store = SafetyStore(aws)
    assert len(store.recent_actions("x", TARGET.arn)) == 1
    assert store.record_action("x", TARGET.arn, "e1") is True
    assert store.record_action("x", TARGET.arn, "e1") is False
    assert len(store.recent_actions("x", TARGET.arn)) == 2


def test_cancel_closes_only_a_pending_request(aws):
    store = ApprovalStore(aws)
    store.create(request("e1"))
    store.create(request("e2"))
    store.decide("e2", approve=True, approver="alice", reason="ok")
    assert store.cancel("e1", "run ended").status == ApprovalStatus.CANCELLED
    assert store.cancel("e2", "run ended").status == ApprovalStatus.APPROVED
    assert store.cancel("e3", "run ended") is None
    with pytest.raises(ApprovalError, match="already CANCELLED"):
        store.decide("e1", approve=True, approver="alice", reason="late")
