"""Exemptions from the CLI: ``aiops exempt add|list|remove``, bounded expiry, every change audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from matcarv_aiops import exemptions
from matcarv_aiops.audit import AuditQuery, AuditWriter, query_audit
from matcarv_aiops.cli import main
from matcarv_aiops.exemptions import EXEMPT_RUNBOOK, BadExemption, parse_expiry
from matcarv_aiops.models import Target
from matcarv_aiops.safety import SafetyStore

BUCKET = "arn:aws:s3:::public-bucket"
TARGET = Target(arn=BUCKET, resource_id="public-bucket", region="us-east-1", account="123456789012")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def history(settings):
    query = AuditQuery(since=datetime.now(UTC) - timedelta(hours=1), until=datetime.now(UTC), target=BUCKET)
    return query_audit(settings, query).records


def test_add_exempts_and_audits_with_the_given_operator(aws, capsys):
    assert main(["exempt", "add", BUCKET, "--owner", "bob", "--reason", "public website", "--expires", "7d",
                 "--operator", "alice"]) == 0  # fmt: skip
    added = json.loads(capsys.readouterr().out)
    assert added["exemption"]["owner"] == "bob"
    assert "until" in SafetyStore(aws).exemption(TARGET, {})
    [record] = history(aws)
    assert (record.runbook, record.outcome.value, record.operator) == (EXEMPT_RUNBOOK, "SUCCESS", "alice")
    assert "exempted from automated remediation until" in record.action and "public website" in record.action
    assert record.execution_id == added["audit"]["executionId"]
    # Whose credentials wrote it: the AWS identity (moto's), whatever --operator says.
    assert record.requested_by.startswith("arn:aws:")


def test_without_operator_the_aws_identity_is_the_operator(aws, capsys):
    assert main(["exempt", "add", BUCKET, "--owner", "bob", "--reason", "r", "--expires", "1d"]) == 0
    [record] = history(aws)
    assert record.operator == record.requested_by and record.operator.startswith("arn:aws:")


def test_list_shows_owner_reason_and_expiry_and_hides_expired(aws, capsys):
    store = SafetyStore(aws)
    store.add_exemption(
        BUCKET, owner="bob", reason="website", expires_at=datetime.now(UTC) + timedelta(days=2)
    )
    store.add_exemption(
        "arn:aws:s3:::old", owner="carol", reason="gone", expires_at=datetime.now(UTC) - timedelta(days=1)
    )
    assert main(["exempt", "list", "--json"]) == 0
    assert [(e["targetResource"], e["owner"], e["reason"]) for e in json.loads(capsys.readouterr().out)] == [
        (BUCKET, "bob", "website")
    ]
    assert main(["exempt", "list", "--all"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["EXPIRES", "TARGET", "OWNER", "REASON"]
    assert [line.split()[1] for line in table[1:]] == ["arn:aws:s3:::old", BUCKET]  # soonest expiry first


def test_remove_ends_the_exemption_and_audits_it(aws, capsys):
    SafetyStore(aws).add_exemption(
        BUCKET, owner="bob", reason="website", expires_at=datetime.now(UTC) + timedelta(days=2)
    )
    assert main(["exempt", "remove", BUCKET, "--reason", "site retired", "--operator", "alice"]) == 0
    assert SafetyStore(aws).exemption(TARGET, {}) is None
    [record] = history(aws)
    assert (
        record.operator == "alice"
        and "exemption removed" in record.action
        and "site retired" in record.action
    )


def test_removing_what_is_not_there_is_refused_and_not_audited(aws, capsys):
    assert main(["exempt", "remove", BUCKET, "--reason", "x"]) == 2
    assert "has no exemption to remove" in capsys.readouterr().err
    assert history(aws) == []


def test_no_exemption_changes_without_its_audit_record(aws, monkeypatch):
    store = SafetyStore(aws)
    store.add_exemption(BUCKET, owner="bob", reason="old", expires_at=datetime.now(UTC) + timedelta(days=1))
    before = store.exemption_of(BUCKET)

    def audit_down(self, record):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(AuditWriter, "write", audit_down)
    with pytest.raises(RuntimeError, match="unavailable"):
        exemptions.add(
            aws, BUCKET, owner="eve", reason="new", expires="3d", operator="eve", requested_by="eve"
        )
    assert store.exemption_of(BUCKET) == before
    with pytest.raises(RuntimeError, match="unavailable"):
        exemptions.remove(aws, BUCKET, reason="gone", operator="eve", requested_by="eve")
    assert store.exemption_of(BUCKET) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--owner", "bob", "--reason", "r", "--expires", "2020-01-01"], "is in the past"),
        (["--owner", "bob", "--reason", "r", "--expires", "91d"], "more than 90 days ahead"),
        (["--owner", " ", "--reason", "r", "--expires", "1d"], "--owner is required"),
        (["--owner", "bob", "--reason", "", "--expires", "1d"], "--reason is required"),
        (["--owner", "bob", "--reason", "r", "--expires", "soon"], "neither a duration"),
    ],
)
def test_add_refuses_bad_input_in_one_line(aws, capsys, argv, message):
    assert main(["exempt", "add", BUCKET, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert SafetyStore(aws).exemption_of(BUCKET) is None and history(aws) == []


def test_add_refuses_a_target_that_is_not_an_arn(aws, capsys):
    assert main(["exempt", "add", "public-bucket", "--owner", "b", "--reason", "r", "--expires", "1d"]) == 2
    assert "is not an ARN" in capsys.readouterr().err


def test_expiry_forms_and_the_configured_maximum(settings, monkeypatch):
    assert parse_expiry("12h", settings, now=NOW) == NOW + timedelta(hours=12)
    assert parse_expiry("2w", settings, now=NOW) == NOW + timedelta(days=14)
    assert parse_expiry("2026-12-07", settings, now=NOW) == datetime(2026, 12, 7, tzinfo=UTC)
    assert parse_expiry("2026-12-07T10:00:00+02:00", settings, now=NOW) == datetime(
        2026, 12, 7, 8, tzinfo=UTC
    )
    assert parse_expiry("90d", settings, now=NOW) == NOW + timedelta(days=90)
    monkeypatch.setenv("AIOPS_EXEMPTION_MAX_DAYS", "7")
    from matcarv_aiops.settings import reload_settings

    with pytest.raises(BadExemption, match="more than 7 days ahead"):
        parse_expiry("8d", reload_settings(), now=NOW)
