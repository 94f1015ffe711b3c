"""What the AIOps view in the Airflow UI shows (``plugins/aiops_view.py`` serves it, behind Airflow's own
login): the approval requests waiting for a decision, the audit trail a page at a time, and the
exemptions in force. No Airflow here: the plugin adds the user and the routes.

The audit trail is read through the table's indexes (``audit.query_audit``), never a scan; pending
approvals without a scan of the approvals table (``pending_approvals``).
"""

from __future__ import annotations

import contextlib
import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from matcarv_aiops.approvals import APPROVAL_DAG_ID, ApprovalStore
from matcarv_aiops.audit import AuditPage, AuditQuery, BadAuditQuery, query_audit
from matcarv_aiops.aws import hub_client
from matcarv_aiops.dynamo import batch_get
from matcarv_aiops.models import ApprovalRecord, ApprovalStatus, AuditRecord, Outcome, Target, iso_utc
from matcarv_aiops.safety import Exemption, SafetyStore
from matcarv_aiops.settings import Settings

VIEW_PATH = "/aiops"  # where the plugin mounts the view, under the Airflow UI's base URL
DEFAULT_WINDOW = timedelta(days=7)  # the audit trail without a target or a since: the last week
PAGE_SIZE = 50
DIAGNOSTICS_LIMIT_BYTES = 1_000_000  # the diagnostics the view shows inline; bigger ones are cut


def view_url(base_url: str, execution_id: str | None = None) -> str:
    """The AIOps view under the Airflow UI at ``base_url``; with ``execution_id``, that request first."""
    url = f"{base_url.rstrip('/')}{VIEW_PATH}/"
    return f"{url}?{urlencode({'execution': execution_id})}" if execution_id else url


@dataclass(frozen=True)
class PendingApproval:
    record: ApprovalRecord
    account: str
    region: str
    seconds_left: int


def pending_approvals(
    settings: Settings, *, running_runs: Iterable[tuple[str, str]] = (), now: datetime | None = None
) -> list[PendingApproval]:
    """Requests still waiting for a decision and not yet expired, soonest deadline first, with the target's
    account and region (from the request, else from the ARN).

    Without a scan of the approvals table (the execution role may Scan the state table only): a
    remediation's request has the id of an execution whose claim is not yet settled (the state table's
    claims, as audit_reconciler lists them); a maintenance plan's request is derived from its running DAG
    run (``running_runs``: (dag id, run id) pairs, which Airflow knows). One GetItem per candidate: both
    lists hold only what is in flight."""
    from matcarv_aiops.maintenance.common import plan_approval_id
    from matcarv_aiops.reconcile import unsettled_claims

    now = now or datetime.now(UTC)
    candidates = [claim.execution_id for claim in unsettled_claims(settings)]
    candidates += [
        plan_approval_id(dag_id, run_id)
        for dag_id, run_id in running_runs
        if not dag_id.startswith("remediate_")
    ]
    store = ApprovalStore(settings)
    records = [store.get(execution_id) for execution_id in dict.fromkeys(candidates)]
    waiting = [
        r for r in records if r is not None and r.status is ApprovalStatus.PENDING and not r.expired(now)
    ]
    found = []
    for record in sorted(waiting, key=lambda r: (r.expires_at, r.execution_id)):
        target = Target.from_arn(record.target_resource, default_region=settings.platform.region)
        expires = datetime.fromisoformat(record.expires_at.replace("Z", "+00:00"))
        found.append(
            PendingApproval(
                record=record,
                account=record.account or target.account,
                region=record.region or target.region,
                seconds_left=max(0, int((expires - now).total_seconds())),
            )
        )
    return found


class BadFilter(ValueError):
    """A filter of the audit trail the view cannot use; the message names it."""


