"""SSM Automation documents (schema version 0.3): loading, the basic schema, and what a step refers to.

Shared by the checker (which reports every problem) and the local emulator (``aiops_local.ssm_emulator``,
which refuses a document with any schema problem before running a single step). Nothing here calls AWS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

SCHEMA_VERSION = "0.3"

# Every action the SSM Automation service offers (Systems Manager "Automation actions reference").
REAL_ACTIONS = frozenset(
    {
        "aws:approve",
        "aws:assertAwsResourceProperty",
        "aws:branch",
        "aws:changeInstanceState",
        "aws:copyImage",
        "aws:createImage",
        "aws:createStack",
        "aws:createTags",
        "aws:deleteImage",
        "aws:deleteStack",
        "aws:executeAutomation",
        "aws:executeAwsApi",
        "aws:executeScript",
        "aws:executeStateMachine",
        "aws:invokeLambdaFunction",
        "aws:invokeWebhook",
        "aws:loop",
        "aws:pause",
        "aws:runCommand",
        "aws:runInstances",
        "aws:sleep",
        "aws:updateVariable",
        "aws:waitForAwsResourceProperty",
    }
)
PARAMETER_TYPES = frozenset({"String", "StringList", "Integer", "Boolean", "MapList", "StringMap"})
OUTPUT_TYPES = PARAMETER_TYPES
SCRIPT_RUNTIMES = frozenset(
    {
        "python3.8",
        "python3.9",
        "python3.10",
        "python3.11",
        "PowerShell Core 6.0",
        "PowerShell 7.0",
        "PowerShell 7.4",
    }
)
# Variables the service defines for every execution.
SYSTEM_VARIABLES = frozenset(
    {
        "automation:EXECUTION_ID",
        "automation:DOCUMENT_NAME",
        "global:ACCOUNT_ID",
        "global:REGION",
        "global:AWS_PARTITION",
        "global:DATE",
        "global:DATE_TIME",
    }
)
# Outputs an action produces without being declared.
BUILTIN_OUTPUTS = {"aws:executeScript": frozenset({"OutputPayload"})}
CHOICE_OPERATORS = frozenset(
    {
        "StringEquals",
        "EqualsIgnoreCase",
        "StartsWith",
        "EndsWith",
        "Contains",
        "NumericEquals",
        "NumericGreater",
        "NumericLesser",
        "NumericGreaterOrEquals",
        "NumericLesserOrEquals",
        "BooleanEquals",
    }
)

_TOP_LEVEL_KEYS = frozenset(
    {"schemaVersion", "description", "assumeRole", "parameters", "mainSteps", "outputs", "files"}
)
_STEP_KEYS = frozenset(
    {
        "name",
        "action",
        "description",
        "inputs",
        "outputs",
        "maxAttempts",
        "timeoutSeconds",
        "onFailure",
        "onCancel",
        "isCritical",
        "isEnd",
        "nextStep",
    }
)
_PARAMETER_KEYS = frozenset(
    {
        "type",
        "description",
        "default",
        "allowedValues",
        "allowedPattern",
        "displayType",
        "minItems",
        "maxItems",
        "minChars",
        "maxChars",
    }
)
_NAME = re.compile(r"^[A-Za-z0-9_]{1,128}$")
_STEP_TARGET = re.compile(r"^step:(?P<step>.+)$")
REFERENCE = re.compile(r"{{\s*(?P<ref>[A-Za-z0-9_:.\-]+)\s*}}")
# Inputs of these actions are validated here; the API actions pass every other input to the API.
_REQUIRED_INPUTS = {
    "aws:executeAwsApi": ("Service", "Api"),
    "aws:waitForAwsResourceProperty": ("Service", "Api", "PropertySelector", "DesiredValues"),
    "aws:assertAwsResourceProperty": ("Service", "Api", "PropertySelector", "DesiredValues"),
    "aws:changeInstanceState": ("InstanceIds", "DesiredState"),
    "aws:executeScript": ("Runtime", "Handler"),
    "aws:branch": ("Choices",),
}


class DocumentError(ValueError):
    """A document that cannot be used; the message names the file, and the step where there is one."""


@dataclass(frozen=True)
class Problem:
    """One reason a document is rejected."""

    file: str
    step: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: step {self.step}" if self.step else self.file
        return f"{where}: {RULE_TITLES.get(self.rule, self.rule)}: {self.message}"


RULE_TITLES = {
    "schema": "schema",
    "rule-1": "rule 1 (first step CollectDiagnostics writes state to S3)",
    "rule-2": "rule 2 (EligibilityCheck aborts gracefully)",
    "rule-3": "rule 3 (destructive steps set onFailure: Abort and onCancel: Abort)",
    "rule-4": "rule 4 (last step ValidateRemediation)",
    "rule-5": "rule 5 (emits RemediationExecuted in AIOps/Automation)",
    "rule-6": "rule 6 (maxAttempts: 3 and timeoutSeconds: 300 on every step)",
}


@dataclass(frozen=True)
class Step:
    name: str
    action: str
    raw: dict[str, Any]
    index: int

    @property
    def inputs(self) -> dict[str, Any]:
        value = self.raw.get("inputs")
        return value if isinstance(value, dict) else {}

    @property
    def declared_outputs(self) -> list[dict[str, Any]]:
        value = self.raw.get("outputs")
        return [o for o in value if isinstance(o, dict)] if isinstance(value, list) else []

    @property
    def output_names(self) -> frozenset[str]:
        names = (o.get("Name") for o in self.declared_outputs)
        return frozenset(name for name in names if isinstance(name, str)) | BUILTIN_OUTPUTS.get(
            self.action, frozenset()
        )

    @property
    def on_failure(self) -> str:
        return str(self.raw.get("onFailure", "Abort"))

    @property
    def on_cancel(self) -> str:
        return str(self.raw.get("onCancel", "Abort"))

    @property
    def is_end(self) -> bool:
        return self.raw.get("isEnd") is True

    @property
    def is_critical(self) -> bool:
        """Explicit isCritical wins; otherwise a step that may Continue on failure is not critical."""
        if "isCritical" in self.raw:
            return self.raw["isCritical"] is True
        return self.on_failure != "Continue"

    @property
    def next_step(self) -> str | None:
        return self.raw.get("nextStep")


@dataclass
class Document:
    path: Path
    raw: dict[str, Any]
    steps: list[Step] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The document's name in SSM: the file stem (the CDK app deploys each file under it)."""
        return self.path.stem

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        value = self.raw.get("parameters")
        return value if isinstance(value, dict) else {}

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    def following(self, step: Step) -> Step | None:
        """The step after ``step`` in mainSteps order, or None after the last one."""
        return self.steps[step.index + 1] if step.index + 1 < len(self.steps) else None


