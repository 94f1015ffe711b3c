import boto3
import pytest

from matcarv_aiops.remediations import sg_open_ssh
from tests.events import cloudtrail_event, config_compliance_event
from tests.remediations.stubs import approver

SSH_WORLD = {
    "IpProtocol": "tcp",
    "FromPort": 22,
    "ToPort": 22,
    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
    "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
}
SSH_OFFICE = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]}
HTTPS_WORLD = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def _group(*permissions):
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="bastion", Description="bastion", VpcId=vpc)["GroupId"]
    if permissions:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=list(permissions))
    return ec2, group


def _rules(ec2, group):
    """(protocol, from, to, cidr) for every CIDR ingress rule."""
    perms = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    return sorted(
        (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r.get("CidrIp") or r.get("CidrIpv6"))
        for p in perms
        for r in p.get("IpRanges", []) + p.get("Ipv6Ranges", [])
    )


def _authorize_event(group):
    return cloudtrail_event(
        "ec2",
        "AuthorizeSecurityGroupIngress",
        {
            "groupId": group,
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    }
                ]
            },
        },
    )


def test_revokes_only_the_open_ssh_rules_after_approval(remediate):
    ec2, group = _group(SSH_WORLD, SSH_OFFICE, HTTPS_WORLD)
    run = remediate("sg_open_ssh", {"event": _authorize_event(group)}, decide=approver())
    assert run.outcome == "SUCCESS", run
    assert run.audit.operator.endswith("user/oncall")
    assert _rules(ec2, group) == [("tcp", 22, 22, "198.51.100.0/24"), ("tcp", 443, 443, "0.0.0.0/0")]
    findings = boto3.client("securityhub", region_name="us-east-1").get_findings()["Findings"]
    assert [f["Id"] for f in findings] == [run.records["execute"].done["result"]["finding_id"]]
    assert findings[0]["Resources"][0]["Id"].endswith(f"security-group/{group}")


def test_config_restricted_ssh_finding_triggers_the_same_fix(remediate):
    ec2, group = _group({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]})
    event = config_compliance_event("restricted-ssh", "AWS::EC2::SecurityGroup", group)
    run = remediate("sg_open_ssh", {"event": event}, decide=approver())
    assert run.outcome == "SUCCESS", run
    assert _rules(ec2, group) == []


def test_waits_for_a_human_and_a_rejection_changes_nothing(remediate):
    ec2, group = _group(SSH_WORLD)
    run = remediate("sg_open_ssh", {"event": _authorize_event(group)}, decide=approver(False))
    assert run.outcome == "SKIPPED" and "rejected by" in run.audit.action
    assert _rules(ec2, group) == [("tcp", 22, 22, "0.0.0.0/0"), ("tcp", 22, 22, "::/0")]


def test_validation_failure_is_failure_and_nothing_else_changes(remediate, monkeypatch):
    ec2, group = _group(SSH_WORLD, HTTPS_WORLD)

    def execute_only_ipv4(self, ctx, state):  # a partial revoke: ::/0 stays open
        rule = dict(state["open_to_world"][0])
        rule.pop("Ipv6Ranges")
        ctx.client("ec2").revoke_security_group_ingress(GroupId=state["group_id"], IpPermissions=[rule])
        return {"revoked": [rule], "finding_id": "none"}

    monkeypatch.setattr(sg_open_ssh.SgOpenSsh, "execute", execute_only_ipv4)
    run = remediate("sg_open_ssh", {"event": _authorize_event(group)}, decide=approver())
    assert run.outcome == "FAILURE" and "still open: tcp 22-22 from ::/0" in run.audit.action
    assert "No rollback" in run.audit.rollback_plan and run.record("rollback").done["rolled_back"] is False
    assert _rules(ec2, group) == [("tcp", 22, 22, "::/0"), ("tcp", 443, 443, "0.0.0.0/0")]


def test_group_without_open_ssh_is_skipped(remediate):
    ec2, group = _group(SSH_OFFICE, HTTPS_WORLD)
    run = remediate("sg_open_ssh", {"event": _authorize_event(group)}, decide=approver())
    assert run.outcome == "SKIPPED" and "already fixed" in run.audit.action
    assert _rules(ec2, group) == [("tcp", 22, 22, "198.51.100.0/24"), ("tcp", 443, 443, "0.0.0.0/0")]


@pytest.mark.parametrize(
    "permission, expected",
    [
        ({"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, 1),
        ({"IpProtocol": "tcp", "FromPort": 23, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, 0),
        ({"IpProtocol": "udp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, 0),
        ({"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}, 1),
    ],
)
def test_open_to_world_port_ranges(permission, expected):
    assert len(sg_open_ssh.open_to_world([permission], 22)) == expected