@dataclass(frozen=True)
class AuditFilter:
    remediation: str = ""
    outcome: str = ""
    target: str = ""
    since: str = ""
    until: str = ""
    page: str = ""

    def query(self, *, now: datetime | None = None) -> AuditQuery:
        """The index query these filters mean (``aiops audit``'s rules: the last week by default, or all
        of a target's history)."""
        from matcarv_aiops.audit_cli import _runbooks, parse_moment
        from matcarv_aiops.cli import UsageError

        now = now or datetime.now(UTC)
        try:
            if self.since.strip():
                since = parse_moment(self.since, "since", now=now)
            elif self.target.strip():
                since = datetime(1970, 1, 1, tzinfo=UTC)
            else:
                since = now - DEFAULT_WINDOW
            until = parse_moment(self.until, "until", now=now) if self.until.strip() else now
            runbooks = _runbooks([self.remediation.strip()]) if self.remediation.strip() else ()
        except UsageError as exc:
            raise BadFilter(str(exc).replace("--remediation", "remediation")) from None
        if self.outcome and self.outcome not in Outcome.__members__:
            raise BadFilter(f"outcome {self.outcome!r} is not one of {', '.join(Outcome.__members__)}")
        try:
            return AuditQuery(
                since=since,
                until=until,
                target=self.target.strip() or None,
                runbooks=runbooks,
                outcome=Outcome(self.outcome) if self.outcome else None,
            )
        except BadAuditQuery as exc:
            raise BadFilter(str(exc)) from None


def audit_trail(settings: Settings, filters: AuditFilter, *, limit: int = PAGE_SIZE) -> AuditPage:
    try:
        return query_audit(settings, filters.query(), limit=limit, start=filters.page or None)
    except BadAuditQuery as exc:
        raise BadFilter(str(exc)) from None


def run_ids(settings: Settings, execution_ids: list[str]) -> dict[str, tuple[str, str]]:
    """{execution id: (dag id, run id)} from the executions' claims in the state table (BatchGetItem, kept
    30 days); records whose claim is gone, and exemption changes, have none."""
    keys = [{"pk": {"S": f"execution#{execution_id}"}} for execution_id in dict.fromkeys(execution_ids)]
    found = {}
    for item in batch_get(hub_client("dynamodb", settings), settings.platform.state_table, keys):
        if "dagId" in item and "runId" in item:
            found[item["pk"]["S"].removeprefix("execution#")] = (item["dagId"]["S"], item["runId"]["S"])
    return found


def exemptions(settings: Settings) -> list[Exemption]:
    return SafetyStore(settings).exemptions()


class DiagnosticsUnavailable(LookupError):
    """The diagnostics of a request cannot be shown; the message says why."""


def diagnostics(settings: Settings, execution_id: str) -> tuple[str, str]:
    """(S3 URI, text) of the diagnostics an approval request names, read from the platform's own
    diagnostics bucket only (never a bucket a record could point elsewhere)."""
    record = ApprovalStore(settings).get(execution_id)
    if record is None:
        raise DiagnosticsUnavailable(f"no approval request for execution {execution_id}")
    bucket = settings.platform.diagnostics_bucket
    prefix = f"s3://{bucket}/"
    if not record.diagnostics_uri.startswith(prefix):
        raise DiagnosticsUnavailable(f"{record.diagnostics_uri} is not in the diagnostics bucket {bucket}")
    body = hub_client("s3", settings).get_object(
        Bucket=bucket, Key=record.diagnostics_uri.removeprefix(prefix)
    )["Body"]
    raw = body.read(DIAGNOSTICS_LIMIT_BYTES + 1)
    text = raw[:DIAGNOSTICS_LIMIT_BYTES].decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError):  # not JSON (or cut): shown as it is
        text = json.dumps(json.loads(text), indent=2, sort_keys=True, default=str)
    if len(raw) > DIAGNOSTICS_LIMIT_BYTES:
        text += f"\n... cut at {DIAGNOSTICS_LIMIT_BYTES} bytes"
    return record.diagnostics_uri, text


