"""Fault cases use the in-process AWS of the other suites (``aws``: moto with the platform provisioned)
and the session's ``fault_report`` (tests/conftest.py; ``FAULTS_REPORT=<file>`` writes it)."""

from __future__ import annotations

import pytest

from tests.faults.invariants import ActionLog


@pytest.fixture
def actions():
    """The mutating AWS calls this case makes (bookkeeping excluded)."""
    log = ActionLog()
    with log.record():
        yield log
