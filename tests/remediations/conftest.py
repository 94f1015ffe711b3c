from collections.abc import Callable

import pytest

from matcarv_aiops.pipeline.inline import InlineRun, run_inline


def run_remediation(
    remediation_id: str,
    conf: dict,
    *,
    run_id: str = "manual__test",
    decide: Callable[[str], None] | None = None,
) -> InlineRun:
    """The entry's run through the step table without Airflow. ``decide(execution_id)`` is called once
    when the run waits for a human (e.g. to approve it); without it, a wait ends the run as a crash."""

    def on_wait(step, run):
        if step.task_id != "wait_for_approval":
            return  # a runbook: asked again until it ends
        if decide is None:
            raise AssertionError(f"{remediation_id} waits for a human and the test gave no decision")
        decide(run.result("collect_diagnostics").execution_id)

    return run_inline(
        remediation_id, conf, run_id=run_id, on_wait=on_wait, poll_seconds=0.05, wait_timeout=30
    )


@pytest.fixture
def remediate(aws):
    """run_remediation under moto with the platform provisioned."""
    return run_remediation
