"""SSM Automation runbooks (multi-step, auditable remediations run as SSM Automation documents):
documents in the repository's ``ssm/``, their loader and rule checker, the IAM actions they call, and
``run_document`` to start one and wait for it. No Airflow here.

The local emulator (runner and local client, for ``AIOPS_SSM_BACKEND=local``) is not part of this package:
it is ``aiops_local.ssm_emulator``, a tool of the local stack and the tests, imported only when asked for.
"""

from matcarv_aiops.ssm.document import Document, DocumentError, Problem, load
from matcarv_aiops.ssm.service import (
    EmulatorUnavailable,
    automation_client,
    document_path,
    ended_ineligible,
    failure_message,
    run_document,
    to_ssm_parameters,
)
from matcarv_aiops.ssm.states import FAILURE_STATES, INTERMEDIATE_STATES, SUCCESS_STATES

__all__ = [
    "Document",
    "DocumentError",
    "Problem",
    "load",
    "EmulatorUnavailable",
    "automation_client",
    "document_path",
    "ended_ineligible",
    "failure_message",
    "run_document",
    "to_ssm_parameters",
    "FAILURE_STATES",
    "INTERMEDIATE_STATES",
    "SUCCESS_STATES",
]
