"""With a concrete account and region (as `cdk deploy` synthesizes), interface endpoints go only into the
AZs that offer their service: CDK's context lookup, answered here from context as cdk.context.json would."""

from __future__ import annotations

import json
import os

from aiops_infra.network import INTERFACE_ENDPOINTS

ACCOUNT, REGION, AZS = "123456789012", "eu-west-1", ["eu-west-1a", "eu-west-1b"]


def test_endpoints_only_in_azs_that_offer_the_service(tmp_path, monkeypatch):
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("CDK_DEFAULT_REGION", REGION)
    context = {f"availability-zones:account={ACCOUNT}:region={REGION}": AZS, "productionAccountIds": ""}
    for name in INTERFACE_ENDPOINTS:
        offered = ["eu-west-1b"] if name == "airflow.ops" else AZS  # one service missing from eu-west-1a
        context[
            f"endpoint-service-availability-zones:account={ACCOUNT}:region={REGION}"
            f":serviceName=com.amazonaws.{REGION}.{name}"
        ] = offered
    from aiops_infra.app import build_app

    build_app(outdir=tmp_path / "out", context=context, build_dir=tmp_path / "lambda").synth()
    template = json.loads((tmp_path / "out" / "AIOps.template.json").read_text())
    subnets = {
        lid: r["Properties"]["AvailabilityZone"]
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::EC2::Subnet"
    }
    endpoints = {
        r["Properties"]["ServiceName"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    }
    assert len(endpoints) == len(INTERFACE_ENDPOINTS)
    for service, props in endpoints.items():
        zones = sorted(subnets[ref["Ref"]] for ref in props["SubnetIds"])
        assert zones == (["eu-west-1b"] if service.endswith(".airflow.ops") else AZS), (service, zones)
    assert os.environ["CDK_DEFAULT_ACCOUNT"] == ACCOUNT
