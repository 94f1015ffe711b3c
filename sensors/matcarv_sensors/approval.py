"""The maintenance jobs' wait for a human decision on their plan (snapshots or keys to delete)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from matcarv_aiops.maintenance.common import plan_decision
from matcarv_aiops.settings import get_settings


class PlanApprovalSensor(BaseSensorOperator):
    """Waits for the human decision on a maintenance job's plan (e.g. snapshots or keys to delete), in
    reschedule mode. Which request to wait for is derived from this DAG run and the plan recorded for it
    in the state table, never from the plan task's XCom; no approval needed (or a dry run): done at once.
    Its result is only a copy for the UI: the deleting task reads the decision from the approval store."""

    ui_color = "#fff4d6"

    def __init__(self, **kwargs) -> None:
        settings = get_settings()
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", settings.safety.approval_poke_seconds)
        kwargs.setdefault("timeout", timedelta(minutes=settings.safety.approval_timeout_minutes + 15))
        super().__init__(**kwargs)

    def poke(self, context) -> PokeReturnValue:
        dag_run = context["dag_run"]
        done, decision = plan_decision(get_settings(), dag_run.dag_id, dag_run.run_id)
        return PokeReturnValue(is_done=done, xcom_value=decision)
