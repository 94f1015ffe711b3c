"""Starting documents and waiting for them, on SSM (``AIOPS_SSM_BACKEND=aws``) or locally (``local``).

``automation_client`` returns either boto3's SSM client or, for ``local``, the emulator's
``LocalAutomationClient`` (``aiops_local.ssm_emulator``, imported lazily: it is not shipped), which offers
the same two calls (``start_automation_execution``, ``get_automation_execution``), so the operator, the
sensor and ``run_document`` are the same code on both backends.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matcarv_aiops.settings import Settings, get_settings
from matcarv_aiops.ssm.document import DocumentError, as_text
from matcarv_aiops.ssm.states import FAILED_STEP_STATES, INTERMEDIATE_STATES

BACKENDS = ("aws", "local")
EMULATOR_PACKAGE = "aiops_local.ssm_emulator"
REPO_DOCUMENTS_DIR = Path(__file__).resolve().parents[3] / "ssm"
INELIGIBLE_FROM = "EligibilityCheck"


def documents_dir(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return Path(settings.ssm.ssm_documents_dir) if settings.ssm.ssm_documents_dir else REPO_DOCUMENTS_DIR


def document_path(name_or_path: str | Path, settings: Settings | None = None) -> Path:
    """A document file from a path, or from a document name looked up in the documents directory."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        path = Path(text)
    else:
        path = documents_dir(settings) / f"{text}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in documents_dir(settings).glob("*.yaml"))
        raise DocumentError(f"no SSM document {text!r} (documents: {', '.join(known) or 'none'})")
    return path


def document_name(name_or_path: str | Path) -> str:
    """The name SSM knows a document by: the file stem of a path, else the name itself."""
    text = str(name_or_path)
    return Path(text).stem if text.endswith((".yaml", ".yml")) or os.sep in text else text


def to_ssm_parameters(parameters: dict[str, Any] | None) -> dict[str, list[str]]:
    """StartAutomationExecution's Parameters form: every value a list of strings."""
    result: dict[str, list[str]] = {}
    for name, value in (parameters or {}).items():
        if value is None:
            continue
        result[name] = (
            [as_text(item) for item in value] if isinstance(value, (list, tuple)) else [as_text(value)]
        )
    return result


class EmulatorUnavailable(RuntimeError):
    """``AIOPS_SSM_BACKEND=local`` where the local emulator is not installed (on MWAA, in the Lambda)."""


def emulator():
    """The local SSM Automation emulator (``aiops_local.ssm_emulator``), imported only when asked for: it is
    a tool of the local stack and the tests and ships neither in plugins.zip nor in the Lambda."""
    try:
        return importlib.import_module(EMULATOR_PACKAGE)
    except ModuleNotFoundError as exc:
        if exc.name and EMULATOR_PACKAGE.startswith(exc.name):
            raise EmulatorUnavailable(
                f"AIOPS_SSM_BACKEND=local needs the local SSM Automation emulator, package "
                f"{EMULATOR_PACKAGE} (the repository's local/aiops_local, installed by `make install`), "
                f"which is not installed here ({exc}); it is never shipped to MWAA: use "
                f"AIOPS_SSM_BACKEND=aws there"
            ) from None
        raise


def resolve_backend(backend: str | None, settings: Settings | None = None) -> str:
    chosen = backend or (settings or get_settings()).ssm.ssm_backend
    if chosen not in BACKENDS:
        raise ValueError(f"SSM backend {chosen!r} is not one of {', '.join(BACKENDS)} (AIOPS_SSM_BACKEND)")
    return chosen


def automation_client(
    backend: str | None = None,
    *,
    aws_client_factory: Callable[[], Any] | None = None,
    settings: Settings | None = None,
    region: str | None = None,
):
    """boto3's SSM client (or the one ``aws_client_factory`` builds, e.g. from SsmHook), or for backend
    ``local`` the emulator's client (EmulatorUnavailable where the emulator is not installed). Runbooks
    run in ``region`` (a remediation's: its target's), else in the hub's."""
    settings = settings or get_settings()
    region = region or settings.platform.region
    if resolve_backend(backend, settings) == "local":
        return emulator().local_client(settings, region=region)
    if aws_client_factory is not None:
        return aws_client_factory()
    import boto3

    return boto3.session.Session().client("ssm", region_name=region)


def failure_message(execution: dict[str, Any]) -> str:
    """Why an execution did not succeed: the failed step's own message, else the execution's."""
    status = execution.get("AutomationExecutionStatus")
    prefix = (
        f"SSM automation {execution.get('AutomationExecutionId')} ({execution.get('DocumentName')}) "
        f"ended {status}"
    )
    for step in execution.get("StepExecutions") or []:
        if step.get("StepStatus") in FAILED_STEP_STATES and step.get("IsCritical", True):
            message = step.get("FailureMessage") or (step.get("FailureDetails") or {}).get("FailureType", "")
            return f"{prefix}: step {step.get('StepName')} {step.get('StepStatus')}: {message}"
    return f"{prefix}: {execution.get('FailureMessage') or 'no failure message'}"


def ended_ineligible(execution: dict[str, Any]) -> bool:
    """Whether a successful execution stopped on EligibilityCheck's way out: the step run right after the
    check is the last one run, and it is an ``isEnd`` step (every runbook's RecordIneligible)."""
    if execution.get("AutomationExecutionStatus") != "Success":
        return False
    ran = [step for step in execution.get("StepExecutions") or [] if step.get("StepStatus") != "Pending"]
    names = [step.get("StepName") for step in ran]
    if INELIGIBLE_FROM not in names:
        return False
    after = ran[names.index(INELIGIBLE_FROM) + 1 :]
    return len(after) == 1 and after[0].get("IsEnd") is True and after[0].get("StepStatus") == "Success"


def run_document(
    name_or_path: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    backend: str | None = None,
    client_token: str | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
    client: Any = None,
) -> dict[str, Any]:
    """Start a document and wait for its end, without Airflow; returns the AutomationExecution.

    ``backend``: "aws" (StartAutomationExecution on SSM) or "local" (the local runner); default the
    AIOPS_SSM_BACKEND setting. Raises botocore's ClientError for a bad document or parameters (both
    backends) and TimeoutError when ``timeout`` seconds pass first.
    """
    settings = settings or get_settings()
    chosen = resolve_backend(backend, settings)
    if client is None:
        if chosen == "local" and str(name_or_path).endswith((".yaml", ".yml")):
            path = document_path(name_or_path, settings)
            client = emulator().local_client(settings, documents=path.parent)
        else:
            client = automation_client(chosen, settings=settings)
    request: dict[str, Any] = {
        "DocumentName": document_name(name_or_path),
        "Parameters": to_ssm_parameters(parameters),
    }
    if client_token:
        request["ClientToken"] = client_token
    execution_id = client.start_automation_execution(**request)["AutomationExecutionId"]
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        execution = client.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        if execution["AutomationExecutionStatus"] not in INTERMEDIATE_STATES:
            return execution
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(
                f"SSM automation {execution_id} still {execution['AutomationExecutionStatus']} "
                f"after {timeout} seconds"
            )
        time.sleep(settings.ssm.ssm_poll_seconds)