# ----- HTML -------------------------------------------------------------------------------------------
# One server-rendered page. Links to Airflow pages are relative to the view (VIEW_PATH/ is one level below
# the UI's base) and open in the whole window: the Airflow UI shows this view in a frame.

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem 1.5rem;color:#1a202c;font-size:14px}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #cbd5e0}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #e2e8f0;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f7fafc}
.pending{border:1px solid #cbd5e0;border-radius:6px;padding:.6rem 1rem;margin:.6rem 0}
.pending.focus{border:2px solid #3182ce}
.pending dl{display:grid;grid-template-columns:10rem 1fr;margin:.3rem 0}
.pending dt{font-weight:600}.pending dd{margin:0 0 .2rem 0}.SUCCESS{color:#276749}
.FAILURE{color:#c53030}.SKIPPED{color:#975a16}.error{color:#c53030;font-weight:600}.muted{color:#718096}
form.filters input,form.filters select{margin-right:.5rem}.decision input[type=text]{width:28rem}
.result{margin-left:.5rem;font-weight:600}
"""

_SCRIPT = """
async function decide(form, decision) {
  const out = form.querySelector('.result');
  const reason = form.reason.value.trim();
  if (reason.length < 3) { out.textContent = 'Give a reason (3 characters at least).'; return; }
  form.querySelectorAll('button').forEach(b => b.disabled = true);
  out.textContent = 'Sending...';
  const body = {logical_date: null, conf: {execution_id: form.dataset.execution, decision: decision,
                reason: reason}};
  const answer = await fetch(form.dataset.api, {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    out.textContent = 'Refused by Airflow (' + answer.status + '): ' + JSON.stringify(data.detail || data);
    form.querySelectorAll('button').forEach(b => b.disabled = false);
    return;
  }
  out.innerHTML = '';
  const link = document.createElement('a');
  link.href = form.dataset.runs + encodeURIComponent(data.dag_run_id);
  link.target = '_top';
  link.textContent = decision + ' sent as run ' + data.dag_run_id;
  out.appendChild(link);
}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _left(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds % 60} s"


def _run_link(dag_id: str, run_id: str | None, text: str) -> str:
    href = f"../dags/{quote(dag_id, safe='')}" + (f"/runs/{quote(run_id, safe='')}" if run_id else "")
    return f'<a target="_top" href="{_e(href)}">{_e(text)}</a>'


def _pending_html(item: PendingApproval, *, user: str, may_decide: bool, focus: bool) -> str:
    r = item.record
    others = f" (not {r.requested_by}, who requested it)" if r.requested_by else ""
    needs = f"{r.approvals_required} distinct approvers" if r.approvals_required > 1 else "one approver"
    so_far = f"; approved so far by {', '.join(r.approvers)}" if r.approvers else ""
    if not may_decide:
        decision = (
            f'<p class="muted">You ({_e(user)}) are not in the approver group (AIOPS_APPROVERS): only its '
            "members see the approve and reject buttons, and a decision from anyone else is refused.</p>"
        )
    else:
        api = f"../api/v2/dags/{APPROVAL_DAG_ID}/dagRuns"
        runs = f"../dags/{APPROVAL_DAG_ID}/runs/"
        decision = (
            f'<form class="decision" data-execution="{_e(r.execution_id)}" data-api="{_e(api)}" '
            f'data-runs="{_e(runs)}" onsubmit="return false">'
            f'<label>Reason <input type="text" name="reason" minlength="3" maxlength="1000" required '
            f'aria-label="reason for {_e(r.execution_id)}"></label> '
            '<button type="button" name="approve" onclick="decide(this.form, \'approve\')">Approve</button> '
            '<button type="button" name="reject" onclick="decide(this.form, \'reject\')">Reject</button>'
            '<span class="result" role="status"></span></form>'
        )
    rows = [
        ("Target", f"<code>{_e(r.target_resource)}</code>"),
        ("Account / region", f"{_e(item.account or '?')} / {_e(item.region or '?')}"),
        ("Remediation", f"{_e(r.remediation)} ({_run_link(r.dag_id, r.run_id, 'its run')})"),
        ("Plan", _e(r.action)),
        ("Rollback plan", _e(r.rollback_plan)),
        ("Why a human", _e(r.reason_for_approval)),
        (
            "Diagnostics",
            f'<a href="diagnostics/{_e(quote(r.execution_id))}">{_e(r.diagnostics_uri)}</a>',
        ),
        ("Requested by", f"{_e(r.requested_by)} at {_e(r.requested_at)}"),
        ("Time left", f"{_left(item.seconds_left)} (until {_e(r.expires_at)})"),
        ("Needs", f"{needs} of the approver group{_e(others)}{_e(so_far)}"),
        ("Execution id", f"<code>{_e(r.execution_id)}</code>"),
    ]
    cells = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    focus_class = " focus" if focus else ""
    return (
        f'<section class="pending{focus_class}" id="approval-{_e(r.execution_id)}" '
        f'data-target="{_e(r.target_resource)}"><dl>{cells}</dl>{decision}</section>'
    )


def _filters_html(filters: AuditFilter, remediations: list[str]) -> str:
    def option(value: str, chosen: str, label: str | None = None) -> str:
        selected = " selected" if value == chosen else ""
        return f'<option value="{_e(value)}"{selected}>{_e(label if label is not None else value)}</option>'

    outcomes = option("", filters.outcome, "any outcome") + "".join(
        option(o, filters.outcome) for o in Outcome.__members__
    )
    runbooks = option("", filters.remediation, "any remediation") + "".join(
        option(r, filters.remediation) for r in remediations
    )
    return (
        '<form class="filters" method="get" action="./#audit">'
        f'<select name="remediation" aria-label="remediation">{runbooks}</select>'
        f'<select name="outcome" aria-label="outcome">{outcomes}</select>'
        f'<input name="target" placeholder="target ARN" size="40" value="{_e(filters.target)}" '
        'aria-label="target">'
        f'<input name="since" placeholder="since (7d, 12h, ISO date)" value="{_e(filters.since)}" '
        'aria-label="since">'
        f'<input name="until" placeholder="until (default now)" value="{_e(filters.until)}" '
        'aria-label="until">'
        '<button type="submit">Filter</button></form>'
    )


def _audit_html(
    records: list[AuditRecord], runs: dict[str, tuple[str, str]], next_page: str | None, filters: AuditFilter
) -> str:
    if not records:
        return '<p class="muted">No audit record matches.</p>'
    rows = []
    for r in records:
        dag_id, run_id = runs.get(r.execution_id, (r.runbook, None))
        if r.runbook.startswith("remediate_") or run_id:
            link = _run_link(dag_id, run_id, run_id or f"{dag_id} (run no longer known)")
        else:
            link = '<span class="muted">no DAG run</span>'
        rows.append(
            f'<tr data-execution="{_e(r.execution_id)}"><td>{_e(r.timestamp)}</td>'
            f'<td class="{_e(r.outcome.value)}">{_e(r.outcome.value)}</td><td>{_e(r.runbook)}</td>'
            f"<td><code>{_e(r.target_resource)}</code></td><td>{_e(r.operator)}</td>"
            f"<td>{_e(r.requested_by)}</td><td>{_e(r.action)}</td><td>{link}</td></tr>"
        )
    more = ""
    if next_page:
        params = {k: v for k, v in vars(filters).items() if v and k != "page"} | {"page": next_page}
        more = f'<p><a href="?{_e(urlencode(params))}#audit">Next page</a></p>'
    return (
        '<table id="audit-table"><thead><tr><th>Time</th><th>Outcome</th><th>Runbook</th><th>Target</th>'
        "<th>Operator</th><th>Requested by</th><th>Action</th><th>DAG run</th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table>{more}"
    )


def _exemptions_html(found: list[Exemption]) -> str:
    if not found:
        return '<p class="muted">No exemption in force.</p>'
    rows = "".join(
        f"<tr><td><code>{_e(x.target_arn)}</code></td><td>{_e(x.owner)}</td><td>{_e(x.reason)}</td>"
        f"<td>{_e(iso_utc(x.expires_at))}</td></tr>"
        for x in found
    )
    return (
        '<table id="exemptions-table"><thead><tr><th>Target</th><th>Owner</th><th>Reason</th>'
        f"<th>Expires</th></tr></thead><tbody>{rows}</tbody></table>"
        '<p class="muted">Add or remove one with the <a target="_top" href="../dags/manage_exemption">'
        "manage_exemption</a> DAG or <code>aiops exempt</code>.</p>"
    )


def render_page(
    settings: Settings,
    *,
    user: str,
    filters: AuditFilter,
    focus: str | None = None,
    remediations: list[str] | None = None,
    running_runs: Iterable[tuple[str, str]] = (),
) -> str:
    """The whole view for ``user``: the approve and reject buttons only for the approver group."""
    may_decide = user in settings.safety.approvers
    pending = pending_approvals(settings, running_runs=running_runs)
    pending_html = "".join(
        _pending_html(p, user=user, may_decide=may_decide, focus=p.record.execution_id == focus)
        for p in pending
    )
    if not pending:
        pending_html = '<p class="muted">Nothing is waiting for a decision.</p>'
    try:
        page = audit_trail(settings, filters)
        audit = _audit_html(
            page.records, run_ids(settings, [r.execution_id for r in page.records]), page.next_token, filters
        )
    except BadFilter as exc:
        audit = f'<p class="error" role="alert">{_e(exc)}</p>'
    role = "approver" if may_decide else "not an approver"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>AIOps</title>'
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>"
        f'<h1>AIOps</h1><p class="muted">Signed in as <b id="user">{_e(user)}</b> ({role}).</p>'
        f'<h2 id="approvals">Pending approvals ({len(pending)})</h2>{pending_html}'
        f'<h2 id="audit">Audit trail</h2>{_filters_html(filters, remediations or [])}{audit}'
        f'<h2 id="exemptions">Exemptions</h2>{_exemptions_html(exemptions(settings))}'
        "</body></html>"
    )
