"""The approval flow in a real browser (Playwright driving Debian's Chromium) on the local stack: alice, in
the approver group, approves a public bucket's fix from the AIOps view inside the Airflow UI and finds its
SUCCESS record there, after following the link in the approval request the SNS topic delivered (signed out:
through Airflow's login and back to the request); bob, with the same Airflow role but outside the group,
sees no buttons and his decision is refused. Each step's screenshot goes to docs/screenshots/ (the README
shows them)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from local import scenarios
from local.stack import APPROVER_USER, OUTSIDER_USER
from matcarv_aiops.approvals import ApprovalStore
from matcarv_aiops.console import pending_approvals
from matcarv_aiops.models import ApprovalStatus
from matcarv_aiops.notifications import Kind
from matcarv_aiops.settings import get_settings
from tests.e2e.test_local_stack import send
from tests.events import cloudtrail_event
from tests.remediations.notifications import TopicInbox

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")  # installed by `make browser` (apt); Playwright's own cannot be fetched
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
BUCKET = "e2e-browser-bucket"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"


def _poll(what: str, check, timeout: float = 240.0, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _new_page(browser):
    """A page of a new browser context: no cookie, nobody signed in."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(60_000)
    return page


def _sign_in(page, stack, user: str) -> None:
    """Airflow's own login form, where the page has been sent to."""
    page.wait_for_url(lambda url: "/auth/login" in url)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", stack.passwords[user])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def _signed_in(browser, stack, user: str):
    """A page of a new browser context, signed in as ``user`` through Airflow's own login form."""
    page = _new_page(browser)
    page.goto(f"{stack.airflow_url}/")
    _sign_in(page, stack, user)
    return page


def _approval_link(inbox: TopicInbox, execution_id: str) -> str:
    """The link to the AIOps view in the approval request the topic delivered for ``execution_id``, as an
    approver's mailbox or chat receives it (a queue subscribed to the topic)."""

    def find() -> str | None:
        for message in inbox.messages(Kind.APPROVAL_REQUEST):
            found = re.search(r"(https?://\S+/aiops/\?execution=[\w-]+)", message["Message"])
            if found and execution_id in found.group(1):
                return found.group(1)
        return None

    return _poll(f"the approval request for {execution_id} on the topic", find, timeout=60)


def _open_view(page, stack):
    """The AIOps view as the UI shows it: its navigation entry's page, which frames the plugin's app."""
    page.goto(f"{stack.airflow_url}/plugin/aiops")
    frame = page.frame_locator("iframe")
    frame.locator("#user").wait_for()
    return frame


def test_alice_approves_from_the_view_and_bob_cannot(stack_env, browser):
    started = time.monotonic()
    SHOTS.mkdir(parents=True, exist_ok=True)
    settings = get_settings()
    inbox = TopicInbox(settings)
    s3, bucket = scenarios.public_bucket(BUCKET)
    dag_id, run_id = send(
        stack_env, cloudtrail_event("s3", "PutBucketAcl", {"bucketName": bucket}), "s3_public_access"
    )
    (pending,) = _poll(
        "the approval request",
        lambda: [p for p in pending_approvals(settings) if p.record.target_resource == BUCKET_ARN],
    )
    execution_id = pending.record.execution_id

    # bob: same Airflow role, outside the approver group. He sees the request but no buttons...
    bob = _signed_in(browser, stack_env, OUTSIDER_USER)
    view = _open_view(bob, stack_env)
    request = view.locator(f"#approval-{execution_id}")
    request.wait_for()
    assert request.locator("button").count() == 0
    assert "not in the approver group" in request.inner_text()
    bob.screenshot(path=str(SHOTS / "1-bob-sees-no-buttons.png"), full_page=True)
    # ...and a decision he sends anyway (the REST API, as the buttons do) is refused by approve_remediation.
    status, run = stack_env.api(
        "POST",
        "/dags/approve_remediation/dagRuns",
        {
            "logical_date": None,
            "conf": {"execution_id": execution_id, "decision": "approve", "reason": "looks fine to me"},
        },
        user=OUTSIDER_USER,
    )
    assert status in (200, 201), run
    assert stack_env.wait_for_run("approve_remediation", run["dag_run_id"])["state"] == "failed"
    record = ApprovalStore(settings).get(execution_id)
    assert record is not None and record.status is ApprovalStatus.PENDING and not record.approvers

    # alice, signed out, opens the link of the approval request the topic delivered: Airflow's login, then
    # the request itself with everything she needs and the buttons. One click plus a reason.
    link = _approval_link(inbox, execution_id)
    alice = _new_page(browser)
    alice.goto(link)
    _sign_in(alice, stack_env, APPROVER_USER)
    alice.wait_for_url(link)
    request = alice.locator(f"#approval-{execution_id}.focus")
    text = request.inner_text()
    for shown in (BUCKET_ARN, "s3_public_access", "PutPublicAccessBlock", "Rollback plan", "Time left"):
        assert shown in text, shown
    request.locator("input[name=reason]").fill("public bucket, nothing should be public here")
    alice.screenshot(path=str(SHOTS / "2-alice-pending-approval.png"), full_page=True)
    request.locator("button[name=approve]").click()
    request.locator(".result a").wait_for()
    assert "approve sent as run" in request.locator(".result").inner_text()
    alice.screenshot(path=str(SHOTS / "3-alice-approved.png"), full_page=True)

    # The remediation finishes, with its run note.
    finished = stack_env.wait_for_run(dag_id, run_id, timeout=300)
    assert finished["state"] == "success"
    note = _poll(
        "the run note",
        lambda: stack_env.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")[1].get("note"),
        timeout=60,
    )
    assert note.startswith("SUCCESS: "), note
    alice.goto(f"{stack_env.airflow_url}/dags/{dag_id}/runs/{run_id}")
    alice.get_by_text("SUCCESS: ").first.wait_for()
    alice.screenshot(path=str(SHOTS / "4-run-finished-with-its-note.png"), full_page=True)
    assert all(scenarios.public_access_block(s3, bucket).values())

    # The SUCCESS record in the view's audit trail, alice as operator, linked to the run.
    view = _open_view(alice, stack_env)
    view.locator("input[name=target]").fill(BUCKET_ARN)
    view.locator("select[name=outcome]").select_option("SUCCESS")
    # The filter form reloads the framed page: wait for that load, or the rows read could be the old page's.
    (framed,) = [frame for frame in alice.frames if "/aiops/" in frame.url]
    with framed.expect_navigation():
        view.locator("form.filters button[type=submit]").click()
    row = view.locator(f'#audit-table tr[data-execution="{execution_id}"]')
    row.wait_for()
    assert view.locator("#audit-table tbody tr").count() == 1  # the filters left only this record
    cells = row.locator("td").all_inner_texts()
    assert cells[1:5] == ["SUCCESS", dag_id, BUCKET_ARN, APPROVER_USER], cells
    assert row.locator(f'a[href$="/runs/{run_id}"]').count() == 1
    alice.screenshot(path=str(SHOTS / "5-audit-record-alice.png"), full_page=True)
    print(f"browser flow: {time.monotonic() - started:.0f} s")
