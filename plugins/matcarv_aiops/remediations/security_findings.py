"""Security Hub findings in the AWS Security Finding Format (ASFF), written by remediations that record
what they found (sg_open_ssh, config_rule_noncompliant).

Finding ids are stable (derived from what was found, not from the run), so importing again updates the
same finding instead of adding a duplicate: BatchImportFindings is an upsert by (ProductArn, Id).

The findings that started a run (Security Hub as a source) have their workflow status set by the run:
RESOLVED after a validated fix, NOTIFIED while a human must decide or after a failure
(``update_workflow``).
"""

from __future__ import annotations

from dataclasses import dataclass
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


# --- findings that started a run: their workflow status follows the run ------------------------------
WORKFLOW_RESOLVED = "RESOLVED"  # the problem was fixed and the fix validated
WORKFLOW_NOTIFIED = "NOTIFIED"  # a human was told: the run waits for approval, or failed
_NOTE_LIMIT = 512  # BatchUpdateFindings: Note.Text and Note.UpdatedBy are at most 512 characters
UPDATED_BY = "matcarv-aiops"


class FindingUpdateError(RuntimeError):
    """Security Hub did not update a finding's workflow; the message carries its reasons."""


@dataclass(frozen=True)
class FindingRef:
    """One Security Hub finding as BatchUpdateFindings names it, and where it lives."""

    id: str
    product_arn: str
    region: str

    def identifier(self) -> dict[str, str]:
        return {"Id": self.id, "ProductArn": self.product_arn}


def findings_of(event: dict[str, Any]) -> list[FindingRef]:
    """The Security Hub findings an event delivered (``Security Hub Findings - Imported``), else []."""
    from matcarv_aiops.ingress.routing import FINDINGS_IMPORTED, SECURITYHUB_SOURCE

    if event.get("source") != SECURITYHUB_SOURCE or event.get("detail-type") != FINDINGS_IMPORTED:
        return []
    found = []
    for finding in (event.get("detail") or {}).get("findings") or []:
        if isinstance(finding, dict) and finding.get("Id") and finding.get("ProductArn"):
            region = finding.get("Region") or finding["ProductArn"].split(":")[3] or event.get("region", "")
            found.append(FindingRef(finding["Id"], finding["ProductArn"], region))
    return found


def update_workflow(securityhub, findings: list[FindingRef], status: str, note: str) -> None:
    """Set the findings' workflow status with a note (BatchUpdateFindings). Raises FindingUpdateError
    naming each finding Security Hub did not process."""
    response = securityhub.batch_update_findings(
        FindingIdentifiers=[f.identifier() for f in findings],
        Workflow={"Status": status},
        Note={"Text": note[:_NOTE_LIMIT], "UpdatedBy": UPDATED_BY},
    )
    unprocessed = response.get("UnprocessedFindings") or []
    if unprocessed:
        reasons = "; ".join(
            f"{u.get('FindingIdentifier', {}).get('Id')}: {u.get('ErrorCode')} {u.get('ErrorMessage')}"
            for u in unprocessed
        )
        raise FindingUpdateError(
            f"Security Hub did not set {len(unprocessed)} finding(s) to {status}: {reasons}"
        )
