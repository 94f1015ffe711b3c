"""The SSM Automation emulator: runs documents locally (moto has no Automation API).

``LocalAutomationRunner`` executes a document's steps against ``AWS_ENDPOINT_URL``; ``LocalAutomationClient``
serves SSM's ``start_automation_execution`` / ``get_automation_execution`` over it for
``AIOPS_SSM_BACKEND=local``. What it does not emulate: ``NOT_EMULATED``. See ``ssm/README.md``.
"""

from aiops_local.ssm_emulator.client import LocalAutomationClient, local_client
from aiops_local.ssm_emulator.runner import (
    NOT_EMULATED,
    SUPPORTED_ACTIONS,
    LocalAutomationRunner,
    ParameterError,
    UnsupportedError,
)

__all__ = [
    "LocalAutomationClient",
    "local_client",
    "NOT_EMULATED",
    "SUPPORTED_ACTIONS",
    "LocalAutomationRunner",
    "ParameterError",
    "UnsupportedError",
]
