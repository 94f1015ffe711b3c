"""Where MWAA runs: two private subnets in different Availability Zones and the VPC endpoints MWAA and the
DAGs use, or an existing VPC's subnets given by context."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from aiops_infra.config import ExistingVpc
from aiops_infra.nag import skip_checkov
from aiops_infra.trust import service_principal

# Interface endpoints for private routing: MWAA's own (airflow.api/env/ops), what its components use
# (CloudWatch Logs and metrics, SQS for Celery, KMS), and what the DAGs call in the hub (STS to assume
# the remediation roles, SNS for approvals). S3 and DynamoDB use free gateway endpoints.
INTERFACE_ENDPOINTS = (
    "airflow.api",
    "airflow.env",
    "airflow.ops",
    "logs",
    "monitoring",
    "sqs",
    "kms",
    "sts",
    "sns",
)


class Network(Construct):
    """Private subnets and a security group for MWAA.

    A new VPC gets NAT (``nat_gateways``, for PyPI, Slack and AWS APIs without an endpoint) plus the
    endpoints above; ``nat_gateways=0`` makes it fully private (then requirements must be packaged as
    wheels). With ``existing`` nothing but the security group is created.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        existing: ExistingVpc | None,
        nat_gateways: int,
        webserver_allowed_from: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if existing:
            vpc_id = existing.vpc_id
            self.private_subnet_ids = list(existing.private_subnet_ids)
            self.vpc: ec2.Vpc | None = None
        else:
            self.vpc = self._create_vpc(nat_gateways)
            vpc_id = self.vpc.vpc_id
            self.private_subnet_ids = self.vpc.select_subnets(
                subnet_type=(
                    ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
                )
            ).subnet_ids
        # MWAA's components talk to each other inside this group; from outside only the approvers'
        # sources given by context reach the (PRIVATE_ONLY) webserver's endpoint, on 443. Egress is what
        # MWAA documents for its security group: all traffic (its components reach the metadata database
        # on 5432 through their endpoint, AWS APIs and PyPI on 443).
        self.security_group = ec2.CfnSecurityGroup(
            self,
            "MwaaSecurityGroup",
            vpc_id=vpc_id,
            group_description="MatCarv AIOps MWAA environment: self-referencing, approvers on 443",
            security_group_egress=[
                ec2.CfnSecurityGroup.EgressProperty(
                    ip_protocol="-1",
                    cidr_ip="0.0.0.0/0",
                    description="MWAA's documented egress: all outbound traffic",
                )
            ],
        )
        ec2.CfnSecurityGroupIngress(
            self,
            "MwaaSelfIngress",
            group_id=self.security_group.attr_group_id,
            ip_protocol="-1",
            source_security_group_id=self.security_group.attr_group_id,
            description="MWAA components (scheduler, workers, webserver, metadata DB) within the environment",
        )
        ec2.CfnSecurityGroupEgress(
            self,
            "MwaaSelfEgress",
            group_id=self.security_group.attr_group_id,
            ip_protocol="-1",
            destination_security_group_id=self.security_group.attr_group_id,
            description="MWAA components within the environment",
        )
        self.security_group_id = self.security_group.attr_group_id
        for index, source in enumerate(webserver_allowed_from):
            peer = (
                dict(source_prefix_list_id=source)
                if source.startswith("pl-")
                else dict(source_security_group_id=source)
                if source.startswith("sg-")
                else dict(cidr_ip=source)
            )
            ec2.CfnSecurityGroupIngress(
                self,
                f"WebserverFrom{index}",
                group_id=self.security_group_id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description=f"Approvers reach the Airflow UI from {source}",
                **peer,
            )
        if self.vpc:
            self._add_endpoints(self.vpc, nat_gateways)

    def _create_vpc(self, nat_gateways: int) -> ec2.Vpc:
        private_type = ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        subnets = [ec2.SubnetConfiguration(name="private", subnet_type=private_type, cidr_mask=20)]
        if nat_gateways:
            subnets.insert(
                0, ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            )
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.42.0.0/16"),
            max_azs=2,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=logs.RetentionDays.ONE_YEAR, removal_policy=cdk.RemovalPolicy.RETAIN
        )
        skip_checkov(
            flow_logs,
            "CKV_AWS_158",
            "CloudWatch Logs encrypts it at rest with service keys; rejected-flow records are no secret, "
            "and a customer key would add a key policy and no protection",
        )
        stack = cdk.Stack.of(self)
        # Our own role (not CDK's default) to carry the flow-logs confused-deputy guard.
        flow_logs_role = iam.Role(
            self,
            "FlowLogsRole",
            assumed_by=service_principal(
                "vpc-flow-logs.amazonaws.com",
                account=stack.account,
                source_arn=f"arn:aws:ec2:{stack.region}:{stack.account}:vpc-flow-log/*",
            ),
            description="MatCarv AIOps VPC flow logs: write to the flow-logs log group",
        )
        vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs, flow_logs_role),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        return vpc

    def _add_endpoints(self, vpc: ec2.Vpc, nat_gateways: int) -> None:
        # The endpoints answer HTTPS from the MWAA security group only.
        endpoints_group = ec2.SecurityGroup(
            self,
            "EndpointsSecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="MatCarv AIOps VPC interface endpoints: HTTPS from MWAA",
        )
        ec2.CfnSecurityGroupIngress(
            self,
            "EndpointsFromMwaa",
            group_id=endpoints_group.security_group_id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            source_security_group_id=self.security_group_id,
            description="HTTPS from the MWAA environment",
        )
        private_type = ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        # Only in the AZs that offer each service: a context lookup, so only for a stack with a concrete
        # account and region (`cdk deploy` with credentials; the CLI caches the answer in cdk.context.json).
        # An environment-agnostic synth (offline, no account) cannot look up and places them in both subnets.
        stack = cdk.Stack.of(self)
        concrete = not cdk.Token.is_unresolved(stack.account) and not cdk.Token.is_unresolved(stack.region)
        for name in INTERFACE_ENDPOINTS:
            vpc.add_interface_endpoint(
                "Endpoint" + "".join(part.capitalize() for part in name.split(".")),
                service=ec2.InterfaceVpcEndpointAwsService(name),
                security_groups=[endpoints_group],
                open=False,
                subnets=ec2.SubnetSelection(subnet_type=private_type),
                private_dns_enabled=True,
                lookup_supported_azs=concrete,
            )
