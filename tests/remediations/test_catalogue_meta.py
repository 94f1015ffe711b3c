"""Walks the whole catalogue: every entry is complete, and has its own tests."""

import ast

import pytest

from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.remediations import get_remediation
from matcarv_aiops.remediations.base import Remediation
from tests.conftest import REPO

ENTRIES = sorted(catalogue().values(), key=lambda e: e.id)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_entry_is_complete(entry):
    assert entry.trigger["source"], "trigger pattern"
    assert entry.permissions and all(":" in p and "*" not in p for p in entry.permissions)
    assert entry.validation and entry.eligibility
    assert entry.rollback or entry.no_rollback_reason
    handler = type(get_remediation(entry.id))
    for method in ("collect_diagnostics", "check_eligibility", "plan", "execute", "validate"):
        assert getattr(handler, method) is not getattr(Remediation, method), f"{entry.id} lacks {method}"
    has_rollback = handler.rollback is not Remediation.rollback
    assert has_rollback == bool(entry.rollback), f"{entry.id}: rollback in the entry and the class must agree"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_entry_has_its_own_tests(entry):
    path = REPO / "tests" / "remediations" / f"test_{entry.id}.py"
    assert path.exists(), f"{entry.id} has no {path.relative_to(REPO)}"
    tests = [
        node.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]
    assert len(tests) >= 3, (
        f"{entry.id}: happy path, validation failure and ineligible need tests; found {tests}"
    )
