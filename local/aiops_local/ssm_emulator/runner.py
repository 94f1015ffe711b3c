"""The local runner: executes an SSM Automation document's steps against whatever ``AWS_ENDPOINT_URL`` names.

Moto has no Automation API, so documents are tested by running them here, against moto in tests and in the
local stack. The result is shaped like ``GetAutomationExecution``'s ``AutomationExecution``.

Supported actions (``SUPPORTED_ACTIONS``): ``aws:executeAwsApi``, ``aws:waitForAwsResourceProperty``,
``aws:assertAwsResourceProperty``, ``aws:changeInstanceState``, ``aws:executeScript`` (Python runtimes),
``aws:branch`` and ``aws:sleep``. Any other action, or an input of a supported action the runner does not
implement, rejects the whole document before the first step runs: a step is never skipped silently.

Semantics kept from the service: ``{{ Param }}`` / ``{{ Step.Output }}`` / ``{{ global:* }}`` /
``{{ automation:* }}`` references (a value that is only a reference keeps its type); ``maxAttempts``
(retries after a failure or a timeout), ``timeoutSeconds`` per attempt, ``onFailure`` (Abort, Continue,
step:X), ``onCancel`` (Abort, step:X), ``isCritical`` (default false when onFailure is Continue), ``isEnd``,
``nextStep``, ``assumeRole`` (assumed through STS when it resolves to a role ARN), declared outputs with
JSONPath selectors and output types, and parameter types, defaults, ``allowedValues`` and ``allowedPattern``.

Not emulated: see ``NOT_EMULATED``.

A tool for the local stack and the tests, never shipped (neither in plugins.zip nor in the Lambda):
``matcarv_aiops.ssm.service.automation_client("local")`` imports it lazily.

Scripts receive parameters only through ``InputPayload``, as on SSM: an executeScript ``Script`` is
compiled as written, never with ``{{ references }}`` substituted into its source.
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session

from aiops_local.ssm_emulator.jsonpath import MISSING, SelectorError, select
from matcarv_aiops.ssm.document import REFERENCE, Document, DocumentError, Step, as_text, load, step_target

SUPPORTED_ACTIONS = (
    "aws:executeAwsApi",
    "aws:waitForAwsResourceProperty",
    "aws:assertAwsResourceProperty",
    "aws:changeInstanceState",
    "aws:executeScript",
    "aws:branch",
    "aws:sleep",
)
NOT_EMULATED = (
    "every action outside SUPPORTED_ACTIONS (aws:runCommand, aws:approve, aws:pause, aws:createImage, ...): "
    "the document is rejected",
    "executeScript runs in this Python interpreter whatever Runtime says (python3.8-3.11 accepted), with "
    "no sandbox, no 100 KB payload limit and no Attachment; a timed-out handler's thread cannot be killed "
    "and is left to finish in the background",
    "an API call in flight is not interrupted by timeoutSeconds or cancellation; both are checked around it",
    "the service's own retry back-off and throttling: retries wait retry_delay seconds",
    "rate control, targets and multi-account/multi-Region execution, execution modes other than Auto, "
    "change calendars and approvals",
    "document versions (DocumentVersion is reported as '1'), document-level 'files', and the service "
    "limits on execution time and step count (a loop is stopped after MAX_STEP_EXECUTIONS steps)",
    "IAM: calls use the runner's credentials, or the assumeRole role when one is given; executeScript "
    "handlers get the same session (and Region) as boto3's default session while they run, so two "
    "executions running scripts at once in one process would share it",
    "StopAutomationExecution: the local client runs a start to its end synchronously (the sensor sees a "
    "final status on its first poke); cancellation exists only for `aiops ssm run` (Ctrl-C / SIGTERM) or a "
    "threading.Event given to run()",
    "service timeouts when a step sets no timeoutSeconds: none, except executeScript's 600 seconds",
    "parameter minItems/maxItems/minChars/maxChars and displayType; allowedPattern is Python's re.search",
    "choices where the service's behaviour is not documented are decided as follows: a selector that "
    "yields a list matches DesiredValues only if every element does; an Abort of a step with "
    "isCritical: false ends the execution as Success; after onCancel: step:X the flow continues from X "
    "and the execution still ends Cancelled",
)
MAX_STEP_EXECUTIONS = 500
# Service defaults when a step sets no timeoutSeconds (None: no limit).
_DEFAULT_TIMEOUTS = {"aws:executeScript": 600}
_API_CONTROL_INPUTS = frozenset({"Service", "Api", "PropertySelector", "DesiredValues"})
_SUPPORTED_INPUTS = {
    "aws:changeInstanceState": frozenset(
        {"InstanceIds", "DesiredState", "CheckStateOnly", "Force", "AdditionalInfo"}
    ),
    "aws:executeScript": frozenset({"Runtime", "Handler", "Script", "InputPayload"}),
    "aws:branch": frozenset({"Choices", "Default"}),
    "aws:sleep": frozenset({"Duration", "Timestamp"}),
}
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class UnsupportedError(DocumentError):
    """The document uses something the local runner does not implement; nothing has run."""


class ParameterError(ValueError):
    """A parameter value is missing, unknown, or not valid for the document."""


class StepFailure(Exception):
    failure_type = "Verification"


class StepTimeout(StepFailure):
    failure_type = "Timeout"


class StepCancelled(Exception):
    pass


@dataclass
class ActionResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    response: Any = None
    next_step: str | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def jsonable(value: Any) -> Any:
    """An API response as the JSON the service sees (timestamps as ISO 8601, streams dropped)."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _coerce(kind: str, value: Any, what: str) -> Any:
    """A value of SSM type ``kind``; raises ValueError naming ``what``."""

    def fail(reason: str = ""):
        raise ValueError(f"{what}: {value!r} is not a valid {kind}{reason}")

    if (
        kind != "StringList"
        and kind != "MapList"
        and isinstance(value, list)
        and len(value) == 1
        and isinstance(value[0], str)
    ):
        value = value[0]  # the SSM API's {"Name": ["value"]} form
    if kind == "String":
        if isinstance(value, (dict, list)) or value is None:
            fail()
        return as_text(value)
    if kind == "Integer":
        if isinstance(value, bool):
            fail()
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        fail()
    if kind == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        fail()
    if kind == "StringList":
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    fail(" (bad JSON)")
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list) or any(isinstance(item, (dict, list)) for item in value):
            fail()
        return [as_text(item) for item in value]
    if kind in ("StringMap", "MapList"):
        if isinstance(value, list) and kind == "StringMap" and len(value) == 1:
            value = value[0]
        if isinstance(value, list) and kind == "MapList" and all(isinstance(item, str) for item in value):
            try:
                value = [json.loads(item) for item in value]
            except json.JSONDecodeError:
                fail(" (bad JSON)")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                fail(" (bad JSON)")
        if kind == "StringMap" and isinstance(value, dict):
            return value
        if kind == "MapList" and isinstance(value, list) and all(isinstance(item, dict) for item in value):
            return value
        fail()
    raise ValueError(f"{what}: unknown type {kind!r}")


