"""The runbook checker: the basic schema plus the six runbook authoring rules below, on every document.

1. The first step is ``CollectDiagnostics`` and writes state to S3 (the ``DiagnosticsBucket`` parameter).
2. An ``EligibilityCheck`` step, before any destructive step, has a graceful way out: an ``aws:branch``
   whose Default (or fall-through) path, or a non-critical step whose ``onFailure: step:X`` path, reaches
   the end of the execution without running a destructive step.
3. Destructive steps set ``onFailure: Abort`` and ``onCancel: Abort`` explicitly.
4. The last step is ``ValidateRemediation``, and it changes nothing.
5. A step after the last destructive one emits ``RemediationExecuted`` in namespace ``AIOps/Automation``.
6. Every step sets ``maxAttempts: 3`` and ``timeoutSeconds: 300``.

"Destructive" means the step can change a resource: every state-changing action
(``aws:changeInstanceState`` unless it only checks, ``aws:createImage``, ``aws:runCommand``...),
``aws:executeAwsApi`` with an API that is not a read (Describe*, Get*, List*...), and ``aws:executeScript``
whose Python calls such an API. Writes to AIOps' own records (diagnostics object, metric, alert) are not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

from matcarv_aiops import METRIC_NAME, METRIC_NAMESPACE
from matcarv_aiops.ssm.document import Document, Problem, Step, parse, step_target
from matcarv_aiops.ssm.permissions import UnreadableCallError, step_permissions

FIRST_STEP = "CollectDiagnostics"
ELIGIBILITY_STEP = "EligibilityCheck"
LAST_STEP = "ValidateRemediation"
REQUIRED_MAX_ATTEMPTS = 3
REQUIRED_TIMEOUT_SECONDS = 300
DIAGNOSTICS_PARAMETER = "DiagnosticsBucket"

_MUTATING_ACTIONS = frozenset(
    {
        "aws:copyImage",
        "aws:createImage",
        "aws:createStack",
        "aws:createTags",
        "aws:deleteImage",
        "aws:deleteStack",
        "aws:executeAutomation",
        "aws:executeStateMachine",
        "aws:invokeLambdaFunction",
        "aws:invokeWebhook",
        "aws:runCommand",
        "aws:runInstances",
    }
)
_READ_PREFIXES = (
    "Describe",
    "Get",
    "List",
    "Search",
    "Lookup",
    "BatchGet",
    "Head",
    "Select",
    "Scan",
    "Query",
)
# AIOps' own records, not the target: the diagnostics object, the metric, the alert.
_RECORD_APIS = frozenset({("s3", "PutObject"), ("cloudwatch", "PutMetricData"), ("sns", "Publish")})
_RECORD_METHODS = frozenset({"put_object", "put_metric_data", "publish"})
_MUTATING_METHOD = re.compile(
    r"^(start|stop|reboot|terminate|create|delete|update|modify|put|attach|detach|revoke|authorize|disable|"
    r"enable|associate|disassociate|run|send|restore|reset|tag|untag|register|deregister|set|replace|copy|"
    r"import|invoke|execute|promote|failover|remove|add|cancel|activate|deactivate|apply|release|allocate|"
    r"purge|scale|force|rotate|upload|write)_[a-z0-9_]+$|^invoke$"
)


def _script_calls(step: Step) -> list[str]:
    """Method names called in an executeScript's Python (``client.stop_instances(...)`` -> stop_instances)."""
    try:
        tree = ast.parse(str(step.inputs.get("Script", "")))
    except SyntaxError:
        return []
    return [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]


def _script_strings(step: Step) -> set[str]:
    try:
        tree = ast.parse(str(step.inputs.get("Script", "")))
    except SyntaxError:
        return set()
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def is_destructive(step: Step) -> bool:
    """Whether the step can change a resource (see the module docstring)."""
    if step.action in _MUTATING_ACTIONS:
        return True
    if step.action == "aws:changeInstanceState":
        return step.inputs.get("CheckStateOnly") is not True
    if step.action == "aws:executeAwsApi":
        service, api = str(step.inputs.get("Service", "")), str(step.inputs.get("Api", ""))
        return not api.startswith(_READ_PREFIXES) and (service, api) not in _RECORD_APIS
    if step.action == "aws:executeScript":
        return any(
            _MUTATING_METHOD.match(name) and name not in _RECORD_METHODS for name in _script_calls(step)
        )
    return False


def emits_remediation_metric(step: Step) -> bool:
    inputs = step.inputs
    if step.action == "aws:executeAwsApi":
        if (inputs.get("Service"), inputs.get("Api")) != ("cloudwatch", "PutMetricData"):
            return False
        data = inputs.get("MetricData")
        return (
            inputs.get("Namespace") == METRIC_NAMESPACE
            and isinstance(data, list)
            and any(isinstance(item, dict) and item.get("MetricName") == METRIC_NAME for item in data)
        )
    if step.action == "aws:executeScript":
        return "put_metric_data" in _script_calls(step) and {
            METRIC_NAME,
            METRIC_NAMESPACE,
        } <= _script_strings(step)
    return False


def _writes_diagnostics(document: Document, step: Step) -> bool:
    bucket_ref = re.compile(r"{{\s*" + DIAGNOSTICS_PARAMETER + r"\s*}}")
    inputs = step.inputs
    if step.action == "aws:executeAwsApi":
        return (inputs.get("Service"), inputs.get("Api")) == ("s3", "PutObject") and bool(
            bucket_ref.search(str(inputs.get("Bucket", "")))
        )
    if step.action == "aws:executeScript":
        payload = inputs.get("InputPayload")
        return "put_object" in _script_calls(step) and bool(bucket_ref.search(str(payload)))
    return False


