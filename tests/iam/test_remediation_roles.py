"""Every catalogue entry's remediation runs under its generated role, with IAM enforced, and fails with
AccessDenied once its role lacks one action the run calls (so enforcement was on).

The role holds ``remediation_roles.entry_statements(entry)``: the statements the CDK app synthesizes, made
with this account and region. The scenario is the entry's own happy-path test (the first test of
``tests/remediations/test_<entry>.py``), run again with its ``remediate`` running under enforcement: it
arranges the problem with enforcement off, and asserts the fix took. The hub side (claims, locks,
diagnostics, approvals, audit) runs as the execution role, from the synthesized template.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from functools import cache

import pytest
from moto.core.authorization import disable_iam_authentication

from aiops_infra.remediation_roles import entry_statements, remediation_role_name
from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.remediations.base import RemediationContext
from tests.iam.policies import (
    ACCOUNT,
    REGION,
    SIGNATURE_UNVERIFIABLE,
    actions_of,
    document_of,
    put_role,
    without_action,
)
from tests.remediations.conftest import run_remediation
from tests.remediations.iam_calls import IAM_ACTION_OF
from tests.remediations.lambda_fixtures import _AccountSettingsFromStubber
from tests.remediations.notifications import TopicInbox
from tests.remediations.stubs import stubbed_clients

ENTRIES = sorted(catalogue().values(), key=lambda e: e.id)
READ_PREFIXES = ("Describe", "Get", "List")


def happy_path(entry_id: str) -> tuple[Callable, list[Callable]]:
    """The entry's first test (its happy path, by the convention test_catalogue_meta holds) and the
    module's autouse fixtures."""
    module = importlib.import_module(f"tests.remediations.test_{entry_id}")
    tests = [f for name, f in vars(module).items() if name.startswith("test_") and inspect.isfunction(f)]
    assert tests, f"{entry_id} has no tests in {module.__name__}"
    autouse = [
        f._get_wrapped_function()
        for f in vars(module).values()
        if hasattr(f, "_fixture_function_marker") and f._fixture_function_marker.autouse
    ]
    return tests[0], autouse


def _call_with(function: Callable, values: dict) -> object:
    return function(**{name: values[name]() for name in inspect.signature(function).parameters})


def run_scenario(entry_id: str, account, monkeypatch, runs: list, calls: list) -> None:
    """The entry's happy-path test, its remediation under enforcement; records each run and each call
    made with the remediation role's clients (stubbed services never reach moto, so they are not)."""
    from matcarv_aiops.settings import get_settings

    real_client = RemediationContext.client

    def recording_client(self, service):
        client = real_client(self, service)
        if not getattr(client, "_aiops_enforced", False):
            client.meta.events.register(
                "before-call.*.*",
                lambda model, **_: calls.append(
                    IAM_ACTION_OF.get(f"{service}:{model.name}", f"{service}:{model.name}")
                ),
            )
            client._aiops_enforced = True
        return client

    monkeypatch.setattr(RemediationContext, "client", recording_client)
    # The stand-in for Lambda's GetAccountSettings (moto lacks it) tallies reservations with the test's
    # own client: test scaffolding, outside enforcement.
    tally = _AccountSettingsFromStubber.get_account_settings

    def get_account_settings(self, **kwargs):
        with disable_iam_authentication():
            return tally(self, **kwargs)

    monkeypatch.setattr(_AccountSettingsFromStubber, "get_account_settings", get_account_settings)

    def remediate(remediation_id, conf, **kwargs):
        with account.enforced():
            run = run_remediation(remediation_id, conf, **kwargs)
        runs.append(run)
        print(
            remediation_id, run.outcome, run.crashed, {k: v.error for k, v in run.records.items() if v.error}
        )
        return run

    test, autouse = happy_path(entry_id)
    values = {
        "remediate": lambda: remediate,
        "monkeypatch": lambda: monkeypatch,
        "settings": get_settings,
        "aws": get_settings,
        "inbox": lambda: TopicInbox(get_settings()),
        "config": lambda: stubbed_clients(monkeypatch)("config"),
        "guardduty": lambda: stubbed_clients(monkeypatch)("guardduty"),
    }
    # The module's own fixtures the happy path asks for (guardduty's quarantine_policy, say).
    module = importlib.import_module(f"tests.remediations.test_{entry_id}")
    for name, fixture in vars(module).items():
        if name not in values and hasattr(fixture, "_fixture_function_marker"):
            values[name] = lambda fixture=fixture: _call_with(fixture._get_wrapped_function(), values)
    finalisers = []
    for fixture in autouse:
        result = _call_with(fixture, values)
        if inspect.isgenerator(result):
            next(result)
            finalisers.append(result)
    try:
        _call_with(test, values)
    finally:
        for generator in finalisers:
            next(generator, None)