def reported(kind: str, value: Any) -> list[str]:
    """How GetAutomationExecution reports a typed value: a list of strings."""
    if kind == "StringList":
        return [as_text(item) for item in value]
    if kind == "MapList":
        return [json.dumps(item, sort_keys=True) for item in value]
    return [as_text(value)]


def coerce_parameters(document: Document, given: dict[str, Any]) -> dict[str, Any]:
    """The execution's typed parameter values: given ones checked, defaults filled in."""
    specs = document.parameters
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise ParameterError(
            f"document {document.name} has no parameter {', '.join(unknown)} "
            f"(parameters: {', '.join(sorted(specs)) or 'none'})"
        )
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in given:
            raw = given[name]
        elif "default" in spec:
            raw = spec["default"]
        else:
            raise ParameterError(f"document {document.name}: parameter {name} is required")
        try:
            value = _coerce(spec["type"], raw, f"parameter {name}")
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
        texts = reported(spec["type"], value)
        allowed = [as_text(v) for v in spec.get("allowedValues", ())]
        if "allowedValues" in spec and any(text not in allowed for text in texts):
            raise ParameterError(f"parameter {name}: {raw!r} is not one of {spec['allowedValues']}")
        if "allowedPattern" in spec and spec["type"] in ("String", "StringList", "Integer"):
            for text in texts:
                if not re.search(str(spec["allowedPattern"]), text):
                    raise ParameterError(
                        f"parameter {name}: {text!r} does not match {spec['allowedPattern']}"
                    )
        values[name] = value
    return values


