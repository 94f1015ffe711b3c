"""What MWAA receives, checked against botocore's own model of the MWAA API: the environment's properties
in every synthesized template, as CreateEnvironment and UpdateEnvironment would get them from
CloudFormation (its property names are the API's), through botocore's ``ParamValidator`` (types, required
members, minimum lengths and values) and the model's patterns, maximum lengths and enums, which
``ParamValidator`` leaves to the service."""

from __future__ import annotations

import copy
import re
from typing import Any

import botocore.session
import pytest
import regex
from botocore.model import Shape
from botocore.validate import ParamValidator

from aiops_infra.config import ConfigError, DeploymentConfig, check_airflow_options

OPERATIONS = ("CreateEnvironment", "UpdateEnvironment")
# What CloudFormation sends for a property it resolves at deploy time: a value of the kind it resolves to.
RESOLVED = {
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/AIOpsMwaaExecutionRole",
    "SourceBucketArn": "arn:aws:s3:::aiopssource-sourcebucket1a2b3c4d-abcdefgh1234",
    "SecurityGroupIds": "sg-0123456789abcdef0",
    "SubnetIds": "subnet-0123456789abcdef0",
    "AirflowConfigurationOptions": "AIOpsApprovals-resolved-at-deploy-time",
    # HeadObject's VersionId of each upload (S3's documented example of a version id).
    **dict.fromkeys(
        ("PluginsS3ObjectVersion", "RequirementsS3ObjectVersion", "StartupScriptS3ObjectVersion"),
        "3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo",
    ),
}
# CloudFormation property -> API member, where they differ (none do for AWS::MWAA::Environment today).
CFN_TO_API: dict[str, str] = {}
# What UpdateEnvironment cannot change (create-only in CloudFormation: a change replaces the environment).
CREATE_ONLY = {"NetworkConfiguration": ("SubnetIds",)}


def _model():
    return botocore.session.get_session().get_service_model("mwaa")


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::"))


def _resolve(value: Any, where: str) -> Any:
    if _is_intrinsic(value):
        return RESOLVED[where]
    if isinstance(value, dict):
        return {
            key: _resolve(item, key if where != "AirflowConfigurationOptions" else where)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_resolve(item, where) for item in value]
    return value


def api_input(properties: dict[str, Any], operation: str) -> dict[str, Any]:
    """The request CloudFormation makes from the resource's properties."""
    members = _model().operation_model(operation).input_shape.members
    params = {CFN_TO_API.get(key, key): _resolve(value, key) for key, value in properties.items()}
    unknown = set(params) - set(_model().operation_model("CreateEnvironment").input_shape.members)
    assert not unknown, f"properties CreateEnvironment does not know: {sorted(unknown)}"
    # UpdateEnvironment carries no tags or key: CloudFormation tags with TagResource; the key is immutable.
    params = {key: value for key, value in params.items() if key in members}
    if operation == "UpdateEnvironment":
        for key, nested in CREATE_ONLY.items():
            if key in params:
                params[key] = {k: v for k, v in params[key].items() if k not in nested}
    return params


def model_errors(params: dict[str, Any], operation: str) -> list[str]:
    """botocore's validation plus the constraints it leaves to the service (pattern, max, enum)."""
    shape = _model().operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    errors = [line for line in report.generate_report().splitlines() if line.strip()]
    _constraints(params, shape, shape.name, errors)
    return errors


