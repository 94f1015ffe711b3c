"""Confused-deputy guard: every role an AWS service assumes names the account and the source resource the
service may act for, where that service documents the keys (``aiops_infra.trust``)."""

from __future__ import annotations

import json

import pytest

from aiops_infra.trust import NO_SOURCE_KEYS, SOURCE_ARN_SERVICES, service_principal


def _service_trusts(synth):
    for stack in synth.templates:
        for logical_id, role in synth.resources(stack, "AWS::IAM::Role").items():
            for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
                services = statement["Principal"].get("Service", [])
                for service in [services] if isinstance(services, str) else services:
                    yield stack, logical_id, service, statement.get("Condition", {})


def test_every_service_trust_carries_source_account_and_arn(any_synth):
    for stack, logical_id, service, condition in _service_trusts(any_synth):
        where = f"{stack}/{logical_id} trusts {service}"
        assert service in SOURCE_ARN_SERVICES or service in NO_SOURCE_KEYS, f"{where}: unclassified service"
        if service in NO_SOURCE_KEYS:
            continue
        own = any_synth.own_account(stack)
        assert condition.get("StringEquals", {}).get("aws:SourceAccount") == own, where
        source_arn = json.dumps(condition.get("ArnLike", {}).get("aws:SourceArn"))
        service_arn = f'"arn:aws:{SOURCE_ARN_SERVICES[service]}:"'
        assert service_arn in source_arn, f"{where}: source ARN {source_arn}"
        in_own_account = json.dumps(own) if isinstance(own, dict) else f":{own}:"
        assert in_own_account in source_arn, f"{where}: source ARN not in this account"


def test_the_default_app_has_a_role_for_every_guarded_service(synth):
    # MWAA, flow logs (the app's own VPC), EventBridge, SSM: the test above checked each of them.
    assert set(SOURCE_ARN_SERVICES) <= {service for _, _, service, _ in _service_trusts(synth)}


def test_mwaa_execution_role_trusts_only_its_own_environment(synth):
    (role,) = [
        role
        for logical_id, role in synth.resources("AIOps", "AWS::IAM::Role").items()
        if logical_id.startswith("MwaaExecutionRole")
    ]
    for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
        arn = json.dumps(statement["Condition"]["ArnLike"]["aws:SourceArn"])
        assert arn.endswith(':environment/matcarv-aiops"]]}'), arn


def test_service_principal_refuses_a_service_without_source_keys():
    with pytest.raises(ValueError, match="lambda.amazonaws.com documents no aws:SourceArn"):
        service_principal("lambda.amazonaws.com", account="111111111111", source_arn="arn:aws:lambda:*")
