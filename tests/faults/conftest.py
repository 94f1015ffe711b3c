"""Fault cases share one report (``FAULTS_REPORT=<file>`` writes it) and the in-process AWS of the
other suites (``aws``: moto with the platform provisioned)."""

from __future__ import annotations

import pytest

from tests.faults.invariants import ActionLog, FaultReport

_REPORT = FaultReport()


@pytest.fixture(scope="session")
def fault_report():
    yield _REPORT
    _REPORT.write()


@pytest.fixture
def actions():
    """The mutating AWS calls this case makes (bookkeeping excluded)."""
    log = ActionLog()
    with log.record():
        yield log