def _constraints(value: Any, shape: Shape, path: str, errors: list[str]) -> None:
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                _constraints(item, shape.members[key], f"{path}.{key}", errors)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            _constraints(item, shape.member, f"{path}[{index}]", errors)
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            _constraints(key, shape.key, f"{path} key {key!r}", errors)
            _constraints(item, shape.value, f"{path}.{key}", errors)
    elif shape.type_name == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: {len(value)} characters, max {meta['max']}")
        if "pattern" in meta and not regex.fullmatch(meta["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} not in {shape.enum}")
    elif shape.type_name == "integer" and isinstance(value, int) and "max" in meta and value > meta["max"]:
        errors.append(f"{path}: {value} over max {meta['max']}")


def _environment(synth) -> dict[str, Any]:
    [environment] = synth.resources("AIOps", "AWS::MWAA::Environment").values()
    return environment["Properties"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_environment_passes_mwaas_api_model(any_synth, operation):
    params = api_input(_environment(any_synth), operation)
    assert {"Name", "ExecutionRoleArn", "AirflowConfigurationOptions", "NetworkConfiguration"} <= set(params)
    assert model_errors(params, operation) == []


def test_every_configuration_option_has_a_value(any_synth):
    options = _environment(any_synth)["AirflowConfigurationOptions"]
    assert options and all(value != "" for value in options.values())
    # Settings with no value (no production accounts given) are left out: the core takes its default.
    assert "aiops.production_accounts" not in _environment(any_synth)["AirflowConfigurationOptions"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_validator_catches_what_mwaa_refuses(synth, operation):
    """The check can fail: an empty option value (what the stack used to send), a key MWAA's pattern
    refuses, an unknown access mode."""
    properties = copy.deepcopy(_environment(synth))
    properties["AirflowConfigurationOptions"]["aiops.production_accounts"] = ""
    properties["AirflowConfigurationOptions"]["AIOPS.Upper"] = "x"
    properties["WebserverAccessMode"] = "OPEN"
    errors = model_errors(api_input(properties, operation), operation)
    assert any(
        "AirflowConfigurationOptions.aiops.production_accounts" in e and "min length: 1" in e for e in errors
    ), errors
    assert any("'AIOPS.Upper'" in e for e in errors), errors
    assert any("WebserverAccessMode" in e for e in errors), errors


@pytest.mark.parametrize(
    "options, named",
    [
        ({"aiops.production_accounts": ""}, "aiops.production_accounts"),
        ({"Core.parallelism": "8"}, "Core.parallelism"),
        ({"parallelism": "8"}, "parallelism"),
        ({"core.parallelism": "8\n"}, "core.parallelism"),
        ({"core.x": "é"}, "core.x"),
        ({"core." + "k" * 70: "1"}, "core.kkk"),
    ],
)
def test_option_checks_name_the_option(options, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        check_airflow_options(options)


def test_context_options_are_checked_and_empty_ones_left_out():
    with pytest.raises(ConfigError, match="airflowConfigurationOptions.*'Core.parallelism'"):
        DeploymentConfig.from_mapping({"airflowConfigurationOptions": {"Core.parallelism": "8"}})
    config = DeploymentConfig.from_mapping(
        {"airflowConfigurationOptions": {"core.parallelism": "", "scheduler.foo_bar": "2"}}
    )
    from aiops_infra.mwaa import airflow_options

    options = airflow_options(config, {"production_accounts": "", "audit_table": "AuditX"})
    assert "core.parallelism" not in options and "aiops.production_accounts" not in options
    assert options["scheduler.foo_bar"] == "2" and options["aiops.audit_table"] == "AuditX"


def test_the_approver_group_reaches_the_dags_as_aiops_settings():
    from aiops_infra.mwaa import airflow_options

    config = DeploymentConfig.from_mapping(
        {
            "approvers": "assumed-role/AIOpsApprover/alice, assumed-role/AIOpsApprover/bob",
            "approverRole": "AIOpsApprover",
            "productionApprovals": "2",
            "serviceUsers": "assumed-role/AIOpsTrigger/matcarv-aiops-trigger",
        }
    )
    options = airflow_options(config, {})
    assert options["aiops.approvers"] == "assumed-role/AIOpsApprover/alice,assumed-role/AIOpsApprover/bob"
    assert options["aiops.approver_role"] == "AIOpsApprover"
    assert options["aiops.production_approvals"] == "2"
    assert options["aiops.service_users"] == "assumed-role/AIOpsTrigger/matcarv-aiops-trigger"
    # Nobody configured: the setting is left out, so the DAGs refuse every decision (empty group).
    assert "aiops.approvers" not in airflow_options(DeploymentConfig.from_mapping({}), {})