def as_text(value: Any) -> str:
    """A value as SSM shows it inside a string, in StartAutomationExecution's Parameters and in outputs."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def step_target(value: str) -> str | None:
    """``step:Name`` -> ``Name``; None for Abort/Continue."""
    match = _STEP_TARGET.match(value or "")
    return match.group("step") if match else None


def references(value: Any) -> list[str]:
    """Every ``{{ ref }}`` inside a (nested) input value."""
    found: list[str] = []
    if isinstance(value, str):
        found.extend(m.group("ref") for m in REFERENCE.finditer(value))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(references(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(references(item))
    return found


def parse(path: Path, text: str | None = None) -> tuple[Document | None, list[Problem]]:
    """Load a document and check the basic schema; returns every problem found."""
    label = str(path)
    try:
        raw = yaml.safe_load(path.read_text() if text is None else text)
    except (OSError, yaml.YAMLError) as exc:
        return None, [Problem(label, None, "schema", f"cannot read YAML: {exc}".replace("\n", " "))]
    if not isinstance(raw, dict):
        return None, [Problem(label, None, "schema", "a document must be a YAML mapping")]
    problems: list[Problem] = []

    def problem(step: str | None, message: str) -> None:
        problems.append(Problem(label, step, "schema", message))

    for key in sorted(set(raw) - _TOP_LEVEL_KEYS):
        problem(None, f"unknown top-level key {key!r}")
    if raw.get("schemaVersion") != SCHEMA_VERSION:
        problem(None, f"schemaVersion must be the string '0.3' (quoted), got {raw.get('schemaVersion')!r}")
    _check_parameters(raw.get("parameters"), problem)

    steps_raw = raw.get("mainSteps")
    document = Document(path=path, raw=raw)
    if not isinstance(steps_raw, list) or not steps_raw:
        problem(None, "mainSteps must be a non-empty list")
        return document, problems
    seen: set[str] = set()
    for index, item in enumerate(steps_raw):
        if not isinstance(item, dict):
            problem(f"#{index + 1}", "a step must be a mapping")
            continue
        name = item.get("name")
        label_step = name if isinstance(name, str) else f"#{index + 1}"
        if not isinstance(name, str) or not _NAME.match(name):
            problem(label_step, "name must be 1-128 letters, digits or underscores")
        elif name in seen:
            problem(name, "step name is used twice")
        seen.add(str(name))
        action = item.get("action")
        if action not in REAL_ACTIONS:
            problem(label_step, f"action {action!r} is not an SSM Automation action")
        document.steps.append(Step(name=str(name), action=str(action), raw=item, index=len(document.steps)))

    names = set(document.step_names())
    parameters = document.parameters
    for step in document.steps:
        _check_step(step, names, problem)
    _check_references(document, parameters, problem)
    return document, problems


def _check_parameters(parameters: Any, problem) -> None:
    if parameters is None:
        return
    if not isinstance(parameters, dict):
        problem(None, "parameters must be a mapping of name to definition")
        return
    for name, spec in parameters.items():
        if not _NAME.match(str(name)):
            problem(None, f"parameter name {name!r} must be letters, digits or underscores")
        if not isinstance(spec, dict):
            problem(None, f"parameter {name}: definition must be a mapping")
            continue
        for key in sorted(set(spec) - _PARAMETER_KEYS):
            problem(None, f"parameter {name}: unknown key {key!r}")
        if spec.get("type") not in PARAMETER_TYPES:
            problem(
                None,
                f"parameter {name}: type must be one of {sorted(PARAMETER_TYPES)}, got {spec.get('type')!r}",
            )
        if "allowedPattern" in spec:
            try:
                re.compile(str(spec["allowedPattern"]))
            except re.error as exc:
                problem(None, f"parameter {name}: allowedPattern is not a regular expression: {exc}")


def _check_step(step: Step, names: set[str], problem) -> None:
    raw = step.raw
    for key in sorted(set(raw) - _STEP_KEYS):
        problem(step.name, f"unknown step key {key!r}")
    for key in ("maxAttempts", "timeoutSeconds"):
        if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] < 1):
            problem(step.name, f"{key} must be a positive integer, got {raw[key]!r}")
    for key in ("isEnd", "isCritical"):
        if key in raw and not isinstance(raw[key], bool):
            problem(step.name, f"{key} must be true or false, got {raw[key]!r}")
    on_failure = raw.get("onFailure", "Abort")
    if on_failure not in ("Abort", "Continue") and not step_target(str(on_failure)):
        problem(step.name, f"onFailure must be Abort, Continue or step:<name>, got {on_failure!r}")
    on_cancel = raw.get("onCancel", "Abort")
    if on_cancel != "Abort" and not step_target(str(on_cancel)):
        problem(step.name, f"onCancel must be Abort or step:<name>, got {on_cancel!r}")
    for key, value in (("onFailure", on_failure), ("onCancel", on_cancel)):
        target = step_target(str(value))
        if target and target not in names:
            problem(step.name, f"{key} names step {target!r}, which does not exist")
    if "nextStep" in raw and raw["nextStep"] not in names:
        problem(step.name, f"nextStep names step {raw['nextStep']!r}, which does not exist")
    if "inputs" in raw and not isinstance(raw["inputs"], dict):
        problem(step.name, "inputs must be a mapping")
    for key in _REQUIRED_INPUTS.get(step.action, ()):
        if key not in step.inputs:
            problem(step.name, f"{step.action} needs input {key!r}")
    if "outputs" in raw:
        if not isinstance(raw["outputs"], list):
            problem(step.name, "outputs must be a list of {Name, Selector, Type}")
        for output in raw.get("outputs") or []:
            if not isinstance(output, dict) or set(output) != {"Name", "Selector", "Type"}:
                problem(step.name, f"output {output!r} must have exactly Name, Selector and Type")
                continue
            if output["Type"] not in OUTPUT_TYPES:
                problem(step.name, f"output {output['Name']}: Type must be one of {sorted(OUTPUT_TYPES)}")
            if not str(output["Selector"]).startswith("$"):
                problem(step.name, f"output {output['Name']}: Selector must be a JSONPath starting with '$'")
    inputs = step.inputs
    if step.action in (
        "aws:executeAwsApi",
        "aws:waitForAwsResourceProperty",
        "aws:assertAwsResourceProperty",
    ):
        _check_api(step, inputs, problem)
    if (
        step.action in ("aws:waitForAwsResourceProperty", "aws:assertAwsResourceProperty")
        and "DesiredValues" in inputs
        and not isinstance(inputs["DesiredValues"], list)
    ):
        problem(step.name, "DesiredValues must be a list")
    if step.action == "aws:changeInstanceState" and inputs.get("DesiredState") not in (
        "running",
        "stopped",
        "terminated",
    ):
        problem(
            step.name,
            f"DesiredState must be running, stopped or terminated, got {inputs.get('DesiredState')!r}",
        )
    if step.action == "aws:executeScript":
        if "Runtime" in inputs and inputs["Runtime"] not in SCRIPT_RUNTIMES:
            problem(step.name, f"Runtime must be one of {sorted(SCRIPT_RUNTIMES)}, got {inputs['Runtime']!r}")
        if "Script" not in inputs and "Attachment" not in inputs:
            problem(step.name, "aws:executeScript needs input 'Script' or 'Attachment'")
        script_refs = references(inputs.get("Script"))
        if script_refs:
            # SSM hands a script its values through InputPayload only; text substituted into the source
            # would run a parameter's value as code.
            shown = ", ".join("{{ " + ref + " }}" for ref in script_refs)
            problem(
                step.name,
                f"Script must not contain references ({shown}): pass values through "
                "InputPayload and read them from the handler's events",
            )
        if "Script" in inputs and str(inputs.get("Runtime", "")).startswith("python"):
            try:
                compile(str(inputs["Script"]), f"<{step.name}>", "exec")
            except SyntaxError as exc:
                problem(step.name, f"Script is not valid Python: {exc.msg} (line {exc.lineno})")
    if step.action == "aws:branch":
        choices = inputs.get("Choices")
        if not isinstance(choices, list) or not choices:
            problem(step.name, "Choices must be a non-empty list")
        else:
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("NextStep") not in names:
                    problem(step.name, f"every choice needs a NextStep naming a step; got {choice!r}")
                else:
                    _check_choice(step, choice, problem, top=True)
        if "Default" in inputs and inputs["Default"] not in names:
            problem(step.name, f"Default names step {inputs['Default']!r}, which does not exist")
    if step.action == "aws:sleep" and ("Duration" in inputs) == ("Timestamp" in inputs):
        problem(step.name, "aws:sleep needs exactly one of Duration or Timestamp")


def _check_choice(step: Step, choice: Any, problem, *, top: bool = False) -> None:
    if not isinstance(choice, dict):
        problem(step.name, f"a choice must be a mapping, got {choice!r}")
        return
    keys = set(choice) - {"NextStep"} if top else set(choice)
    if keys & {"And", "Or"}:
        for key in keys & {"And", "Or"}:
            if not isinstance(choice[key], list) or not choice[key]:
                problem(step.name, f"{key} must be a non-empty list of choices")
                continue
            for inner in choice[key]:
                _check_choice(step, inner, problem)
    elif "Not" in keys:
        _check_choice(step, choice["Not"], problem)
    else:
        operators = keys - {"Variable"}
        if "Variable" not in keys or len(operators) != 1 or not operators <= CHOICE_OPERATORS:
            problem(
                step.name,
                f"a choice needs Variable and one operator of {sorted(CHOICE_OPERATORS)}; got {sorted(keys)}",
            )


@lru_cache(maxsize=64)
def service_model(service: str):
    import botocore.exceptions
    import botocore.session

    try:
        return botocore.session.get_session().get_service_model(service)
    except botocore.exceptions.UnknownServiceError:
        return None


_API_CONTROL_INPUTS = frozenset({"Service", "Api", "PropertySelector", "DesiredValues"})


def _check_api(step: Step, inputs: dict[str, Any], problem) -> None:
    """Service and Api must exist in botocore's models, and every other input must be an API parameter."""
    service, api = inputs.get("Service"), inputs.get("Api")
    if not isinstance(service, str) or not isinstance(api, str):
        return
    model = service_model(service)
    if model is None:
        problem(step.name, f"Service {service!r} is not an AWS service name")
        return
    if api not in model.operation_names:
        problem(
            step.name,
            f"Api {api!r} is not an operation of {service} (use the API name, e.g. DescribeInstances)",
        )
        return
    shape = model.operation_model(api).input_shape
    members = set(shape.members) if shape is not None else set()
    for key in sorted(set(inputs) - _API_CONTROL_INPUTS - members):
        problem(step.name, f"{service} {api} has no parameter {key!r}")


