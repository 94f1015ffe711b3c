"""The AIOps view, mounted by Airflow's own API server app (plugins loaded from plugins/, the simple auth
manager's JWTs), against moto in-process: who may see it, what it shows, and who gets the buttons."""

from __future__ import annotations

import html
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from matcarv_aiops import approvals, console
from matcarv_aiops.audit import AuditWriter
from matcarv_aiops.aws import hub_client
from matcarv_aiops.models import AuditRecord, Outcome, iso_utc
from matcarv_aiops.safety import SafetyStore

BUCKET_ARN = "arn:aws:s3:::ui-public-bucket"


@pytest.fixture(scope="module")
def api(airflow_db):
    """The plugin's app mounted at its prefix, as Airflow's API server mounts it, with Airflow's auth
    manager (the simple one, as locally) initialised as the API server does; JWTs it signed for each user."""
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_auth_manager, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    apps, _ = plugins_manager.get_fastapi_plugins()  # the plugins folder's plugin files, as loaded
    (mounted,) = [a for a in apps if a["name"] == "AIOps"]
    root = FastAPI()
    manager = init_auth_manager(root)
    root.mount(mounted["url_prefix"], mounted["app"])
    tokens = {
        name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
        for name, role in (("alice", "op"), ("mallory", "op"), ("nobody", None))
    }
    with TestClient(root) as client:
        yield client, tokens
    purge_cached_app()


def _get(api, path: str, user: str | None, **kwargs):
    client, tokens = api
    headers = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
    return client.get(path, headers=headers, **kwargs)


@pytest.fixture
def approvers(monkeypatch, aws):
    monkeypatch.setenv("AIOPS_APPROVERS", "alice")
    from matcarv_aiops.settings import reload_settings

    return reload_settings()


def _request(settings, target: str = BUCKET_ARN, **extra) -> str:
    execution_id = str(uuid.uuid4())
    key = f"diagnostics/s3_public_access/{execution_id}/state.json"
    hub_client("s3", settings).put_object(
        Bucket=settings.platform.diagnostics_bucket, Key=key, Body=json.dumps({"acl": "public-read"}).encode()
    )
    # As the pipeline does: the execution is claimed first, then its approval is requested.
    SafetyStore(settings).claim_execution(execution_id, "event__abc", "remediate_s3_public_access")
    approvals.request(
        settings,
        execution_id=execution_id,
        remediation="s3_public_access",
        dag_id="remediate_s3_public_access",
        run_id="event__abc",
        target=target,
        action="PutPublicAccessBlock on bucket ui-public-bucket with all four settings",
        diagnostics_uri=f"s3://{settings.platform.diagnostics_bucket}/{key}",
        rollback_plan="none: irreversible, so a human approves",
        why="irreversible action",
        account="123456789012",
        region="us-east-1",
        **extra,
    )
    return execution_id


