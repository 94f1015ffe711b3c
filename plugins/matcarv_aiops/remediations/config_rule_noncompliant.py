"""Record an AWS Config rule's NON_COMPLIANT resources as Security Hub findings (ASFF) and alert."""

from __future__ import annotations

from matcarv_aiops.notifications import Kind
from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list, unrecorded
from matcarv_aiops.remediations.security_findings import (
    asff_finding,
    asff_resource_type,
    import_findings,
    missing_findings,
)

FINDING_TYPE = "Software and Configuration Checks/AWS Config Analysis"


@register
class ConfigRuleNoncompliant(Remediation):
    remediation_id = "config_rule_noncompliant"

    def _rule(self, ctx) -> dict | None:
        config = ctx.client("config")
        token = None
        while True:  # DescribeConfigRules has no filter by ARN
            page = config.describe_config_rules(**({"NextToken": token} if token else {}))
            for rule in page["ConfigRules"]:
                if rule["ConfigRuleArn"] == ctx.target.arn:
                    return rule
            token = page.get("NextToken")
            if not token:
                return None

    def _noncompliant(self, ctx, rule_name: str, limit: int) -> tuple[list[dict], bool]:
        """(results, truncated): NON_COMPLIANT resources of the rule now, at most ``limit``."""
        config, results, token = ctx.client("config"), [], None
        while True:
            kwargs = {"ConfigRuleName": rule_name, "ComplianceTypes": ["NON_COMPLIANT"], "Limit": 100}
            if token:
                kwargs["NextToken"] = token
            page = config.get_compliance_details_by_config_rule(**kwargs)
            for result in page["EvaluationResults"]:
                qualifier = result["EvaluationResultIdentifier"]["EvaluationResultQualifier"]
                results.append(
                    {
                        "resource_type": qualifier["ResourceType"],
                        "resource_id": qualifier["ResourceId"],
                        "annotation": result.get("Annotation", ""),
                        "recorded": str(result.get("ResultRecordedTime", "")),
                    }
                )
            token = page.get("NextToken")
            if len(results) >= limit or not token:
                return results[:limit], bool(token) or len(results) > limit

    def collect_diagnostics(self, ctx):
        rule = self._rule(ctx)
        if rule is None:
            return None
        tags = ctx.client("config").list_tags_for_resource(ResourceArn=rule["ConfigRuleArn"])["Tags"]
        noncompliant, truncated = self._noncompliant(
            ctx, rule["ConfigRuleName"], int(ctx.threshold("max_findings_per_run"))
        )
        return {
            "rule_name": rule["ConfigRuleName"],
            "rule_arn": rule["ConfigRuleArn"],
            "rule_state": rule.get("ConfigRuleState"),
            "source": rule.get("Source", {}).get("SourceIdentifier"),
            "noncompliant": noncompliant,
            "truncated": truncated,
            "tags": tags_from_list(tags),
        }

    def check_eligibility(self, ctx, state):
        if state["rule_state"] == "DELETING":
            return f"rule {state['rule_name']} is being deleted"
        if not state["noncompliant"]:
            return f"already fixed: rule {state['rule_name']} reports no NON_COMPLIANT resource now"
        return None

    def plan(self, ctx, state):
        more = " (first of more)" if state["truncated"] else ""
        return (
            f"record {len(state['noncompliant'])}{more} NON_COMPLIANT resource(s) of Config rule "
            f"{state['rule_name']} as Security Hub findings and alert"
        )

    def _finding(self, ctx, state, result: dict) -> dict:
        finding_id = (
            f"matcarv-aiops/config/{ctx.target.account}/{ctx.target.region}/{state['rule_name']}/"
            f"{result['resource_type']}/{result['resource_id']}"
        )
        description = (
            f"AWS Config rule {state['rule_name']} evaluated {result['resource_type']} "
            f"{result['resource_id']} as NON_COMPLIANT at {result['recorded']}."
        )
        if result["annotation"]:
            description += f" {result['annotation']}"
        return asff_finding(
            finding_id=finding_id,
            account=ctx.target.account,
            region=ctx.target.region,
            generator=f"config/{state['rule_name']}",
            finding_type=FINDING_TYPE,
            severity="MEDIUM",
            compliance="FAILED",
            title=f"{state['rule_name']}: {result['resource_id']} is NON_COMPLIANT",
            description=description,
            resources=[
                {
                    "Type": asff_resource_type(result["resource_type"]),
                    "Id": result["resource_id"],
                    "Partition": "aws",
                    "Region": ctx.target.region,
                }
            ],
            product_fields={
                "aiops/executionId": ctx.execution_id,
                "aws/config/ConfigRuleArn": state["rule_arn"],
                "aws/config/ConfigResourceType": result["resource_type"],
            },
        )

    def execute(self, ctx, state):
        findings = [self._finding(ctx, state, result) for result in state["noncompliant"]]
        finding_ids = import_findings(ctx.client("securityhub"), findings)
        resources = ", ".join(f"{r['resource_type']} {r['resource_id']}" for r in state["noncompliant"][:10])
        ctx.notify(
            Kind.FAILURE,
            f"AIOps: Config rule {state['rule_name']} NON_COMPLIANT",
            {
                "rule": state["rule_arn"],
                "account": ctx.target.account,
                "region": ctx.target.region,
                "noncompliant": len(state["noncompliant"]),
                "resources": resources,
                "truncated": state["truncated"],
                "securityHubFindings": len(finding_ids),
                "executionId": ctx.execution_id,
            },
        )
        return {"finding_ids": finding_ids}

    def validate(self, ctx, state, result):
        if result is None:
            return unrecorded("the Security Hub findings it imported")
        missing = missing_findings(ctx.client("securityhub"), result["finding_ids"])
        if missing:
            return Validation(
                False, f"{len(missing)} finding(s) not in Security Hub: {', '.join(missing[:5])}"
            )
        return Validation(
            True,
            f"{len(result['finding_ids'])} Security Hub finding(s) recorded for rule "
            f"{state['rule_name']}; alert sent",
        )
