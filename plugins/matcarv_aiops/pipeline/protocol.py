"""How a step of a remediation run is described and called, whoever runs it.

A ``Step`` is one row of the step table (``matcarv_aiops.pipeline.steps.STEPS``): the task id, the
function, the earlier steps whose results it reads, and the Airflow trigger rule that decides whether it
runs. A ``RunState`` is the run as a step sees it: the request, its steps, and what earlier steps
recorded. Two runners implement it: an Airflow task (``matcarv_aiops.pipeline.xcom``, results as XCom) and
the inline runner (``matcarv_aiops.pipeline.inline``, for tests and scripts). Neither knows the order of
the steps or what they read: the table does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from matcarv_aiops import models
from matcarv_aiops.safety import SafetyStore
from matcarv_aiops.settings import Settings, get_settings

if TYPE_CHECKING:
    from matcarv_aiops.catalogue import CatalogueEntry

AUTOMATED = models.AUTOMATED

# Airflow's trigger rule values; the core names them without importing Airflow.
ALL_SUCCESS, ONE_FAILED, ALL_DONE = "all_success", "one_failed", "all_done"
# Runs when no upstream step failed and at least one succeeded: the step after steps an earlier step may
# skip as not needed (``Step.may_skip``), which also follows that earlier step (``Step.after``).
NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
# The rules of the run's normal path; the others are its recovery and audit steps.
MAIN_RULES = (ALL_SUCCESS, NONE_FAILED_MIN_ONE_SUCCESS)

# XCom keys a step leaves beside its return value.
SKIP_KEY, ERROR_KEY, STARTED_KEY = "skip", "error", "started"
# The key of a result that names later steps the run does not need (see ``Step.may_skip``).
NOT_NEEDED_KEY = "not_needed"


class StepSkipped(Exception):
    """The run ends here, with no change: audited SKIPPED with this reason."""

    def __init__(self, reason: str, *, operator: str = AUTOMATED, duplicate_of: str | None = None):
        super().__init__(reason)
        self.reason, self.operator, self.duplicate_of = reason, operator, duplicate_of

    def record(self) -> dict[str, Any]:
        return {"reason": self.reason, "operator": self.operator, "duplicate_of": self.duplicate_of}


class StepFailed(Exception):
    """A known failure (bad input, validation failed): audited FAILURE with this reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class StepRecord:
    """What one step left behind: its result, or a skip, or a known error. All None: it crashed, or
    never ran because an earlier step ended the run."""

    done: Any = None
    skip: dict[str, Any] | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.done is not None and not self.skip and not self.error


@dataclass(frozen=True)
class Step:
    """One row of the step table.

    ``function(run, *inputs)`` gets the results of the ``reads`` steps, in that order (None for a step
    that left no result). ``returns``: the model its result is, when it is one (it travels as JSON and is
    parsed back for the steps that read it). ``waits``: the step may answer None, meaning "not yet, ask
    again later" (a sensor in Airflow). ``only_if``: the entries whose run has this step (default all).
    ``changes``: the step makes the change, so it is the one that may mark the run started.
    ``may_skip``: later steps this step's result may name, under ``not_needed``, as steps this run does
    not need (no approval where no human must decide): they are skipped, never run, and the audit passes
    over them. ``after``: earlier steps this one follows besides the one before it in the table; the step
    after skippable steps follows the step that may skip them, so it runs when they are skipped.
    """

    task_id: str
    function: Callable[..., Any]
    reads: tuple[str, ...] = ()
    trigger_rule: str = ALL_SUCCESS
    waits: bool = False
    returns: type[BaseModel] | None = None
    only_if: Callable[[CatalogueEntry], bool] | None = None
    changes: bool = False
    may_skip: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    def applies_to(self, entry: CatalogueEntry) -> bool:
        return self.only_if is None or self.only_if(entry)

    @property
    def doc(self) -> str:
        """The first line of the function's docstring: what the step does, for the DAG's docs."""
        lines = (self.function.__doc__ or "").strip().splitlines()
        return lines[0] if lines else ""


