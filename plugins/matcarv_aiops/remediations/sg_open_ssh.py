"""Revoke the ingress rules of one security group that open SSH to the whole internet."""

from __future__ import annotations

import hashlib
import json

from botocore.exceptions import ClientError

from matcarv_aiops.remediations import register
from matcarv_aiops.remediations.base import Remediation, Validation, tags_from_list
from matcarv_aiops.remediations.security_findings import asff_finding, import_findings, missing_findings

WORLD_V4, WORLD_V6 = "0.0.0.0/0", "::/0"
FINDING_TYPE = (
    "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"
)


def _covers(permission: dict, port: int) -> bool:
    protocol = str(permission.get("IpProtocol", ""))
    if protocol == "-1":  # all traffic
        return True
    if protocol not in ("tcp", "6"):
        return False
    return int(permission.get("FromPort", -1)) <= port <= int(permission.get("ToPort", -1))


def open_to_world(permissions: list[dict], port: int) -> list[dict]:
    """The parts of the permissions that open ``port`` to 0.0.0.0/0 or ::/0, in the shape
    RevokeSecurityGroupIngress takes: revoking them removes exactly those rules and keeps the other
    CIDRs, groups and prefix lists of the same permission."""
    found = []
    for permission in permissions:
        if not _covers(permission, port):
            continue
        v4 = [r for r in permission.get("IpRanges", []) if r.get("CidrIp") == WORLD_V4]
        v6 = [r for r in permission.get("Ipv6Ranges", []) if r.get("CidrIpv6") == WORLD_V6]
        if not v4 and not v6:
            continue
        rule = {"IpProtocol": permission["IpProtocol"]}
        if permission["IpProtocol"] != "-1":
            rule["FromPort"], rule["ToPort"] = permission["FromPort"], permission["ToPort"]
        if v4:
            rule["IpRanges"] = [{"CidrIp": WORLD_V4}]
        if v6:
            rule["Ipv6Ranges"] = [{"CidrIpv6": WORLD_V6}]
        found.append(rule)
    return found


def _describe_rule(rule: dict) -> str:
    ports = (
        "all ports"
        if rule["IpProtocol"] == "-1"
        else f"{rule['IpProtocol']} {rule['FromPort']}-{rule['ToPort']}"
    )
    cidrs = [r["CidrIp"] for r in rule.get("IpRanges", [])] + [
        r["CidrIpv6"] for r in rule.get("Ipv6Ranges", [])
    ]
    return f"{ports} from {', '.join(cidrs)}"


@register
class SgOpenSsh(Remediation):
    remediation_id = "sg_open_ssh"
    resumable = True  # execute revokes only the recorded rules that are still open now

    def _group(self, ctx) -> dict | None:
        try:
            groups = ctx.client("ec2").describe_security_groups(GroupIds=[ctx.target.resource_id])[
                "SecurityGroups"
            ]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("InvalidGroup.NotFound", "InvalidGroupId.Malformed"):
                return None
            raise
        return groups[0] if groups else None

    def collect_diagnostics(self, ctx):
        group = self._group(ctx)
        if group is None:
            return None
        port = int(ctx.threshold("port"))
        return {
            "group_id": group["GroupId"],
            "group_name": group.get("GroupName"),
            "vpc_id": group.get("VpcId"),
            "owner_id": group.get("OwnerId"),
            "ip_permissions": group.get("IpPermissions", []),  # all of them, as they were
            "open_to_world": open_to_world(group.get("IpPermissions", []), port),
            "tags": tags_from_list(group.get("Tags")),
        }

    def check_eligibility(self, ctx, state):
        if not state["open_to_world"]:
            return f"already fixed: no ingress rule opens port {int(ctx.threshold('port'))} to the internet"
        return None

    def plan(self, ctx, state):
        rules = "; ".join(_describe_rule(r) for r in state["open_to_world"])
        return (
            f"revoke ingress {rules} on security group {state['group_id']} and record a Security Hub finding"
        )

    def _finding_id(self, ctx, rules: list[dict]) -> str:
        digest = hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:16]
        return f"matcarv-aiops/sg_open_ssh/{ctx.target.account}/{ctx.target.resource_id}/{digest}"

    def execute(self, ctx, state):
        group = self._group(ctx)
        live = open_to_world(group.get("IpPermissions", []) if group else [], int(ctx.threshold("port")))
        # Only what is still open now and was open when we looked (and was approved); never more.
        rules = [rule for rule in live if rule in state["open_to_world"]]
        if rules:
            ctx.client("ec2").revoke_security_group_ingress(GroupId=state["group_id"], IpPermissions=rules)
        revoked = rules or state["open_to_world"]
        finding = asff_finding(
            finding_id=self._finding_id(ctx, revoked),
            account=ctx.target.account,
            region=ctx.target.region,
            generator="sg_open_ssh",
            severity="HIGH",
            compliance="FAILED",
            finding_type=FINDING_TYPE,
            title=f"Security group {state['group_id']} allowed SSH from the internet",
            description=(
                f"AIOps revoked ingress {'; '.join(_describe_rule(r) for r in revoked)} on "
                f"{state['group_id']} ({state['group_name']}). The full previous rules are in the "
                f"execution's diagnostics."
            ),
            resources=[
                {
                    "Type": "AwsEc2SecurityGroup",
                    "Id": ctx.target.arn,
                    "Partition": "aws",
                    "Region": ctx.target.region,
                }
            ],
            product_fields={"aiops/executionId": ctx.execution_id, "aiops/remediation": self.remediation_id},
        )
        finding_ids = import_findings(ctx.client("securityhub"), [finding])
        return {"revoked": rules, "finding_id": finding_ids[0]}

    def validate(self, ctx, state, result):
        group = self._group(ctx)
        if group is None:
            return Validation(False, f"security group {state['group_id']} disappeared")
        still_open = open_to_world(group.get("IpPermissions", []), int(ctx.threshold("port")))
        if still_open:
            return Validation(False, f"still open: {'; '.join(_describe_rule(r) for r in still_open)}")
        removed = _flatten(state["ip_permissions"]) - _flatten(group.get("IpPermissions", []))
        expected = _flatten(state["open_to_world"])
        if removed - expected:
            return Validation(
                False, f"rules other than the open SSH ones are gone: {sorted(removed - expected)}"
            )
        if result is None:
            return Validation(
                True,
                f"port {int(ctx.threshold('port'))} is closed to the internet; the Security Hub finding of "
                "the interrupted attempt is unknown (its result was not recorded)",
            )
        if missing_findings(ctx.client("securityhub"), [result["finding_id"]]):
            return Validation(False, f"Security Hub finding {result['finding_id']} is not recorded")
        return Validation(
            True,
            f"port {int(ctx.threshold('port'))} is closed to the internet; finding "
            f"{result['finding_id']} recorded",
        )


def _flatten(permissions: list[dict]) -> set[tuple]:
    """Each (protocol, from, to, source) as one comparable rule."""
    rules: set[tuple] = set()
    for p in permissions:
        key = (str(p.get("IpProtocol")), p.get("FromPort"), p.get("ToPort"))
        rules.update(key + ("cidr", r["CidrIp"]) for r in p.get("IpRanges", []))
        rules.update(key + ("cidr6", r["CidrIpv6"]) for r in p.get("Ipv6Ranges", []))
        rules.update(key + ("group", g.get("GroupId")) for g in p.get("UserIdGroupPairs", []))
        rules.update(key + ("prefix", x.get("PrefixListId")) for x in p.get("PrefixListIds", []))
    return rules
