"""One remediation run: its steps (``steps``), how a step is described and called (``protocol``), and its
two runners: an Airflow task (``xcom``) and the inline runner (``inline``). ``STEPS`` is the step table,
the one place that orders the run."""

from matcarv_aiops.pipeline.protocol import (
    AUTOMATED,
    RunState,
    Step,
    StepFailed,
    StepRecord,
    StepSkipped,
    call,
    not_needed,
)
from matcarv_aiops.pipeline.steps import STEPS, Execution, compose_audit, step_by_id, steps_for
from matcarv_aiops.pipeline.xcom import XComRun, run_in_task

__all__ = [
    "AUTOMATED",
    "STEPS",
    "Execution",
    "RunState",
    "Step",
    "StepFailed",
    "StepRecord",
    "StepSkipped",
    "XComRun",
    "call",
    "compose_audit",
    "not_needed",
    "run_in_task",
    "step_by_id",
    "steps_for",
]
