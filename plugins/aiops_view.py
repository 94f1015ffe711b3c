"""The AIOps view inside the Airflow UI (an Airflow 3 plugin): pending approvals with approve and reject
buttons for the approver group, the audit trail with filters, and the exemptions in force.

A FastAPI app mounted by the API server at ``/aiops`` and shown in the UI's navigation as an external view
(the UI frames it). Airflow does not authenticate plugin apps, so every route here depends on Airflow's own
``get_user`` (the UI's JWT cookie, or a bearer token) and on the auth manager's read access to DAG runs:
no second login, and no route answers an anonymous caller. A decision is not made here: the page's buttons
trigger ``approve_remediation`` through Airflow's REST API as the signed-in user, so the DAG's own checks
decide whether it counts.

Every Airflow process loads plugin files (the scheduler, the DAG processor, task processes), and only the
API server serves the app: the app, and Airflow's API security module it needs, are built on its first
request, so this file costs the others nothing.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which name what
# build_app imports locally, so they are evaluated where they are written.
import asyncio
from typing import Any

from airflow.plugins_manager import AirflowPlugin

VIEW_PATH = "/aiops"  # matcarv_aiops.console.VIEW_PATH: approval messages link there


def _remediations() -> list[str]:
    from matcarv_aiops.catalogue import catalogue
    from matcarv_aiops.exemptions import EXEMPT_RUNBOOK

    return [*sorted(catalogue()), EXEMPT_RUNBOOK]


def _running_runs() -> list[tuple[str, str]]:
    """(dag id, run id) of every running DAG run that is not a remediation's: where a maintenance plan's
    approval request may be waiting (its id derives from the run)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagRun.dag_id, DagRun.run_id).where(
                DagRun.state == DagRunState.RUNNING, ~DagRun.dag_id.startswith("remediate_")
            )
        )
        return [(dag_id, run_id) for dag_id, run_id in rows]


def build_app():
    """The view's FastAPI app, every route behind Airflow's login and read access to DAG runs."""
    from typing import Annotated

    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException, Query, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse

    from matcarv_aiops import console
    from matcarv_aiops.settings import get_settings

    # Read access to DAG runs (of any DAG): what the view shows is the runs' approvals and records.
    may_read_runs = Depends(requires_access_dag("GET", DagAccessEntity.RUN))
    app = FastAPI(title="AIOps", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def sign_in_first(request: Request, exc: HTTPException):
        """A browser that opens an approval request's link before signing in goes through Airflow's own
        login page and comes back to the request; anything else (a script, a bad token) gets the error."""
        browser = "text/html" in request.headers.get("accept", "")
        if exc.status_code == 401 and request.method == "GET" and browser:
            login = get_auth_manager().get_url_login(next_url=str(request.url))
            return RedirectResponse(login, status_code=303)
        return await http_exception_handler(request, exc)

    def page(user: str, filters: console.AuditFilter, focus: str | None) -> str:
        return console.render_page(
            get_settings(),
            user=user,
            filters=filters,
            focus=focus,
            remediations=_remediations(),
            running_runs=_running_runs(),
        )

    @app.get("/", response_class=HTMLResponse, dependencies=[may_read_runs])
    async def view(
        user: GetUserDep,
        execution: Annotated[str | None, Query(max_length=64)] = None,
        remediation: Annotated[str, Query(max_length=200)] = "",
        outcome: Annotated[str, Query(max_length=16)] = "",
        target: Annotated[str, Query(max_length=2048)] = "",
        since: Annotated[str, Query(max_length=64)] = "",
        until: Annotated[str, Query(max_length=64)] = "",
        page_token: Annotated[str, Query(alias="page", max_length=4096)] = "",
    ) -> str:
        filters = console.AuditFilter(
            remediation=remediation,
            outcome=outcome.upper(),
            target=target,
            since=since,
            until=until,
            page=page_token,
        )
        # boto3, the database and the catalogue block: off the API server's event loop.
        return await asyncio.to_thread(page, user.get_name(), filters, execution)

    @app.get("/diagnostics/{execution_id}", response_class=PlainTextResponse, dependencies=[may_read_runs])
    async def diagnostics(execution_id: str) -> PlainTextResponse:
        try:
            uri, text = await asyncio.to_thread(console.diagnostics, get_settings(), execution_id)
        except console.DiagnosticsUnavailable as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return PlainTextResponse(f"{uri}\n\n{text}")

    return app


class AppOnFirstRequest:
    """An ASGI app that builds the view's app (``build_app``) when the first request reaches it."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            self._app = build_app()
        await self._app(scope, receive, send)


class AIOpsViewPlugin(AirflowPlugin):
    name = "aiops_view"
    fastapi_apps = [{"app": AppOnFirstRequest(), "url_prefix": VIEW_PATH, "name": "AIOps"}]
    # The navigation entry; href is relative to the UI's base URL.
    external_views = [
        {"name": "AIOps", "href": f"{VIEW_PATH.lstrip('/')}/", "destination": "nav", "url_route": "aiops"}
    ]
