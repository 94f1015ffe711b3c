"""Security Hub findings in the AWS Security Finding Format (ASFF), written by remediations that record
what they found (sg_open_ssh, config_rule_noncompliant).

Finding ids are stable (derived from what was found, not from the run), so importing again updates the
same finding instead of adding a duplicate: BatchImportFindings is an upsert by (ProductArn, Id).
"""

from __future__ import annotations

from typing import Any

from matcarv_aiops.models import iso_utc

SCHEMA_VERSION = "2018-10-08"
GENERATOR_PREFIX = "matcarv-aiops/"
BATCH_LIMIT = 100  # BatchImportFindings takes at most 100 findings per call


class FindingImportError(RuntimeError):
    """Security Hub rejected a finding; the message carries its reasons."""


def asff_resource_type(config_type: str) -> str:
    """AWS Config's resource type in ASFF's spelling: AWS::EC2::SecurityGroup -> AwsEc2SecurityGroup."""
    parts = [p for p in config_type.split("::") if p]
    if not parts or parts[0] != "AWS":
        return "Other"
    return "Aws" + "".join(p[:1].upper() + p[1:].lower() if p.isupper() else p for p in parts[1:])


def asff_finding(
    *,
    finding_id: str,
    account: str,
    region: str,
    generator: str,
    finding_type: str,
    title: str,
    description: str,
    severity: str,
    resources: list[dict[str, Any]],
    compliance: str | None = None,
    product_fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One finding with ASFF's required attributes, for the account's own default product."""
    now = iso_utc()
    finding: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id,
        "ProductArn": f"arn:aws:securityhub:{region}:{account}:product/{account}/default",
        "GeneratorId": GENERATOR_PREFIX + generator,
        "AwsAccountId": account,
        "Types": [finding_type],
        "CreatedAt": now,
        "UpdatedAt": now,
        "Severity": {"Label": severity},
        "Title": title[:256],
        "Description": description[:1024],
        "Resources": resources,
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    }
    if compliance:
        finding["Compliance"] = {"Status": compliance}
    if product_fields:
        finding["ProductFields"] = product_fields
    return finding


def import_findings(securityhub, findings: list[dict[str, Any]]) -> list[str]:
    """Import (upsert) the findings; returns their ids. Raises when Security Hub rejects any."""
    for start in range(0, len(findings), BATCH_LIMIT):
        response = securityhub.batch_import_findings(Findings=findings[start : start + BATCH_LIMIT])
        if response.get("FailedCount"):
            reasons = "; ".join(
                f"{f.get('Id')}: {f.get('ErrorCode')} {f.get('ErrorMessage')}"
                for f in response.get("FailedFindings", [])
            )
            raise FindingImportError(f"Security Hub rejected {response['FailedCount']} finding(s): {reasons}")
    return [f["Id"] for f in findings]


def missing_findings(securityhub, finding_ids: list[str]) -> list[str]:
    """The ids that Security Hub does not hold as ACTIVE findings."""
    found: set[str] = set()
    for start in range(0, len(finding_ids), 20):  # GetFindings accepts at most 20 values per filter
        wanted = finding_ids[start : start + 20]
        paginator = securityhub.get_paginator("get_findings")
        for page in paginator.paginate(
            Filters={"Id": [{"Value": i, "Comparison": "EQUALS"} for i in wanted]}
        ):
            found.update(
                f["Id"]
                for f in page["Findings"]
                if f["Id"] in wanted and f.get("RecordState", "ACTIVE") == "ACTIVE"
            )
    return [i for i in finding_ids if i not in found]
