"""``LocalAutomationClient``: the two SSM calls the pipeline uses (``start_automation_execution``,
``get_automation_execution``), served by the local runner, so the operator, the sensor and ``run_document``
are the same code on both backends.

Documents are read only from the client's documents directory, by plain name: a ``DocumentName`` that is a
path (``../x``, ``/etc/x``, ``sub/x``) is refused, as SSM refuses a name outside its naming rules.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from aiops_local.ssm_emulator.runner import LocalAutomationRunner, ParameterError
from matcarv_aiops.settings import Settings, get_settings
from matcarv_aiops.ssm.document import DocumentError, load
from matcarv_aiops.ssm.service import documents_dir

# SSM's document names: letters, digits, '_', '-' and '.', 3 to 128 of them (no path separators).
DOCUMENT_NAME = re.compile(r"^[A-Za-z0-9_.\-]{3,128}$")
_TIME_KEYS = ("ExecutionStartTime", "ExecutionEndTime")


def _client_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def _encode(execution: dict[str, Any]) -> str:
    return json.dumps(execution, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


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

    def document_file(self, name: str) -> Path:
        """The file of document ``name`` in the documents directory; a name that is a path is refused."""
        operation = "StartAutomationExecution"
        if not DOCUMENT_NAME.match(name) or name.strip(".") == "":
            raise _client_error(
                operation,
                "ValidationException",
                f"DocumentName {name!r} is not a document name (letters, digits, '_', '-', "
                f"'.'; no path): the local backend reads documents only from "
                f"{self.documents}",
            )
        path = self.documents / f"{name}.yaml"
        if not path.resolve().is_relative_to(self.documents.resolve()):  # e.g. a symlink leading out
            raise _client_error(
                operation, "ValidationException", f"DocumentName {name!r} leads outside {self.documents}"
            )
        if not path.is_file():
            raise _client_error(
                operation, "InvalidDocument", f"document {name} does not exist in {self.documents}"
            )
        return path

    def start_automation_execution(
        self,
        *,
        DocumentName: str,
        Parameters: dict[str, list[str]] | None = None,
        ClientToken: str | None = None,
        DocumentVersion: str | None = None,
        Mode: str = "Auto",
        **unsupported: Any,
    ) -> dict[str, Any]:
        operation = "StartAutomationExecution"
        if unsupported:
            raise _client_error(
                operation,
                "ValidationException",
                f"the local backend does not support {', '.join(sorted(unsupported))}",
            )
        if Mode != "Auto" or DocumentVersion not in (None, "1", "$DEFAULT", "$LATEST"):
            raise _client_error(
                operation, "ValidationException", "the local backend runs Mode=Auto, version 1 only"
            )
        if ClientToken and self._file("token", ClientToken).is_file():
            return {"AutomationExecutionId": self._file("token", ClientToken).read_text().strip()}
        path = self.document_file(DocumentName)
        try:
            document = load(path)
        except DocumentError as exc:
            raise _client_error(operation, "InvalidDocumentContent", str(exc)) from None
        execution_id = str(uuid.uuid4())
        try:
            execution = self.runner.run(document, Parameters or {}, execution_id=execution_id)
        except ParameterError as exc:
            raise _client_error(
                operation, "InvalidAutomationExecutionParametersException", str(exc)
            ) from None
        except DocumentError as exc:  # an action the local runner does not implement
            raise _client_error(operation, "InvalidDocumentContent", str(exc)) from None
        self._write(self._file("execution", execution_id), _encode(execution))
        if ClientToken:
            self._write(self._file("token", ClientToken), execution_id)
        return {"AutomationExecutionId": execution_id}

    def get_automation_execution(self, *, AutomationExecutionId: str) -> dict[str, Any]:
        path = self._file("execution", AutomationExecutionId)
        if not path.is_file():
            raise _client_error(
                "GetAutomationExecution",
                "AutomationExecutionNotFoundException",
                f"automation execution {AutomationExecutionId} not found",
            )
        return {"AutomationExecution": _decode(path.read_text())}


def local_client(
    settings: Settings | None = None, *, documents: Path | None = None, region: str | None = None
) -> LocalAutomationClient:
    """The client for ``AIOPS_SSM_BACKEND=local``: documents from ``documents`` (default: the settings'
    documents directory), executions under ``AIOPS_SSM_LOCAL_STATE_DIR`` (default: a temp directory),
    run in ``region`` (default: the hub's), as SSM runs a document in the Region it is started in."""
    settings = settings or get_settings()
    state_dir = (
        Path(settings.ssm.ssm_local_state_dir)
        if settings.ssm.ssm_local_state_dir
        else Path(tempfile.gettempdir()) / "aiops-ssm-executions"
    )
    runner = LocalAutomationRunner(
        poll_interval=settings.ssm.ssm_poll_seconds,
        retry_delay=settings.ssm.ssm_retry_seconds,
        region=region or settings.platform.region,
    )
    return LocalAutomationClient(
        documents=documents or documents_dir(settings), state_dir=state_dir, runner=runner
    )
