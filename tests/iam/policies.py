"""The generated policies as moto can enforce them, and the roles made from them in moto.

What moto 5.2 evaluates and how ``moto_view`` adapts a policy to it: ``aiops_local.moto_iam`` (the local
stack attaches the same view to its deployed roles).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import boto3

from aiops_local.moto_iam import (  # noqa: F401 (re-exported to the tests)
    OPERATIONS_OF,
    RESOURCE_CHECKED_BY_MOTO,
    SIGNATURE_UNVERIFIABLE,
    SIGNING_NAMES,
    moto_view,
)
from aiops_local.moto_iam import as_list as _as_list

ACCOUNT = "123456789012"
REGION = "us-east-1"


def document_of(statements: Iterable) -> dict:
    """A policy document from CDK ``PolicyStatement``s made with concrete region and account."""
    return {"Version": "2012-10-17", "Statement": [s.to_statement_json() for s in statements]}


def without_action(document: dict, action: str) -> dict:
    """``document`` less one action (a statement left with none is dropped)."""
    statements = []
    for statement in document["Statement"]:
        actions = [a for a in _as_list(statement["Action"]) if a != action]
        if actions:
            statements.append({**statement, "Action": actions})
    return {"Version": "2012-10-17", "Statement": statements}


def actions_of(document: dict) -> list[str]:
    return [a for s in document["Statement"] if s["Effect"] == "Allow" for a in _as_list(s["Action"])]


def put_role(name: str, document: dict, *, trusted_arn: str) -> str:
    """Create role ``name`` in moto with ``moto_view(document)`` as its one inline policy (none when every
    action was taken away), trusted by ``trusted_arn``; returns its ARN. Call with enforcement off."""
    iam = boto3.client("iam", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": trusted_arn}, "Action": "sts:AssumeRole"}],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if document["Statement"]:
        iam.put_role_policy(
            RoleName=name, PolicyName="Generated", PolicyDocument=json.dumps(moto_view(document))
        )
    return arn


# --- the execution role's policies, from the synthesized hub template --------------------------------
class _Unresolved(str):
    """An intrinsic the test cannot name: it matches no real resource."""


def _names(template: dict, settings_values: dict[str, Any]) -> dict[str, dict[str, str]]:
    """What Ref and GetAtt .Arn give for the resources the tests use: the tables, buckets and roles,
    named as moto holds them (the environment's ``aiops.<setting>`` options say which is which)."""
    names: dict[str, dict[str, str]] = {}
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role" and "RoleName" in props:
            names[logical_id] = {
                "Ref": props["RoleName"],
                "Arn": f"arn:aws:iam::{ACCOUNT}:role/{props['RoleName']}",
            }
    for resource in resources.values():
        if resource["Type"] != "AWS::MWAA::Environment":
            continue
        for key, value in resource["Properties"].get("AirflowConfigurationOptions", {}).items():
            setting = key.removeprefix("aiops.")
            if not (isinstance(value, dict) and "Ref" in value) or setting not in settings_values:
                continue
            logical_id, name = value["Ref"], settings_values[setting]
            kind = resources.get(logical_id, {}).get("Type")
            if kind == "AWS::DynamoDB::Table":
                names[logical_id] = {"Ref": name, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"}
            elif kind == "AWS::S3::Bucket":
                names[logical_id] = {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
    return names


def _resolve(value: Any, names: dict[str, dict[str, str]]) -> Any:
    pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_resolve(v, names) for v in value]
    if "Ref" in value:
        ref = value["Ref"]
        return pseudo.get(ref) or names.get(ref, {}).get("Ref") or _Unresolved(f"unresolved:{ref}")
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return names.get(logical_id, {}).get(attribute) or _Unresolved(f"unresolved:{logical_id}")
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_resolve(p, names)) for p in parts)
    return _Unresolved(f"unresolved:{json.dumps(value)}")


def execution_role(template: dict) -> tuple[str, dict]:
    """(logical id, resource) of the MWAA execution role."""
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role" and "airflow.amazonaws.com" in json.dumps(
            resource["Properties"]["AssumeRolePolicyDocument"]
        ):
            return logical_id, resource
    raise AssertionError("the hub template has no role MWAA assumes")


def role_document(template: dict, role_name: str, settings_values: dict[str, Any]) -> dict:
    """The inline policies of the role named ``role_name``, resolved as ``execution_role_document``."""
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role" and resource["Properties"].get("RoleName") == role_name:
            return _document_of_role(template, logical_id, resource, settings_values)
    raise AssertionError(f"the template has no role {role_name}")


def execution_role_document(template: dict, settings_values: dict[str, Any]) -> dict:
    """Every statement of the execution role's policies (inline, and the policies attached to it), with
    intrinsics resolved to the names moto holds (moto checks only S3 and STS resources: others may stay
    unresolved). Left out: S3 statements on the source bucket imported from AIOpsSource, and the Celery
    queue key's NotResource statement: MWAA's own part, which no platform code calls."""
    logical_id, role = execution_role(template)
    return _document_of_role(template, logical_id, role, settings_values)


def _document_of_role(template: dict, logical_id: str, role: dict, settings_values: dict[str, Any]) -> dict:
    documents = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    for resource in template["Resources"].values():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and {"Ref": logical_id} in (
            resource["Properties"].get("Roles") or []
        ):
            documents.append(resource["Properties"]["PolicyDocument"])
    names = _names(template, settings_values)
    statements = []
    for document in documents:
        for statement in document["Statement"]:
            resolved = _resolve_all(statement, names)
            services = {a.split(":")[0] for a in _as_list(resolved["Action"])}
            unresolved = "unresolved:" in json.dumps(resolved.get("Resource"))
            if "NotResource" in resolved or (unresolved and services & RESOURCE_CHECKED_BY_MOTO):
                continue
            statements.append(resolved)
    return {"Version": "2012-10-17", "Statement": statements}


def _resolve_all(value: Any, names: dict[str, dict[str, str]]) -> Any:
    if isinstance(value, dict) and not ({"Ref", "Fn::GetAtt", "Fn::Join", "Fn::ImportValue"} & value.keys()):
        return {k: _resolve_all(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_all(v, names) for v in value]
    return _resolve(value, names)
