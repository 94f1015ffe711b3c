"""The maintenance jobs' wait for a human decision on their plan (snapshots or keys to delete)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from matcarv_aiops import approvals
from matcarv_aiops.settings import get_settings


class PlanApprovalSensor(BaseSensorOperator):
    """Waits for the human decision on a maintenance job's plan (e.g. snapshots or keys to delete), in
    reschedule mode. The plan task's summary names the approval request; no request: done at once."""

    template_fields: Sequence[str] = ("plan_task_id",)
    ui_color = "#fff4d6"

    def __init__(self, *, plan_task_id: str, **kwargs) -> None:
        settings = get_settings()
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", settings.safety.approval_poke_seconds)
        kwargs.setdefault("timeout", timedelta(minutes=settings.safety.approval_timeout_minutes + 15))
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id

    def poke(self, context) -> PokeReturnValue:
        summary = context["ti"].xcom_pull(task_ids=self.plan_task_id) or {}
        if not summary.get("approval"):
            return PokeReturnValue(is_done=True, xcom_value=None)
        decision = approvals.decision(get_settings(), summary["approval"]["execution_id"])
        return PokeReturnValue(is_done=decision is not None, xcom_value=decision)
