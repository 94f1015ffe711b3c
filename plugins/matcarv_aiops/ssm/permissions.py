"""The exact IAM actions a document needs, read from its steps, so the automation role is least-privilege
and generated from the documents (as the catalogue's permissions generate the remediation roles).

API steps give ``Service`` + ``Api``; ``aws:changeInstanceState`` gives DescribeInstances plus the state
change; ``aws:executeScript`` handlers are read with ``ast`` (``boto3.client("ec2")`` assigned to a name,
or called directly, then ``.describe_instances(...)``). A script that builds clients any other way is
reported, not guessed.
"""

from __future__ import annotations

import ast
from functools import lru_cache

from matcarv_aiops.ssm.document import Document, Step, service_model

_STATE_CHANGES = {"running": "StartInstances", "stopped": "StopInstances", "terminated": "TerminateInstances"}
# IAM prefixes that differ from the service's signing name.
_IAM_PREFIX = {"monitoring": "cloudwatch"}


class UnreadableCallError(ValueError):
    """A step whose AWS calls cannot be read statically."""


@lru_cache(maxsize=64)
def _operations(service: str) -> dict[str, str]:
    """boto3 method name -> API operation name."""
    from botocore import xform_name

    model = service_model(service)
    if model is None:
        raise UnreadableCallError(f"{service!r} is not an AWS service name")
    return {xform_name(name): name for name in model.operation_names}


def iam_action(service: str, api: str) -> str:
    model = service_model(service)
    if model is None:
        raise UnreadableCallError(f"{service!r} is not an AWS service name")
    prefix = model.signing_name or model.endpoint_prefix
    return f"{_IAM_PREFIX.get(prefix, prefix)}:{api}"


def _script_calls(step: Step) -> list[tuple[str, str]]:
    """(service, API) for every client call in an executeScript's Python."""
    tree = ast.parse(str(step.inputs.get("Script", "")))

    def client_service(node: ast.AST) -> str | None:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "client"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "boto3"
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                return node.args[0].value
            raise UnreadableCallError(
                f"step {step.name}: boto3.client() with a service name that is not a literal"
            )
        return None

    clients: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and (service := client_service(node.value)):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    clients[target.id] = service
    calls: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        service = clients.get(owner.id) if isinstance(owner, ast.Name) else client_service(owner)
        if service is None:
            continue
        method = node.func.attr
        if method in ("get_paginator", "get_waiter", "can_paginate") or method.startswith("_"):
            continue
        operations = _operations(service)
        if method not in operations:
            if method == "exceptions":
                continue
            raise UnreadableCallError(f"step {step.name}: {service} client has no method {method}()")
        calls.append((service, operations[method]))
    return calls


def step_permissions(step: Step) -> set[str]:
    inputs = step.inputs
    if step.action in (
        "aws:executeAwsApi",
        "aws:waitForAwsResourceProperty",
        "aws:assertAwsResourceProperty",
    ):
        service, api = str(inputs["Service"]), str(inputs["Api"])
        actions = {iam_action(service, api)}
        if service == "ec2" and "TagSpecifications" in inputs:
            actions.add("ec2:CreateTags")  # tagging on create is authorised as CreateTags
        return actions
    if step.action == "aws:changeInstanceState":
        actions = {"ec2:DescribeInstances"}
        if inputs.get("CheckStateOnly") is not True:
            actions.add(f"ec2:{_STATE_CHANGES[inputs['DesiredState']]}")
        return actions
    if step.action == "aws:executeScript":
        return {iam_action(service, api) for service, api in _script_calls(step)}
    return set()


def document_permissions(document: Document) -> list[str]:
    """Every IAM action the document's steps call, sorted."""
    actions: set[str] = set()
    for step in document.steps:
        actions |= step_permissions(step)
    return sorted(actions)
