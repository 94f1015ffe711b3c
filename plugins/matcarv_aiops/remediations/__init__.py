"""The behaviour behind each catalogue entry: one module per entry id, one ``Remediation`` subclass each."""

from __future__ import annotations

import importlib

from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.remediations.base import Remediation

_REGISTRY: dict[str, type[Remediation]] = {}


def register(cls: type[Remediation]) -> type[Remediation]:
    if cls.remediation_id in _REGISTRY:
        raise ValueError(f"remediation {cls.remediation_id!r} registered twice")
    _REGISTRY[cls.remediation_id] = cls
    return cls


def get_remediation(remediation_id: str) -> Remediation:
    """The handler for a catalogue entry; its module is ``matcarv_aiops.remediations.<id>``."""
    if remediation_id not in _REGISTRY:
        importlib.import_module(f"matcarv_aiops.remediations.{remediation_id}")
    return _REGISTRY[remediation_id]()


def load_all() -> dict[str, type[Remediation]]:
    """Import every entry's module; a catalogue entry without one is an error naming the entry."""
    for remediation_id in catalogue():
        try:
            get_remediation(remediation_id)
        except (ImportError, KeyError) as exc:
            raise LookupError(
                f"catalogue entry {remediation_id!r} has no remediation module "
                f"matcarv_aiops.remediations.{remediation_id}: {exc}"
            ) from exc
    return dict(_REGISTRY)
