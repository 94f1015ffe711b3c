"""What every remediation implements. The catalogue entry (data) says what and when; the class says how.

Each method gets a ``RemediationContext`` and works on exactly one resource, ``ctx.target``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from matcarv_aiops.aws import AwsSession, session_client
from matcarv_aiops.catalogue import CatalogueEntry
from matcarv_aiops.models import Target
from matcarv_aiops.notifications import Kind, notify
from matcarv_aiops.settings import Settings


@dataclass
class RemediationContext:
    entry: CatalogueEntry
    target: Target
    # Opens the session on the target at its first use: assuming the remediation role costs STS calls
    # (two where the session policy names resolved resources), which a step that decides from the
    # recorded state alone, as most eligibility checks do, never needs.
    open_session: Callable[[], AwsSession] = field(repr=False)
    settings: Settings
    execution_id: str
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def session(self) -> AwsSession:
        return self.open_session()

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = session_client(self.session, service, self.target.region)
        return self._clients[service]

    def notify(self, kind: Kind, subject: str, message: dict[str, Any]) -> str:
        """Tell people (the AIOps topic) what this remediation did or needs; returns the message id."""
        return notify(self.settings, kind, subject, message)

    def threshold(self, name: str) -> float:
        try:
            return self.entry.thresholds[name]
        except KeyError:
            raise KeyError(f"catalogue entry {self.entry.id!r} has no threshold {name!r}") from None


@dataclass(frozen=True)
class Validation:
    ok: bool
    detail: str


class Remediation:
    """Subclass per catalogue entry; register it with ``@register``."""

    remediation_id: ClassVar[str]
    # True when execute, called again after an attempt interrupted at an unknown point, re-reads the
    # live state and makes only what is still missing: the change is then made at most once.
    resumable: ClassVar[bool] = False

    def collect_diagnostics(self, ctx: RemediationContext) -> dict[str, Any] | None:
        """The target's current state as JSON-able data, with its tags under "tags".
        None when the resource no longer exists. Everything rollback needs is recorded here, before
        any change."""
        raise NotImplementedError

    def check_eligibility(self, ctx: RemediationContext, state: dict[str, Any]) -> str | None:
        """Re-check the real condition from live data. Return why no action is needed (already fixed,
        precondition not met), or None when the problem is real."""
        raise NotImplementedError

    def approval_reason(self, state: dict[str, Any]) -> str | None:
        """Why this target, as recorded in ``state``, needs a human even outside production (e.g. a
        stop that would erase instance-store data), or None. From recorded state only, so the approval
        gate and execute's re-check agree."""
        return None

    def plan(self, ctx: RemediationContext, state: dict[str, Any]) -> str:
        """What execute would do, in one sentence (dry runs and approval requests show it)."""
        raise NotImplementedError

    def execute(self, ctx: RemediationContext, state: dict[str, Any]) -> dict[str, Any]:
        """Make the change; idempotent; return what validation and rollback need."""
        raise NotImplementedError

    def validate(
        self, ctx: RemediationContext, state: dict[str, Any], result: dict[str, Any] | None
    ) -> Validation:
        """Read the state or metric back after the change. ``result`` is None when an interrupted
        attempt made (or may have made) the change and its result was not recorded: validate from live
        state where that is enough, else fail with ``unrecorded``, so that rollback runs."""
        raise NotImplementedError

    def rollback(self, ctx: RemediationContext, state: dict[str, Any], result: dict[str, Any] | None) -> str:
        """Undo, from the state recorded before the change. Only called when the entry has a rollback.
        ``result`` is None when execute itself failed part-way. Returns what was done."""
        raise NotImplementedError(f"{self.remediation_id} has no rollback")


def tags_from_list(
    tags: list[dict[str, str]] | None, key: str = "Key", value: str = "Value"
) -> dict[str, str]:
    return {t[key]: t[value] for t in tags or []}


def unrecorded(what: str) -> Validation:
    """The failed validation of a change whose result an interrupted attempt did not record."""
    return Validation(
        False, f"the interrupted attempt's result was not recorded, so {what} cannot be checked"
    )