@cache
def generated_document(entry_id: str) -> dict:
    """The entry's role policy as the CDK app generates it, in this account and region."""
    entry = catalogue()[entry_id]
    return document_of(entry_statements(entry, region=REGION, account=ACCOUNT, hub_account=ACCOUNT))


def grant_every_entry(account, *, but: str) -> None:
    """Every other entry's role (a scenario may start a second remediation, e.g. one that stands aside)."""
    for entry in ENTRIES:
        if entry.id != but:
            put_role(
                remediation_role_name(entry.id), generated_document(entry.id), trusted_arn=account.session_arn
            )


def access_denied(run, action: str) -> str | None:
    """The crash or step failure of ``run`` that says ``action`` was denied, if any."""
    reasons = list(run.crashed.values()) + [r.error or "" for r in run.records.values()]
    service, name = action.split(":")
    for reason in reasons:
        if ("AccessDenied" in reason or "not authorized" in reason) and name in reason:
            return reason
        # moto's 403 for CloudFront and Route 53 has a body botocore cannot parse: no code, no message.
        if (
            service in SIGNATURE_UNVERIFIABLE
            and f"error occurred () when calling the {name} operation" in reason
        ):
            return reason
    return None


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_remediation_runs_under_its_generated_role_and_fails_without_an_action(entry, account, monkeypatch):
    document = generated_document(entry.id)
    role = remediation_role_name(entry.id)
    grant_every_entry(account, but=entry.id)
    put_role(role, document, trusted_arn=account.session_arn)
    runs: list = []
    calls: list[str] = []
    run_scenario(entry.id, account, monkeypatch, runs, calls)
    # The scenario's own assertions judged the runs; none may have been refused anything.
    assert any(run.outcome == "SUCCESS" for run in runs), runs
    assert not [a for run in runs for a in calls if access_denied(run, a)], runs
    granted = set(actions_of(document))
    used = [c for c in dict.fromkeys(calls) if c in granted]
    assert used, f"{entry.id} made no call under its role"

    # The change itself, where the run makes one under the role (else its first call): without it the
    # same scenario must fail, with AccessDenied naming that action.
    changes = [c for c in used if not c.split(":")[1].startswith(READ_PREFIXES)]
    removed = (changes or used)[0]
    account.fresh()
    grant_every_entry(account, but=entry.id)
    put_role(role, without_action(document, removed), trusted_arn=account.session_arn)
    denied_runs: list = []
    with pytest.raises(Exception):  # noqa: B017 (the scenario's own assertion, or its next step, fails)
        run_scenario(entry.id, account, monkeypatch, denied_runs, [])
    assert denied_runs, f"{entry.id}: the scenario failed before its run"
    outcomes = [
        (r.outcome, r.crashed, {k: v.error for k, v in r.records.items() if v.error}) for r in denied_runs
    ]
    assert any(access_denied(run, removed) for run in denied_runs), (
        f"{entry.id} without {removed}: expected AccessDenied, got {outcomes}"
    )
