"""The invariant checks themselves can fail: each one sees the fault it is there to see."""

import boto3

from matcarv_aiops.aws import hub_client
from tests.faults.invariants import ActionLog, check, unauthorised_decisions


def test_a_repeated_mutating_call_is_a_double_action(aws):
    ec2 = boto3.client("ec2", region_name="us-east-1")
    group = ec2.create_security_group(GroupName="g", Description="d")["GroupId"]
    rule = {"GroupId": group, "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}
    ec2.authorize_security_group_ingress(**rule)
    log = ActionLog()
    with log.record():
        ec2.describe_security_groups(GroupIds=[group])
        ec2.revoke_security_group_ingress(**rule)
        ec2.authorize_security_group_ingress(**rule)
        ec2.revoke_security_group_ingress(**rule)
    assert log.count("RevokeSecurityGroupIngress") == 2
    assert log.double_actions() == 1
    assert log.double_actions(["AuthorizeSecurityGroupIngress"]) == 0


def test_a_claimed_execution_without_its_record_and_a_self_approval_are_counted(aws):
    ddb = hub_client("dynamodb", aws)
    ddb.put_item(
        TableName=aws.platform.state_table,
        Item={"pk": {"S": "execution#e-1"}, "runId": {"S": "r"}, "dagId": {"S": "d"}},
    )
    for execution, approver in (("e-1", "admin"), ("e-2", "alice"), ("e-3", "automated")):
        ddb.put_item(
            TableName=aws.platform.approvals_table,
            Item={
                "executionId": {"S": execution},
                "status": {"S": "APPROVED"},
                "approver": {"S": approver},
                "requestedBy": {"S": "admin"},
            },
        )
    assert sorted(unauthorised_decisions(aws, ["alice", "admin"])) == [
        "e-1: decided by admin (requested by admin)",
        "e-3: decided by automated (requested by admin)",
    ]
    found = check(aws, approver_group=["alice"])
    assert (found.executions_without_one_record, found.unauthorised_decisions) == (1, 2)
