"""Starting documents and waiting for them, on SSM (``AIOPS_SSM_BACKEND=aws``) or locally (``local``).

``automation_client`` returns either boto3's SSM client or ``LocalAutomationClient``, which offers the same
two calls (``start_automation_execution``, ``get_automation_execution``) over the local runner, so the
operator, the sensor and ``run_document`` are the same code on both backends.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import ClientError

from matcarv_aiops.settings import Settings, get_settings
from matcarv_aiops.ssm.document import DocumentError, load
from matcarv_aiops.ssm.runner import LocalAutomationRunner, ParameterError, as_text
from matcarv_aiops.ssm.states import FAILED_STEP_STATES, INTERMEDIATE_STATES

BACKENDS = ("aws", "local")
REPO_DOCUMENTS_DIR = Path(__file__).resolve().parents[3] / "ssm"
INELIGIBLE_FROM = "EligibilityCheck"


def documents_dir(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return Path(settings.ssm_documents_dir) if settings.ssm_documents_dir else REPO_DOCUMENTS_DIR


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
        result[name] = [as_text(item) for item in value] if isinstance(value, (list, tuple)) else [as_text(value)]
    return result


def _client_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


_TIME_KEYS = ("ExecutionStartTime", "ExecutionEndTime")


def _encode(execution: dict[str, Any]) -> str:
    return json.dumps(execution, default=lambda value: value.isoformat() if isinstance(value, datetime) else str(value))


def _decode(text: str) -> dict[str, Any]:
    execution = json.loads(text)
    for record in [execution, *execution.get("StepExecutions", [])]:
        for key in _TIME_KEYS:
            if isinstance(record.get(key), str):
                record[key] = datetime.fromisoformat(record[key])
    return execution


class LocalAutomationClient:
    """The two SSM calls the pipeline uses, served by the local runner.

    ``start_automation_execution`` runs the document to its end before returning (there is no service to
    run it in the background); executions are kept as JSON files in ``state_dir`` so that another process
    (the sensor's next poke) can read them. ``ClientToken`` makes a start idempotent, as on SSM.
    """

    def __init__(self, *, documents: Path, state_dir: Path, runner: LocalAutomationRunner):
        self.documents = documents
        self.state_dir = state_dir
        self.runner = runner

    def _file(self, kind: str, key: str) -> Path:
        return self.state_dir / f"{kind}-{key}.json"

    def _write(self, path: Path, text: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def start_automation_execution(self, *, DocumentName: str, Parameters: dict[str, list[str]] | None = None,
                                   ClientToken: str | None = None, DocumentVersion: str | None = None,
                                   Mode: str = "Auto", **unsupported: Any) -> dict[str, Any]:
        operation = "StartAutomationExecution"
        if unsupported:
            raise _client_error(operation, "ValidationException",
                                f"the local backend does not support {', '.join(sorted(unsupported))}")
        if Mode != "Auto" or DocumentVersion not in (None, "1", "$DEFAULT", "$LATEST"):
            raise _client_error(operation, "ValidationException", "the local backend runs Mode=Auto, version 1 only")
        if ClientToken and self._file("token", ClientToken).is_file():
            return {"AutomationExecutionId": self._file("token", ClientToken).read_text().strip()}
        path = self.documents / f"{DocumentName}.yaml"
        if not path.is_file():
            raise _client_error(operation, "InvalidDocument", f"document {DocumentName} does not exist in {self.documents}")
        try:
            document = load(path)
        except DocumentError as exc:
            raise _client_error(operation, "InvalidDocumentContent", str(exc)) from None
        execution_id = str(uuid.uuid4())
        try:
            execution = self.runner.run(document, Parameters or {}, execution_id=execution_id)
        except ParameterError as exc:
            raise _client_error(operation, "InvalidAutomationExecutionParametersException", str(exc)) from None
        except DocumentError as exc:  # an action the local runner does not implement
            raise _client_error(operation, "InvalidDocumentContent", str(exc)) from None
        self._write(self._file("execution", execution_id), _encode(execution))
        if ClientToken:
            self._write(self._file("token", ClientToken), execution_id)
        return {"AutomationExecutionId": execution_id}

    def get_automation_execution(self, *, AutomationExecutionId: str) -> dict[str, Any]:
        path = self._file("execution", AutomationExecutionId)
        if not path.is_file():
            raise _client_error("GetAutomationExecution", "AutomationExecutionNotFoundException",
                                f"automation execution {AutomationExecutionId} not found")
        return {"AutomationExecution": _decode(path.read_text())}


def local_client(settings: Settings | None = None) -> LocalAutomationClient:
    settings = settings or get_settings()
    state_dir = (Path(settings.ssm_local_state_dir) if settings.ssm_local_state_dir
                 else Path(tempfile.gettempdir()) / "aiops-ssm-executions")
    runner = LocalAutomationRunner(poll_interval=settings.ssm_poll_seconds, retry_delay=settings.ssm_retry_seconds,
                                   region=settings.region)
    return LocalAutomationClient(documents=documents_dir(settings), state_dir=state_dir, runner=runner)


def resolve_backend(backend: str | None, settings: Settings | None = None) -> str:
    chosen = backend or (settings or get_settings()).ssm_backend
    if chosen not in BACKENDS:
        raise ValueError(f"SSM backend {chosen!r} is not one of {', '.join(BACKENDS)} (AIOPS_SSM_BACKEND)")
    return chosen


def automation_client(backend: str | None = None, *, aws_client_factory: Callable[[], Any] | None = None,
                      settings: Settings | None = None):
    """boto3's SSM client (or the one ``aws_client_factory`` builds, e.g. from SsmHook), or the local one."""
    settings = settings or get_settings()
    if resolve_backend(backend, settings) == "local":
        return local_client(settings)
    if aws_client_factory is not None:
        return aws_client_factory()
    import boto3

    return boto3.session.Session().client("ssm", region_name=settings.region)


def failure_message(execution: dict[str, Any]) -> str:
    """Why an execution did not succeed: the failed step's own message, else the execution's."""
    status = execution.get("AutomationExecutionStatus")
    prefix = f"SSM automation {execution.get('AutomationExecutionId')} ({execution.get('DocumentName')}) ended {status}"
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
    after = ran[names.index(INELIGIBLE_FROM) + 1:]
    return len(after) == 1 and after[0].get("IsEnd") is True and after[0].get("StepStatus") == "Success"


def run_document(name_or_path: str | Path, parameters: dict[str, Any] | None = None, *, backend: str | None = None,
                 client_token: str | None = None, timeout: float | None = None,
                 settings: Settings | None = None, client: Any = None) -> dict[str, Any]:
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
            client = local_client(settings)
            client.documents = path.parent
        else:
            client = automation_client(chosen, settings=settings)
    request: dict[str, Any] = {"DocumentName": document_name(name_or_path),
                               "Parameters": to_ssm_parameters(parameters)}
    if client_token:
        request["ClientToken"] = client_token
    execution_id = client.start_automation_execution(**request)["AutomationExecutionId"]
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        execution = client.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        if execution["AutomationExecutionStatus"] not in INTERMEDIATE_STATES:
            return execution
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"SSM automation {execution_id} still {execution['AutomationExecutionStatus']} "
                               f"after {timeout} seconds")
        time.sleep(settings.ssm_poll_seconds)
