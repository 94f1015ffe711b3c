"""SSM Automation runbooks (SPEC.md pattern 2): documents in the repository's ``ssm/``, the rule checker,
the local runner, and ``run_document`` to start one and wait for it (on SSM or locally). No Airflow here.
"""

from matcarv_aiops.ssm.document import Document, DocumentError, Problem, load
from matcarv_aiops.ssm.runner import NOT_EMULATED, SUPPORTED_ACTIONS, LocalAutomationRunner, ParameterError
from matcarv_aiops.ssm.service import (
    automation_client,
    document_path,
    ended_ineligible,
    failure_message,
    run_document,
    to_ssm_parameters,
)
from matcarv_aiops.ssm.states import FAILURE_STATES, INTERMEDIATE_STATES, SUCCESS_STATES

__all__ = [
    "Document", "DocumentError", "Problem", "load", "NOT_EMULATED", "SUPPORTED_ACTIONS", "LocalAutomationRunner",
    "ParameterError", "automation_client", "document_path", "ended_ineligible", "failure_message",
    "run_document", "to_ssm_parameters", "FAILURE_STATES", "INTERMEDIATE_STATES", "SUCCESS_STATES",
]