def test_no_route_answers_without_airflows_login(api, approvers):
    execution_id = _request(approvers)
    for path in ("/aiops/", f"/aiops/diagnostics/{execution_id}", "/aiops/?outcome=SUCCESS"):
        answer = _get(api, path, None)
        assert answer.status_code == 401, (path, answer.text)
        assert "ui-public-bucket" not in answer.text
    client, _ = api
    forged = client.get("/aiops/", headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code == 403
    # A signed-in user without read access to DAG runs (no role) is refused too.
    assert _get(api, "/aiops/", "nobody").status_code == 403


def test_a_browser_opening_the_request_link_signed_out_goes_through_airflows_login_and_back(api, approvers):
    execution_id = _request(approvers)
    client, _ = api
    link = console.view_url(str(client.base_url), execution_id)
    answer = client.get(link, headers={"Accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    login, _, query = answer.headers["location"].partition("?")
    assert login == "/auth/login"
    assert parse_qs(query) == {"next": [link]}
    assert "ui-public-bucket" not in answer.text
    # Not a browser, or a forged token: the error itself, never a redirect.
    assert client.get(link, follow_redirects=False).status_code == 401
    forged = client.get(
        link,
        headers={"Accept": "text/html", "Authorization": "Bearer not-a-jwt"},
        follow_redirects=False,
    )
    assert forged.status_code == 403


def test_the_cookie_of_the_ui_login_is_enough(api, approvers):
    client, tokens = api
    answer = client.get("/aiops/", headers={"Cookie": f"_token={tokens['alice']}"})
    assert answer.status_code == 200 and 'id="user">alice<' in answer.text


def test_a_pending_approval_shows_everything_the_approver_needs(api, approvers):
    execution_id = _request(approvers)
    page = _get(api, f"/aiops/?execution={execution_id}", "alice").text
    section = page[page.index(f'id="approval-{execution_id}"') :].split("</section>")[0]
    for shown in (
        BUCKET_ARN,
        "123456789012 / us-east-1",
        "s3_public_access",
        "PutPublicAccessBlock on bucket ui-public-bucket",
        "none: irreversible, so a human approves",
        f"diagnostics/{execution_id}",
        "automated at",
        "Time left",
        "59 min",
        'name="approve"',
        'name="reject"',
        "../api/v2/dags/approve_remediation/dagRuns",
        "../dags/remediate_s3_public_access/runs/event__abc",
    ):
        assert shown in section, shown
    assert 'class="pending focus"' in page  # the request the link named is marked


def test_only_the_approver_group_sees_the_buttons(api, approvers):
    execution_id = _request(approvers)
    page = _get(api, "/aiops/", "mallory").text
    assert f'id="approval-{execution_id}"' in page
    assert 'name="approve"' not in page and 'name="reject"' not in page
    assert "not in the approver group" in page


def test_decided_and_expired_requests_are_not_pending(api, approvers):
    decided = _request(approvers)
    approvals.decide(approvers, decided, approve=False, approver="alice", reason="not now")
    expired = _request(approvers)
    hub_client("dynamodb", approvers).update_item(
        TableName=approvers.platform.approvals_table,
        Key={"executionId": {"S": expired}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"S": iso_utc(datetime.now(UTC) - timedelta(minutes=1))}},
    )
    waiting = _request(approvers)
    assert [p.record.execution_id for p in console.pending_approvals(approvers)] == [waiting]


def test_a_maintenance_plans_request_is_found_from_its_running_run(approvers):
    from matcarv_aiops.maintenance.common import plan_approval_id

    plan_id = plan_approval_id("ebs_snapshot_retention", "scheduled__2026-11-30T02:00:00+00:00")
    approvals.request(
        approvers,
        execution_id=plan_id,
        remediation="ebs_snapshot_retention",
        dag_id="ebs_snapshot_retention",
        run_id="scheduled__2026-11-30T02:00:00+00:00",
        target="arn:aws:ec2:us-east-1:123456789012:snapshot/*",
        action="delete 3 EBS snapshots",
        diagnostics_uri=f"s3://{approvers.platform.diagnostics_bucket}/plan.json",
        rollback_plan="none: deleted snapshots are gone",
        why="deleting data",
    )
    assert console.pending_approvals(approvers) == []  # no claim: only its run finds it
    runs = [
        ("ebs_snapshot_retention", "scheduled__2026-11-30T02:00:00+00:00"),
        ("ebs_snapshot_retention", "scheduled__2026-11-29T02:00:00+00:00"),  # no request: nothing shown
    ]
    (found,) = console.pending_approvals(approvers, running_runs=runs)
    assert (found.record.execution_id, found.account, found.region) == (plan_id, "123456789012", "us-east-1")


def test_the_diagnostics_link_shows_the_requests_diagnostics_and_only_from_its_bucket(api, approvers):
    execution_id = _request(approvers)
    answer = _get(api, f"/aiops/diagnostics/{execution_id}", "alice")
    assert answer.status_code == 200 and '"acl": "public-read"' in answer.text
    assert _get(api, f"/aiops/diagnostics/{uuid.uuid4()}", "alice").status_code == 404
    elsewhere = _request(approvers)
    hub_client("dynamodb", approvers).update_item(
        TableName=approvers.platform.approvals_table,
        Key={"executionId": {"S": elsewhere}},
        UpdateExpression="SET diagnosticsUri = :uri",
        ExpressionAttributeValues={":uri": {"S": "s3://someone-elses-bucket/secret.json"}},
    )
    refused = _get(api, f"/aiops/diagnostics/{elsewhere}", "alice")
    assert refused.status_code == 404 and "not in the diagnostics bucket" in refused.text


def _audit(settings, *, target: str, outcome: Outcome, runbook: str, when: datetime, run_id: str | None):
    execution_id = str(uuid.uuid4())
    AuditWriter(settings).write(
        AuditRecord(
            execution_id=execution_id,
            timestamp=iso_utc(when),
            trigger="{}",
            runbook=runbook,
            target_resource=target,
            action=f"acted on {target}",
            outcome=outcome,
            operator="alice",
            rollback_plan="none",
        )
    )
    if run_id:
        SafetyStore(settings).claim_execution(execution_id, run_id, runbook)
    return execution_id


def test_the_audit_trail_filters_through_the_indexes_and_links_each_record_to_its_run(api, approvers):
    now = datetime.now(UTC)
    ok = _audit(
        approvers,
        target=BUCKET_ARN,
        outcome=Outcome.SUCCESS,
        runbook="remediate_s3_public_access",
        when=now - timedelta(minutes=5),
        run_id="event__ok",
    )
    skipped = _audit(
        approvers,
        target=BUCKET_ARN,
        outcome=Outcome.SKIPPED,
        runbook="remediate_s3_public_access",
        when=now - timedelta(minutes=4),
        run_id=None,
    )
    old = _audit(
        approvers,
        target="arn:aws:sqs:us-east-1:123456789012:orders-dlq",
        outcome=Outcome.SUCCESS,
        runbook="remediate_sqs_dlq_depth_high",
        when=now - timedelta(days=3),
        run_id="event__old",
    )
    scanned: list[str] = []  # every table the view scans (the cached client the view uses)
    events = hub_client("dynamodb", approvers).meta.events
    handler = events.register(
        "provide-client-params.dynamodb.Scan", lambda params, **_: scanned.append(params["TableName"])
    )

    def rows(**query) -> set[str]:
        page = _get(api, "/aiops/", "alice", params=query).text
        table = page.split('id="audit-table"')[1].split("</table>")[0] if 'id="audit-table"' in page else ""
        return {e for e in (ok, skipped, old) if f'data-execution="{e}"' in table}

    assert rows() == {ok, skipped, old}
    assert rows(outcome="SUCCESS") == {ok, old}
    assert rows(target=BUCKET_ARN) == {ok, skipped}
    assert rows(remediation="sqs_dlq_depth_high") == {old}
    assert rows(since="1d") == {ok, skipped}
    assert rows(since="5d", until="2d") == {old}
    events.unregister("provide-client-params.dynamodb.Scan", handler)
    # Neither the audit table nor the approvals table is ever scanned (the state table's claims are).
    assert set(scanned) == {approvers.platform.state_table}
    page = _get(api, "/aiops/", "alice").text
    assert "../dags/remediate_s3_public_access/runs/event__ok" in page
    assert "../dags/remediate_sqs_dlq_depth_high/runs/event__old" in page
    assert "remediate_s3_public_access (run no longer known)" in page  # its claim is gone: the DAG's page


def test_a_bad_filter_is_named_and_nothing_else_breaks(api, approvers):
    def page(**query) -> str:
        return html.unescape(_get(api, "/aiops/", "alice", params=query).text)

    shown = page(since="last tuesday")
    assert "since 'last tuesday' is neither an ISO 8601 date/time nor an age" in shown
    assert 'id="approvals"' in shown and 'id="exemptions"' in shown
    assert "remediation 'no_such' is not a catalogue id" in page(remediation="no_such")
    assert "outcome 'MAYBE' is not one of SUCCESS, FAILURE, SKIPPED" in page(outcome="maybe")
    assert "is after until" in page(since="1d", until="2d")


def test_exemptions_show_owner_reason_and_expiry(api, approvers):
    expires = datetime.now(UTC) + timedelta(days=3)
    SafetyStore(approvers).add_exemption(
        BUCKET_ARN, owner="web-team", reason="public website", expires_at=expires
    )
    page = _get(api, "/aiops/", "alice").text
    table = page.split('id="exemptions-table"')[1].split("</table>")[0]
    for shown in (BUCKET_ARN, "web-team", "public website", iso_utc(expires)):
        assert shown in table


def test_the_plugin_puts_the_view_in_the_navigation(api):
    from airflow import plugins_manager

    views, _ = plugins_manager._get_ui_plugins()
    (view,) = [v for v in views if v.get("url_route") == "aiops"]
    assert view["href"] == "aiops/" and view["destination"] == "nav"
    (mounted,) = [a for a in plugins_manager.get_fastapi_plugins()[0] if a["name"] == "AIOps"]
    assert mounted["url_prefix"] == console.VIEW_PATH  # where the approval messages' links point


def test_the_approval_request_links_to_the_view_at_its_request(approvers):
    from matcarv_aiops.settings import Settings

    record = approvals.ApprovalStore(approvers).get(_request(approvers))
    assert record is not None
    text = approvals.approval_instructions(record, Settings(airflow_base_url="http://127.0.0.1:9090"))
    assert f"http://127.0.0.1:9090/aiops/?execution={record.execution_id} " in text