def _check_references(document: Document, parameters: dict[str, Any], problem) -> None:
    """Every {{ reference }} names a parameter, a system variable, or a declared output of another step."""
    outputs = {step.name: step.output_names for step in document.steps}
    known = set(parameters) | SYSTEM_VARIABLES

    def check(ref: str, step_name: str | None) -> None:
        if ref in known:
            return
        if "." in ref:
            owner, _, output = ref.partition(".")
            if owner in outputs and output in outputs[owner]:
                return
            if owner in outputs:
                problem(step_name, f"reference {{{{ {ref} }}}}: step {owner} declares no output {output!r}")
                return
        problem(step_name, f"reference {{{{ {ref} }}}} names no parameter, variable or step output")

    for ref in references(document.raw.get("assumeRole")):
        check(ref, None)
    for step in document.steps:
        # A Script's {{ ... }} is never resolved (reported by _check_step), so it names nothing here.
        inputs = {
            key: value
            for key, value in step.inputs.items()
            if not (step.action == "aws:executeScript" and key == "Script")
        }
        for ref in references(inputs):
            check(ref, step.name)
    doc_outputs = document.raw.get("outputs")
    if doc_outputs is not None:
        if not isinstance(doc_outputs, list):
            problem(None, "outputs must be a list of 'Step.Output'")
        else:
            for ref in doc_outputs:
                check(str(ref), None)


def load(path: str | Path) -> Document:
    """A document that passes the basic schema, or DocumentError listing every problem."""
    path = Path(path)
    document, problems = parse(path)
    if problems:
        raise DocumentError("; ".join(str(p) for p in problems))
    assert document is not None
    return document
