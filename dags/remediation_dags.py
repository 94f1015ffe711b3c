"""The remediation DAG factory: one ``remediate_<id>`` DAG per catalogue entry, all of the same shape.

collect_diagnostics -> check_eligibility -> request_approval -> wait_for_approval -> execute
-> [wait_for_automation, for entries run by an SSM document] -> validate
-> rollback (only when a step failed) -> audit (always, exactly one record)

Parsing reads only the packaged catalogue (no AWS call, no Variable).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, Param

from matcarv_aiops.catalogue import CatalogueEntry, catalogue
from matcarv_aiops.pipeline import AUTOMATION_STEP, steps_for
from matcarv_aiops.settings import get_settings
from matcarv_operators.approval import RequestApprovalOperator
from matcarv_operators.audit import AuditOperator
from matcarv_operators.diagnostics import CollectDiagnosticsOperator
from matcarv_operators.eligibility import EligibilityCheckOperator
from matcarv_operators.remediation import ExecuteRemediationOperator, RollbackOperator, ValidateRemediationOperator
from matcarv_sensors.approval import ApprovalSensor
from matcarv_sensors.ssm import RemediationAutomationSensor


def _doc(entry: CatalogueEntry) -> str:
    eligibility = "\n".join(f"- {line}" for line in entry.eligibility)
    return f"""# {entry.id}

**Condition:** {entry.condition}
**Action:** {entry.action}
**Approval:** {entry.approval.replace('_', ' ')} (production always waits for a human)
**Reversible:** {'yes' if entry.reversible else 'no'}; **rollback:** {entry.rollback_plan}

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
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=16,
        tags=["aiops", "remediation", entry.pattern, entry.resource_type],
        default_args={
            "owner": "aiops",
            "retries": settings.task_retries,
            "retry_delay": timedelta(seconds=settings.task_retry_delay_seconds),
            "retry_exponential_backoff": True,
        },
        params={
            "target": Param(None, type=["null", "string"], description="Resource ARN, for a run started by hand"),
            "dry_run": Param(False, type="boolean", description="Do everything except the change"),
            "reason": Param(None, type=["null", "string"], description="Why you started this run"),
        },
        render_template_as_native_obj=True,
    ) as dag:
        ids = {"remediation_id": entry.id}
        collect = CollectDiagnosticsOperator(task_id="collect_diagnostics", **ids)
        eligibility = EligibilityCheckOperator(task_id="check_eligibility", **ids)
        request = RequestApprovalOperator(task_id="request_approval", **ids)
        wait = ApprovalSensor(task_id="wait_for_approval", **ids)
        execute = ExecuteRemediationOperator(task_id="execute", **ids)
        automation = None
        if entry.ssm_document:
            automation = RemediationAutomationSensor(
                task_id=AUTOMATION_STEP, poke_interval=settings.ssm_poll_seconds,
                automation_execution_id="{{ ti.xcom_pull(task_ids='execute')['result']['automation_execution_id'] }}",
            )
        validate = ValidateRemediationOperator(task_id="validate", automation_task_id=automation and AUTOMATION_STEP,
                                               **ids)
        rollback = RollbackOperator(task_id="rollback", **ids)
        audit = AuditOperator(task_id="audit", step_task_ids=steps_for(entry), **ids)
        collect >> eligibility >> request >> wait >> execute
        execute >> (automation or validate)
        if automation:
            automation >> validate
        validate >> rollback >> audit
        validate >> audit
    return dag


for _entry in catalogue().values():
    globals()[_entry.dag_id] = build_remediation_dag(_entry)