class RunState(ABC):
    """One remediation run as its steps see it. A runner sets ``steps`` (the entry's rows of the table)."""

    remediation_id: str
    dag_id: str
    run_id: str
    conf: Any
    steps: tuple[Step, ...]
    # Who started the run: AUTOMATED (the ingress, a schedule) or the Airflow user who triggered it.
    # A runner sets it; the class default keeps a runner that does not know it "automated".
    requested_by: str = AUTOMATED

    @cached_property
    def settings(self) -> Settings:
        return get_settings()

    @cached_property
    def entry(self) -> CatalogueEntry:
        from matcarv_aiops.catalogue import get_entry

        return get_entry(self.remediation_id)

    def step(self, task_id: str) -> Step | None:
        return next((s for s in self.steps if s.task_id == task_id), None)

    @property
    def not_needed(self) -> set[str]:
        """The steps that earlier steps' results named as not needed by this run (skipped, never run)."""
        return {
            task_id
            for step in self.steps
            if step.may_skip
            for task_id in not_needed(step, self.record(step.task_id).done)
        }

    @abstractmethod
    def record(self, task_id: str) -> StepRecord:
        """What an earlier step of this run left behind."""

    @abstractmethod
    def mark_started(self) -> None:
        """Remember, before the first change, that a change may have been made."""

    @property
    @abstractmethod
    def started_here(self) -> bool:
        """Whether a step of this run state marked the change as started (its own flag, which Airflow
        wipes with the task's XComs when the task retries or is cleared)."""

    @property
    def started(self) -> bool:
        """Whether a change may have been made: this run state's flag, or the execution's intent marker
        in the state table, which execute writes before the first change and no retry wipes."""
        if self.started_here:
            return True
        execution_id = self.execution_id
        return execution_id is not None and SafetyStore(self.settings).intent(execution_id) is not None

    @property
    def execution_id(self) -> str | None:
        """The execution the first step claimed, or None when it left no result (a bad request)."""
        if not self.steps:
            return None
        claimed = self.record(self.steps[0].task_id).done
        return claimed.get("execution_id") if isinstance(claimed, dict) else None

    def result(self, task_id: str) -> Any:
        """An earlier step's result, parsed into its model where it has one; None when it left none."""
        step = self.step(task_id)
        if step is None:
            return None
        value = self.record(task_id).done
        if value is not None and step.returns is not None:
            return step.returns.model_validate(value)
        return value


def requester(triggering_user: str | None, settings: Settings) -> str:
    """Who requested a run, from the user Airflow recorded as triggering it (never from the conf, which
    whoever triggers the run writes): AUTOMATED for a run nobody triggered by hand (a schedule) or one
    the platform's own service user started (the ingress), else that user."""
    user = (triggering_user or "").strip()
    if not user or user in settings.safety.service_users:
        return AUTOMATED
    return user


def to_json(value: Any) -> Any:
    """A step's result as it travels (XCom, the inline runner's records)."""
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def call(step: Step, run: RunState) -> Any:
    """Run one step of ``run``: its inputs from the steps it reads, its result as JSON."""
    return to_json(step.function(run, *(run.result(task_id) for task_id in step.reads)))


def not_needed(step: Step, result: Any) -> tuple[str, ...]:
    """The later steps ``step``'s result names as not needed by the run: only steps its row may skip."""
    named = tuple(result.get(NOT_NEEDED_KEY) or ()) if isinstance(result, dict) else ()
    stray = [task_id for task_id in named if task_id not in step.may_skip]
    if stray:
        raise ValueError(
            f"step {step.task_id} named {stray} as not needed, but its row of the step table may skip only "
            f"{list(step.may_skip)}"
        )
    return named


def main_steps(steps: Iterable[Step]) -> list[Step]:
    """The steps of the run's normal path (not the recovery and audit steps)."""
    return [s for s in steps if s.trigger_rule in MAIN_RULES]
