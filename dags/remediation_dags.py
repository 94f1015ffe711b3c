"""The remediation DAG factory: one ``remediate_<id>`` DAG per catalogue entry, one task per row of the
step table (``matcarv_aiops.pipeline.steps.STEPS``), chained in its order (plus the edges its rows'
``after`` add), each with its row's trigger rule. A waiting step is a sensor; a few steps have a named
class that adds what differs, every other step runs in the generic ``StepOperator``.

Parsing reads only the packaged catalogue (no AWS call, no Variable).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, chain, get_parsing_context

from matcarv_aiops.catalogue import CatalogueEntry, catalogue
from matcarv_aiops.pipeline import Step, steps_for
from matcarv_aiops.settings import get_settings
from matcarv_operators.steps import AuditOperator, CollectDiagnosticsOperator, StepOperator
from matcarv_sensors.steps import ApprovalSensor, AutomationExecutionSensor, StepSensor

# The design card's named pieces; a step not named here runs in the generic operator or sensor.
NAMED = {
    "collect_diagnostics": CollectDiagnosticsOperator,
    "wait_for_approval": ApprovalSensor,
    "wait_for_automation": AutomationExecutionSensor,
    "audit": AuditOperator,
}


def task_class(step: Step) -> type:
    return NAMED.get(step.task_id) or (StepSensor if step.waits else StepOperator)


def _doc(entry: CatalogueEntry) -> str:
    eligibility = "\n".join(f"- {line}" for line in entry.eligibility)
    return f"""# {entry.id}

**Condition:** {entry.condition}
**Action:** {entry.action}
**Approval:** {entry.approval.replace("_", " ")} (production always waits for a human)
**Reversible:** {"yes" if entry.reversible else "no"}; **rollback:** {entry.rollback_plan}

**Eligibility, re-checked from live data:**
{eligibility}

**Validation:** {entry.validation}

Started by the EventBridge trigger Lambda with `{{"event": ...}}`. To run it by hand, trigger it with a
`target` ARN (and `dry_run` to see the plan without any change).
"""


def build_remediation_dag(entry: CatalogueEntry) -> DAG:
    settings = get_settings()
    with DAG(
        dag_id=entry.dag_id,
        description=f"{entry.condition} -> {entry.action}",
        doc_md=_doc(entry),
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=16,
        tags=["aiops", "remediation", entry.pattern, entry.resource_type],
        default_args={
            "owner": "aiops",
            "retries": settings.airflow.task_retries,
            "retry_delay": timedelta(seconds=settings.airflow.task_retry_delay_seconds),
            "retry_exponential_backoff": True,
        },
        params={
            "target": Param(
                None, type=["null", "string"], description="Resource ARN, for a run started by hand"
            ),
            "dry_run": Param(False, type="boolean", description="Do everything except the change"),
            "reason": Param(None, type=["null", "string"], description="Why you started this run"),
        },
        render_template_as_native_obj=True,
    ) as dag:
        steps = steps_for(entry)
        tasks = {
            step.task_id: task_class(step)(task_id=step.task_id, remediation_id=entry.id, doc_md=step.doc)
            for step in steps
        }
        chain(*tasks.values())
        for step in steps:
            for earlier in step.after:
                tasks[earlier] >> tasks[step.task_id]
    return dag


# A task process parses this file only to run one task of one DAG: Airflow's parsing context names that
# DAG, so only it is built (the dag processor and dag.test() see no DAG id and build every one).
_running_dag_id = get_parsing_context().dag_id
for _entry in catalogue().values():
    if _running_dag_id in (None, _entry.dag_id):
        globals()[_entry.dag_id] = build_remediation_dag(_entry)