def _walk_path(document: Document, start: str | None, *, after: Step | None) -> tuple[list[Step], bool]:
    """Follow the success path from ``start`` (or the step after ``after`` when start is None).

    Returns the steps passed through and whether the path ends (isEnd, or past the last step) without a loop.
    Branch steps on the path are followed by their Default / fall-through: the ineligible route.
    """
    current = document.step(start) if start else (document.following(after) if after else None)
    visited: list[Step] = []
    while current is not None:
        if current in visited:
            return visited, False
        visited.append(current)
        if current.is_end:
            return visited, True
        if current.action == "aws:branch" and "Default" in current.inputs:
            current = document.step(current.inputs["Default"])
        elif current.next_step:
            current = document.step(current.next_step)
        else:
            current = document.following(current)
    return visited, True


def check_document(path: str | Path, text: str | None = None) -> list[Problem]:
    """Every problem with one document: schema first; the rules only when the schema holds."""
    path = Path(path)
    document, problems = parse(path, text)
    if problems or document is None:
        return problems
    label = str(path)
    steps = document.steps

    def problem(rule: str, step: str | None, message: str) -> None:
        problems.append(Problem(label, step, rule, message))

    destructive = [step for step in steps if is_destructive(step)]
    # The automation role is generated from the documents: every AWS call must be readable.
    for step in steps:
        try:
            step_permissions(step)
        except UnreadableCallError as exc:
            problem("schema", step.name, f"cannot tell which AWS APIs this step calls: {exc}")

    # Rule 1
    first = steps[0]
    if first.name != FIRST_STEP:
        problem("rule-1", first.name, f"the first step must be named {FIRST_STEP}")
    elif DIAGNOSTICS_PARAMETER not in document.parameters:
        problem(
            "rule-1", first.name, f"the document needs a {DIAGNOSTICS_PARAMETER} parameter for the S3 write"
        )
    elif not _writes_diagnostics(document, first):
        problem(
            "rule-1",
            first.name,
            f"must write state to S3: aws:executeAwsApi s3 PutObject into "
            f"{{{{ {DIAGNOSTICS_PARAMETER} }}}}, or aws:executeScript calling put_object "
            f"with {{{{ {DIAGNOSTICS_PARAMETER} }}}} in its InputPayload",
        )
    elif is_destructive(first):
        problem("rule-1", first.name, "diagnostics must not change the resource")

    # Rule 2
    eligibility = next((step for step in steps if step.name == ELIGIBILITY_STEP), None)
    if eligibility is None:
        problem("rule-2", None, f"no step named {ELIGIBILITY_STEP}")
    else:
        early = [step.name for step in destructive if step.index < eligibility.index]
        if early:
            problem(
                "rule-2",
                eligibility.name,
                f"must come before every destructive step; {', '.join(early)} run first",
            )
        if eligibility.action == "aws:branch":
            exit_path, ends = _walk_path(document, eligibility.inputs.get("Default"), after=eligibility)
            how = "its Default (or fall-through) path"
        elif step_target(eligibility.on_failure):
            if eligibility.is_critical:
                problem(
                    "rule-2",
                    eligibility.name,
                    "onFailure: step:<name> needs isCritical: false, or an "
                    "ineligible target would fail the execution",
                )
            exit_path, ends = _walk_path(document, step_target(eligibility.on_failure), after=None)
            how = "its onFailure path"
        else:
            exit_path, ends = [], False
            problem(
                "rule-2",
                eligibility.name,
                "must be an aws:branch with an ineligible path, or a step with "
                "onFailure: step:<name> and isCritical: false",
            )
            how = ""
        if how:
            hit = [step.name for step in exit_path if is_destructive(step)]
            if hit:
                problem("rule-2", eligibility.name, f"{how} runs destructive step(s) {', '.join(hit)}")
            elif not ends:
                problem("rule-2", eligibility.name, f"{how} loops instead of ending the execution")
            elif any(step.name == LAST_STEP for step in exit_path):
                problem(
                    "rule-2",
                    eligibility.name,
                    f"{how} must end the execution (isEnd: true) before {LAST_STEP}",
                )

    # Rule 3
    for step in destructive:
        for key in ("onFailure", "onCancel"):
            if step.raw.get(key) != "Abort":
                problem(
                    "rule-3",
                    step.name,
                    f"destructive step must set {key}: Abort, got {step.raw.get(key, '(unset)')!r}",
                )

    # Rule 4
    last = steps[-1]
    if last.name != LAST_STEP:
        problem("rule-4", last.name, f"the last step must be named {LAST_STEP}")
    elif is_destructive(last):
        problem("rule-4", last.name, "validation must not change the resource")

    # Rule 5
    emitters = [step for step in steps if emits_remediation_metric(step)]
    if not emitters:
        problem(
            "rule-5",
            None,
            f"no step emits {METRIC_NAME} in namespace {METRIC_NAMESPACE} (cloudwatch PutMetricData)",
        )
    elif destructive and all(step.index < destructive[-1].index for step in emitters):
        problem(
            "rule-5",
            emitters[-1].name,
            f"emits {METRIC_NAME} before the last destructive step {destructive[-1].name} has run",
        )

    # Rule 6
    for step in steps:
        for key, wanted in (
            ("maxAttempts", REQUIRED_MAX_ATTEMPTS),
            ("timeoutSeconds", REQUIRED_TIMEOUT_SECONDS),
        ):
            if step.raw.get(key) != wanted:
                problem("rule-6", step.name, f"{key} must be {wanted}, got {step.raw.get(key, '(unset)')!r}")
    return problems


def check_files(paths: Iterable[str | Path]) -> list[Problem]:
    problems: list[Problem] = []
    for path in paths:
        problems.extend(check_document(path))
    return problems