def check_supported(document: Document) -> None:
    """Reject, before anything runs, every action and input the runner does not implement."""
    if document.raw.get("files"):
        raise UnsupportedError(
            f"{document.path}: document attachments ('files') are not supported by the local runner"
        )
    for step in document.steps:
        if step.action not in SUPPORTED_ACTIONS:
            raise UnsupportedError(
                f"{document.path}: step {step.name}: action {step.action} is not "
                f"supported "
                f"by the local runner (supported: {', '.join(SUPPORTED_ACTIONS)})"
            )
        allowed = _SUPPORTED_INPUTS.get(step.action)
        extra = sorted(set(step.inputs) - allowed) if allowed is not None else []
        if extra:
            raise UnsupportedError(
                f"{document.path}: step {step.name}: {step.action} input(s) "
                f"{', '.join(extra)} "
                f"are not supported by the local runner"
            )
        runtime = str(step.inputs.get("Runtime", ""))
        if step.action == "aws:executeScript" and not runtime.startswith("python"):
            raise UnsupportedError(
                f"{document.path}: step {step.name}: aws:executeScript runtime "
                f"{step.inputs.get('Runtime')!r} is not supported by the local runner "
                f"(Python only)"
            )


def parse_duration(text: str) -> float:
    match = _DURATION.match(str(text))
    if not match or not any(match.groupdict().values()):
        raise StepFailure(f"Duration {text!r} is not an ISO 8601 duration such as PT5M")
    parts = {key: float(value or 0) for key, value in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


@lru_cache(maxsize=1)
def _model_loader():
    """One botocore loader for every execution: service models are static files, and loading the EC2
    model again for each new session costs far more than the steps themselves."""
    return botocore.loaders.create_loader()


def _new_session(**kwargs) -> boto3.session.Session:
    """A fresh session (credentials and endpoint resolved anew) that shares the model loader."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _model_loader())
    return boto3.session.Session(botocore_session=core, **kwargs)


class _Execution:
    """The mutable state of one execution."""

    def __init__(
        self,
        runner: LocalAutomationRunner,
        document: Document,
        parameters: dict[str, Any],
        execution_id: str,
        cancel: threading.Event,
    ):
        self.runner = runner
        self.document = document
        self.parameters = parameters
        self.execution_id = execution_id
        self.cancel = cancel
        self.outputs: dict[str, dict[str, Any]] = {}
        self.started = utc_now()
        self.region = runner.region or boto3.session.Session().region_name or "us-east-1"
        self._session: boto3.session.Session | None = None
        self._account: str | None = None
        self._clients: dict[str, Any] = {}

    # -- references ---------------------------------------------------------------------------------
    def lookup(self, ref: str) -> Any:
        if ref in self.parameters:
            return self.parameters[ref]
        system = {
            "automation:EXECUTION_ID": lambda: self.execution_id,
            "automation:DOCUMENT_NAME": lambda: self.document.name,
            "global:REGION": lambda: self.region,
            "global:ACCOUNT_ID": self.account,
            "global:AWS_PARTITION": lambda: "aws",
            "global:DATE": lambda: self.started.strftime("%Y-%m-%d"),
            "global:DATE_TIME": lambda: self.started.strftime("%Y-%m-%d_%H.%M.%S"),
        }
        if ref in system:
            return system[ref]()
        owner, _, name = ref.partition(".")
        if owner in self.outputs and name in self.outputs[owner]:
            return self.outputs[owner][name]
        raise StepFailure(
            f"reference {{{{ {ref} }}}} has no value: step {owner} has not produced output {name!r}"
        )

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            whole = REFERENCE.fullmatch(value.strip())
            if whole:
                return self.lookup(whole.group("ref"))
            return REFERENCE.sub(lambda m: as_text(self.lookup(m.group("ref"))), value)
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def resolve_inputs(self, step: Step) -> dict[str, Any]:
        """A step's inputs with their references resolved, except an executeScript's Script: it is compiled
        as written, because a script gets values only through InputPayload (substituting a parameter into
        the source would run the parameter's value as code)."""
        verbatim = {"Script"} if step.action == "aws:executeScript" else set()
        return {key: value if key in verbatim else self.resolve(value) for key, value in step.inputs.items()}

    # -- AWS ------------------------------------------------------------------------------------------
    def session(self) -> boto3.session.Session:
        if self._session is None:
            base = _new_session(region_name=self.region)
            assume = self.document.raw.get("assumeRole")
            role = self.resolve(assume) if assume else ""
            if role:
                creds = base.client("sts").assume_role(
                    RoleArn=str(role), RoleSessionName=f"aiops-ssm-{self.execution_id}"[:64]
                )["Credentials"]
                base = _new_session(
                    aws_access_key_id=creds["AccessKeyId"],
                    aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"],
                    region_name=self.region,
                )
            self._session = base
        return self._session

    def client(self, service: str):
        if service not in self._clients:  # one client per service and execution: creating one is slow
            self._clients[service] = self.session().client(service, region_name=self.region)
        return self._clients[service]

    def account(self) -> str:
        if self._account is None:
            self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    def wait(self, seconds: float, deadline: float | None) -> None:
        """Sleep, waking for cancellation; raise StepTimeout once past the deadline."""
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StepTimeout("step timed out")
            seconds = min(seconds, remaining)
        if self.cancel.wait(max(seconds, 0)):
            raise StepCancelled()


class LocalAutomationRunner:
    """Runs documents locally. Intervals are configurable so tests need not wait minutes."""

    def __init__(self, *, poll_interval: float = 5.0, retry_delay: float = 2.0, region: str | None = None):
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay
        self.region = region
        self._actions: dict[str, Callable[[_Execution, Step, dict[str, Any], float | None], ActionResult]] = {
            "aws:executeAwsApi": self._execute_aws_api,
            "aws:waitForAwsResourceProperty": self._wait_for_property,
            "aws:assertAwsResourceProperty": self._assert_property,
            "aws:changeInstanceState": self._change_instance_state,
            "aws:executeScript": self._execute_script,
            "aws:branch": self._branch,
            "aws:sleep": self._sleep,
        }

    def run(
        self,
        document: Document | str | Path,
        parameters: dict[str, Any] | None = None,
        *,
        execution_id: str | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Run to the end; returns the AutomationExecution. Raises DocumentError / ParameterError on bad
        input, before any step runs."""
        if not isinstance(document, Document):
            document = load(document)
        check_supported(document)
        values = coerce_parameters(document, parameters or {})
        execution = _Execution(
            self, document, values, execution_id or str(uuid.uuid4()), cancel or threading.Event()
        )
        records: list[dict[str, Any]] = []
        failure: tuple[str, Step, str] | None = None
        cancelled_in: Step | None = None
        current: Step | None = document.steps[0]
        while current is not None:
            if len(records) >= MAX_STEP_EXECUTIONS:
                message = f"stopped after {MAX_STEP_EXECUTIONS} step executions: the document loops"
                failure = failure or ("Failed", current, message)
                break
            if execution.cancel.is_set() and cancelled_in is None:
                record, result = self._cancelled_before_start(current), None
            else:
                record, result = self._run_step(execution, current)
            records.append(record)
            status = record["StepStatus"]
            if status == "Cancelled" and cancelled_in is None:
                cancelled_in = current
                # The onCancel handler runs to its end even though the execution is being cancelled.
                execution.cancel = threading.Event()
                handler = step_target(current.on_cancel)
                current = document.step(handler) if handler else None
                continue
            if status == "Success":
                if current.is_end:
                    current = None
                elif result and result.next_step:
                    current = document.step(result.next_step)
                else:
                    current = self._after(document, current)
                continue
            # Failed or TimedOut
            if current.is_critical and failure is None:
                failure = (status, current, record.get("FailureMessage", ""))
            target = step_target(current.on_failure)
            if target:
                current = document.step(target)
            elif current.on_failure == "Continue" and not current.is_end:
                current = self._after(document, current)
            else:
                current = None
        return self._execution_record(execution, records, failure, cancelled_in)

    @staticmethod
    def _after(document: Document, step: Step) -> Step | None:
        """The step after ``step`` when nothing redirects the flow: its nextStep, else the next one."""
        return document.step(step.next_step) if step.next_step else document.following(step)

    # -- one step -------------------------------------------------------------------------------------
    def _base_record(self, step: Step) -> dict[str, Any]:
        record: dict[str, Any] = {
            "StepName": step.name,
            "Action": step.action,
            "MaxAttempts": int(step.raw.get("maxAttempts", 1)),
            "OnFailure": step.on_failure,
            "StepStatus": "Pending",
            "Inputs": {},
            "Outputs": {},
            "StepExecutionId": str(uuid.uuid4()),
            "IsEnd": step.is_end,
            "IsCritical": step.is_critical,
        }
        if "timeoutSeconds" in step.raw:
            record["TimeoutSeconds"] = int(step.raw["timeoutSeconds"])
        if step.next_step:
            record["NextStep"] = step.next_step
        return record

    def _cancelled_before_start(self, step: Step) -> dict[str, Any]:
        record = self._base_record(step)
        now = utc_now()
        record.update(
            StepStatus="Cancelled",
            ExecutionStartTime=now,
            ExecutionEndTime=now,
            FailureMessage="Execution was cancelled before this step started",
        )
        return record

    def _run_step(self, execution: _Execution, step: Step) -> tuple[dict[str, Any], ActionResult | None]:
        record = self._base_record(step)
        record["ExecutionStartTime"] = utc_now()
        attempts = int(step.raw.get("maxAttempts", 1))
        timeout = step.raw.get("timeoutSeconds", _DEFAULT_TIMEOUTS.get(step.action))
        result: ActionResult | None = None
        for attempt in range(1, attempts + 1):
            deadline = time.monotonic() + float(timeout) if timeout else None
            stage = "Inputs"
            try:
                inputs = execution.resolve_inputs(step)
                stage = "Execution"
                record["Inputs"] = {key: json.dumps(value, default=str) for key, value in inputs.items()}
                result = self._actions[step.action](execution, step, inputs, deadline)
                if deadline is not None and time.monotonic() > deadline:
                    raise StepTimeout(f"Step timed out after {timeout} seconds")
                record["StepStatus"] = "Success"
                record.pop("FailureMessage", None)
                record.pop("FailureDetails", None)
                break
            except StepCancelled:
                record["StepStatus"] = "Cancelled"
                record["FailureMessage"] = "Execution was cancelled during this step"
                break
            except StepFailure as exc:
                record["StepStatus"] = "TimedOut" if isinstance(exc, StepTimeout) else "Failed"
                message = str(exc)
                failure_type = exc.failure_type
            except Exception as exc:  # an API error, a bug in a script handler...
                record["StepStatus"] = "Failed"
                message = f"{type(exc).__name__}: {exc}"
                failure_type = "Unknown"
            record["FailureMessage"] = f"{message} (attempt {attempt} of {attempts})"
            record["FailureDetails"] = {"FailureStage": stage, "FailureType": failure_type, "Details": {}}
            if attempt < attempts:
                try:
                    execution.wait(self.retry_delay, None)
                except StepCancelled:
                    record["StepStatus"] = "Cancelled"
                    record["FailureMessage"] = "Execution was cancelled while waiting to retry this step"
                    break
        record["ExecutionEndTime"] = utc_now()
        if record["StepStatus"] == "Success" and result is not None:
            execution.outputs[step.name] = result.outputs
            kinds = {o["Name"]: o["Type"] for o in step.declared_outputs}
            record["Outputs"] = {
                name: reported(kinds.get(name, "String"), value) for name, value in result.outputs.items()
            }
            if result.response is not None:
                response = result.response
                text = response if isinstance(response, str) else json.dumps(response, default=str)
                record["Response"] = text
            if result.next_step:
                record["NextStep"] = result.next_step
        return record, result

    @staticmethod
    def _declared_outputs(step: Step, source: Any) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        for output in step.declared_outputs:
            try:
                value = select(source, str(output["Selector"]))
            except SelectorError as exc:
                raise StepFailure(f"output {output['Name']}: {exc}") from None
            if value is MISSING:
                continue  # the service leaves an unmatched output unset; a later reference to it fails
            try:
                outputs[output["Name"]] = _coerce(output["Type"], value, f"output {output['Name']}")
            except ValueError as exc:
                raise StepFailure(str(exc)) from None
        return outputs

    # -- actions --------------------------------------------------------------------------------------
    @staticmethod
    def _call_api(execution: _Execution, inputs: dict[str, Any]) -> Any:
        client = execution.client(str(inputs["Service"]))
        methods = {api: method for method, api in client.meta.method_to_api_mapping.items()}
        method = methods.get(str(inputs["Api"]))
        if method is None:
            raise StepFailure(f"{inputs['Service']} has no API {inputs['Api']}")
        params = {key: value for key, value in inputs.items() if key not in _API_CONTROL_INPUTS}
        return jsonable(getattr(client, method)(**params))

    def _execute_aws_api(self, execution, step, inputs, deadline) -> ActionResult:
        response = self._call_api(execution, inputs)
        return ActionResult(outputs=self._declared_outputs(step, response), response=response)

    @staticmethod
    def _matches(value: Any, desired: list[Any]) -> bool:
        wanted = {as_text(item) for item in desired}
        if value is MISSING:
            return False
        if isinstance(value, list):
            return bool(value) and all(as_text(item) in wanted for item in value)
        return as_text(value) in wanted

    def _wait_for_property(self, execution, step, inputs, deadline) -> ActionResult:
        while True:
            response = self._call_api(execution, inputs)
            value = select(response, str(inputs["PropertySelector"]))
            if self._matches(value, inputs["DesiredValues"]):
                return ActionResult(outputs=self._declared_outputs(step, response))
            try:
                execution.wait(self.poll_interval, deadline)
            except StepTimeout:
                shown = "nothing" if value is MISSING else repr(value)
                raise StepTimeout(
                    f"{inputs['PropertySelector']} was still {shown}, waiting for one of "
                    f"{inputs['DesiredValues']}: step timed out"
                ) from None

    def _assert_property(self, execution, step, inputs, deadline) -> ActionResult:
        response = self._call_api(execution, inputs)
        value = select(response, str(inputs["PropertySelector"]))
        if not self._matches(value, inputs["DesiredValues"]):
            shown = "nothing" if value is MISSING else repr(value)
            raise StepFailure(
                f"{inputs['PropertySelector']} is {shown}; expected one of {inputs['DesiredValues']}"
            )
        return ActionResult(outputs=self._declared_outputs(step, response))

    def _change_instance_state(self, execution, step, inputs, deadline) -> ActionResult:
        ids = inputs["InstanceIds"]
        ids = [ids] if isinstance(ids, str) else [str(item) for item in ids]
        desired = inputs["DesiredState"]
        ec2 = execution.client("ec2")

        def states() -> dict[str, str]:
            found: dict[str, str] = {}
            for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
                for reservation in page["Reservations"]:
                    for instance in reservation["Instances"]:
                        found[instance["InstanceId"]] = instance["State"]["Name"]
            return found

        if inputs.get("CheckStateOnly") not in (True, "true", "True"):
            todo = [instance for instance, state in states().items() if state != desired]
            if todo and desired == "running":
                extra = {"AdditionalInfo": inputs["AdditionalInfo"]} if inputs.get("AdditionalInfo") else {}
                ec2.start_instances(InstanceIds=todo, **extra)
            elif todo and desired == "stopped":
                ec2.stop_instances(InstanceIds=todo, Force=inputs.get("Force") in (True, "true", "True"))
            elif todo:
                ec2.terminate_instances(InstanceIds=todo)
        while True:
            current = states()
            if all(current.get(instance) == desired for instance in ids):
                return ActionResult()
            try:
                execution.wait(self.poll_interval, deadline)
            except StepTimeout:
                raise StepTimeout(f"instances did not reach {desired}: {current}; step timed out") from None

    def _execute_script(self, execution, step, inputs, deadline) -> ActionResult:
        handler_name = str(inputs["Handler"])
        events = inputs.get("InputPayload") or {}
        context = {
            "automation:EXECUTION_ID": execution.execution_id,
            "automation:DOCUMENT_NAME": execution.document.name,
            "global:REGION": execution.region,
        }
        session = execution.session()
        outcome: dict[str, Any] = {}

        def target() -> None:
            namespace: dict[str, Any] = {"__name__": f"ssm_script_{step.name}"}
            try:
                source = f"<{execution.document.name}:{step.name}>"
                exec(compile(str(inputs["Script"]), source, "exec"), namespace)
                handler = namespace.get(handler_name)
                if not callable(handler):
                    raise StepFailure(f"Script defines no function {handler_name!r} (Handler)")
                outcome["payload"] = handler(events, context)
            except BaseException as exc:  # reported as the step's failure, whatever the handler raised
                outcome["error"] = exc
                outcome["trace"] = traceback.format_exc(limit=-1)

        # Handlers call boto3.client(...): give them the execution's session (its Region, its assumed role).
        previous = boto3.DEFAULT_SESSION
        boto3.DEFAULT_SESSION = session
        try:
            thread = threading.Thread(target=target, name=f"ssm-{step.name}", daemon=True)
            thread.start()
            while thread.is_alive():
                thread.join(0.02)
                if execution.cancel.is_set():
                    raise StepCancelled()
                if deadline is not None and time.monotonic() > deadline:
                    raise StepTimeout(
                        f"Script handler {handler_name} did not return within "
                        f"{step.raw.get('timeoutSeconds', 600)} seconds: step timed out"
                    )
        finally:
            boto3.DEFAULT_SESSION = previous
        if "error" in outcome:
            error = outcome["error"]
            if isinstance(error, StepFailure):
                raise error
            raise StepFailure(f"Script handler {handler_name} raised {type(error).__name__}: {error}")
        payload = outcome.get("payload")
        try:
            payload = json.loads(json.dumps(payload))
        except (TypeError, ValueError) as exc:
            raise StepFailure(
                f"Script handler {handler_name} returned a value that is not JSON: {exc}"
            ) from None
        source = {"Payload": payload}
        outputs = self._declared_outputs(step, source)
        outputs["OutputPayload"] = json.dumps(source)
        return ActionResult(outputs=outputs)

    def _choice_true(self, execution: _Execution, choice: dict[str, Any]) -> bool:
        if "And" in choice:
            return all(self._choice_true(execution, inner) for inner in choice["And"])
        if "Or" in choice:
            return any(self._choice_true(execution, inner) for inner in choice["Or"])
        if "Not" in choice:
            return not self._choice_true(execution, choice["Not"])
        variable = execution.resolve(choice["Variable"])
        operator = next(key for key in choice if key not in ("Variable", "NextStep"))
        expected = choice[operator]
        text = as_text(variable)
        try:
            if operator == "StringEquals":
                return text == as_text(expected)
            if operator == "EqualsIgnoreCase":
                return text.lower() == as_text(expected).lower()
            if operator == "StartsWith":
                return text.startswith(as_text(expected))
            if operator == "EndsWith":
                return text.endswith(as_text(expected))
            if operator == "Contains":
                if isinstance(variable, list):
                    return as_text(expected) in [as_text(item) for item in variable]
                return as_text(expected) in text
            if operator == "BooleanEquals":
                return _coerce("Boolean", variable, "Variable") == _coerce("Boolean", expected, operator)
            number, wanted = float(text), float(as_text(expected))
        except ValueError as exc:
            raise StepFailure(f"choice {operator} on {choice['Variable']}: {exc}") from None
        return {
            "NumericEquals": number == wanted,
            "NumericGreater": number > wanted,
            "NumericLesser": number < wanted,
            "NumericGreaterOrEquals": number >= wanted,
            "NumericLesserOrEquals": number <= wanted,
        }[operator]

    def _branch(self, execution, step, inputs, deadline) -> ActionResult:
        # Choices are evaluated from the document (not pre-resolved) so each Variable keeps its type.
        for choice in step.inputs["Choices"]:
            if self._choice_true(execution, choice):
                return ActionResult(next_step=choice["NextStep"])
        default = step.inputs.get("Default")
        following = execution.document.following(step)
        return ActionResult(next_step=default or (following.name if following else None))

    def _sleep(self, execution, step, inputs, deadline) -> ActionResult:
        if "Duration" in inputs:
            seconds = parse_duration(inputs["Duration"])
        else:
            try:
                until = datetime.fromisoformat(str(inputs["Timestamp"]).replace("Z", "+00:00"))
            except ValueError:
                raise StepFailure(f"Timestamp {inputs['Timestamp']!r} is not ISO 8601") from None
            if until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            seconds = (until - utc_now()).total_seconds()
        end = time.monotonic() + max(seconds, 0)
        while (remaining := end - time.monotonic()) > 0:
            execution.wait(remaining, deadline)
        return ActionResult()

    # -- the result -----------------------------------------------------------------------------------
    def _execution_record(
        self,
        execution: _Execution,
        records: list[dict[str, Any]],
        failure: tuple[str, Step, str] | None,
        cancelled_in: Step | None,
    ) -> dict[str, Any]:
        document = execution.document
        started = {record["StepName"] for record in records}
        # Steps never reached are listed as Pending, so nothing is skipped silently.
        for step in document.steps:
            if step.name not in started:
                records.append(self._base_record(step))
        result: dict[str, Any] = {
            "AutomationExecutionId": execution.execution_id,
            "DocumentName": document.name,
            "DocumentVersion": "1",
            "ExecutionStartTime": execution.started,
            "ExecutionEndTime": utc_now(),
            "StepExecutions": records,
            "StepExecutionsTruncated": False,
            "Parameters": {
                name: reported(document.parameters[name]["type"], value)
                for name, value in execution.parameters.items()
            },
            "Outputs": {},
            "Mode": "Auto",
        }
        if cancelled_in is not None:
            result["AutomationExecutionStatus"] = "Cancelled"
            result["FailureMessage"] = f"Execution cancelled during step {cancelled_in.name}"
        elif failure is not None:
            status, step, message = failure
            result["AutomationExecutionStatus"] = status
            result["FailureMessage"] = f"Step {step.name} ({step.action}) {status}: {message}"
        else:
            result["AutomationExecutionStatus"] = "Success"
        for ref in document.raw.get("outputs") or []:
            owner, _, name = str(ref).partition(".")
            if owner in execution.outputs and name in execution.outputs[owner]:
                kinds = {o["Name"]: o["Type"] for o in document.step(owner).declared_outputs}
                value = execution.outputs[owner][name]
                result["Outputs"][str(ref)] = reported(kinds.get(name, "String"), value)
        return result
