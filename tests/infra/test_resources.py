"""Template assertions for every resource the deployment needs, generated from the catalogue."""

from __future__ import annotations

import json

import pytest
import yaml
from aws_cdk.assertions import Match, Template

from aiops_infra.alarms import KEPT_EVENT_MAX_AGE, METRIC_NAME, METRIC_NAMESPACE
from aiops_infra.event_rules import RETRY_ATTEMPTS
from aiops_infra.mwaa import EXECUTION_ROLE_NAME, LOG_TYPES
from aiops_infra.network import INTERFACE_ENDPOINTS
from aiops_infra.remediation_roles import REMEDIATION_ROLE_ARN_TEMPLATE, remediation_role_name
from aiops_infra.ssm_documents import document_files
from aiops_infra.state_tables import TABLES
from aiops_infra.trigger_function import HANDLER
from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.provision import TABLE_KEYS
from matcarv_aiops.settings import Settings
from tests.infra.conftest import HUB_ACCOUNT, MEMBER_STACKS


@pytest.fixture(scope="module")
def hub(synth) -> Template:
    return Template.from_json(synth.templates["AIOps"])


@pytest.fixture(scope="module")
def source(synth) -> Template:
    return Template.from_json(synth.templates["AIOpsSource"])


def _one(synth, stack: str, resource_type: str) -> dict:
    found = synth.resources(stack, resource_type)
    assert len(found) == 1, (resource_type, list(found))
    return next(iter(found.values()))["Properties"]


def test_source_bucket_is_versioned_private_encrypted_and_tls_only(source):
    source.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "LoggingConfiguration": {"LogFilePrefix": "source/", "DestinationBucketName": Match.any_value()},
        },
    )
    source.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_mwaa_environment(synth, hub):
    props = _one(synth, "AIOps", "AWS::MWAA::Environment")
    assert props["AirflowVersion"] == "3.3.1"
    assert props["WebserverAccessMode"] == "PUBLIC_ONLY"
    assert (props["EnvironmentClass"], props["MinWorkers"], props["MaxWorkers"], props["Schedulers"]) == (
        "mw1.small",
        1,
        5,
        2,
    )
    assert (
        props["DagS3Path"],
        props["PluginsS3Path"],
        props["RequirementsS3Path"],
        props["StartupScriptS3Path"],
    ) == ("dags", "plugins.zip", "requirements.txt", "startup.sh")
    logging = props["LoggingConfiguration"]
    assert set(logging) == {"DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs"}
    assert len(LOG_TYPES) == 5
    assert all(module == {"Enabled": True, "LogLevel": "INFO"} for module in logging.values())
    assert len(props["NetworkConfiguration"]["SubnetIds"]) == 2


def test_mwaa_sizes_and_access_come_from_context(synth_variant):
    props = _one(synth_variant, "AIOps", "AWS::MWAA::Environment")
    assert (props["Name"], props["EnvironmentClass"], props["MinWorkers"], props["MaxWorkers"]) == (
        "aiops-prod",
        "mw1.medium",
        2,
        8,
    )
    assert props["WebserverAccessMode"] == "PRIVATE_ONLY"
    assert props["NetworkConfiguration"]["SubnetIds"] == [
        "subnet-0aaa1111bbbb22223",
        "subnet-0ccc3333dddd44445",
    ]
    assert synth_variant.resources("AIOps", "AWS::EC2::VPC") == {}


def test_airflow_options_carry_the_core_settings(synth):
    options = _one(synth, "AIOps", "AWS::MWAA::Environment")["AirflowConfigurationOptions"]
    assert options["core.dags_are_paused_at_creation"] == "False"
    aiops = {key.removeprefix("aiops."): value for key, value in options.items() if key.startswith("aiops.")}
    # Every platform setting the core reads is passed, under the core's own field names.
    known = set(Settings.names())
    assert {
        "audit_table",
        "approvals_table",
        "state_table",
        "diagnostics_bucket",
        "sns_topic_arn",
        "region",
        "remediation_role_arn_template",
    } <= set(aiops) and {"audit_table", "state_table"} <= known
    for key in ("audit_table", "approvals_table", "state_table"):
        assert aiops[key] == {
            "Ref": next(
                lid
                for lid, r in synth.resources("AIOps", "AWS::DynamoDB::Table").items()
                if r["Properties"]["TableName"] == Settings.names()[key]
            )
        }
    assert aiops["ssm_automation_role_arn"].format(account="123456789012") == (
        "arn:aws:iam::123456789012:role/AIOpsSSMAutomationRole"
    )
    assert "ssm_automation_role_arn" in known
    template = aiops["remediation_role_arn_template"]
    assert template == REMEDIATION_ROLE_ARN_TEMPLATE
    # The core formats it with these placeholders; the result names the role this stack creates.
    assert template.format(account="123456789012", remediation="s3_public_access") == (
        "arn:aws:iam::123456789012:role/" + remediation_role_name("s3_public_access")
    )


def test_network_has_private_subnets_endpoints_and_flow_logs(synth, hub):
    subnets = synth.resources("AIOps", "AWS::EC2::Subnet")
    private = [s for s in subnets.values() if s["Properties"]["MapPublicIpOnLaunch"] is False]
    assert len(private) == 2
    endpoints = synth.resources("AIOps", "AWS::EC2::VPCEndpoint").values()
    names = {_service_suffix(e["Properties"]["ServiceName"]) for e in endpoints}
    assert names == set(INTERFACE_ENDPOINTS) | {"s3", "dynamodb"}
    hub.resource_count_is("AWS::EC2::FlowLog", 1)
    groups = synth.resources("AIOps", "AWS::EC2::SecurityGroup").values()
    for group in groups:
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert rule.get("CidrIp") != "0.0.0.0/0"


def _service_suffix(name) -> str:
    if isinstance(name, str):
        return name.split(".", 3)[-1]
    parts = name["Fn::Join"][1]
    return parts[-1].lstrip(".")


def test_tables_keys_ttl_recovery_and_protection(synth):
    tables = {
        r["Properties"]["TableName"]: r for r in synth.resources("AIOps", "AWS::DynamoDB::Table").values()
    }
    assert set(tables) == {spec.name for spec in TABLES}
    for spec in TABLES:
        table = tables[spec.name]
        props = table["Properties"]
        assert props["KeySchema"] == [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"
        if spec.ttl:
            assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props
    assert tables["AutomationAuditLog"]["Properties"]["DeletionProtectionEnabled"] is True
    # The keys the core's own writers use (matcarv_aiops.provision mirrors this stack for moto).
    settings = Settings()
    for setting, key in TABLE_KEYS.items():
        assert tables[settings.as_flat()[setting]]["Properties"]["KeySchema"][0]["AttributeName"] == key


def test_notifications_topic_is_encrypted_with_a_rotating_key(synth, hub):
    topic = _one(synth, "AIOps", "AWS::SNS::Topic")
    assert topic["TopicName"] == Settings().platform.sns_topic_name
    assert "Fn::GetAtt" in topic["KmsMasterKeyId"]
    hub.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_trigger_lambda(synth):
    function = synth.trigger_function()[1]["Properties"]
    assert (function["Runtime"], function["Architectures"]) == ("python3.12", ["x86_64"])
    assert function["Handler"] == HANDLER
    assert function["Environment"]["Variables"]["AIOPS_TRIGGER_BACKEND"] == "mwaa"
    assert function["Environment"]["Variables"]["AIOPS_MWAA_ENVIRONMENT_NAME"] == "matcarv-aiops"
    # No reservation unless the deployment config asks for one (a new account has none to give).
    assert "ReservedConcurrentExecutions" not in function


def test_trigger_reserved_concurrency_comes_from_context(synth_variant):
    assert synth_variant.trigger_function()[1]["Properties"]["ReservedConcurrentExecutions"] == 20


def test_private_webserver_admits_the_named_sources_on_443_only(synth, synth_variant):
    ingress = [
        r["Properties"]
        for r in synth_variant.resources("AIOps", "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("FromPort") == 443 and "Approvers" in r["Properties"]["Description"]
    ]
    peers = sorted(
        next(v for k, v in rule.items() if k in ("CidrIp", "SourcePrefixListId", "SourceSecurityGroupId"))
        for rule in ingress
    )
    assert peers == ["10.20.0.0/16", "pl-0123456789abcdef0", "sg-0123456789abcdef0"]
    assert all((r["IpProtocol"], r["ToPort"]) == ("tcp", 443) for r in ingress)
    assert not [
        r
        for r in synth.resources("AIOps", "AWS::EC2::SecurityGroupIngress").values()
        if "Approvers" in r["Properties"]["Description"]
    ]


def test_environment_waits_for_its_network(synth):
    """CloudFormation creates the environment only after its routes, NAT gateway and endpoints exist."""
    template = synth.templates["AIOps"]
    [(env_id, environment)] = synth.resources("AIOps", "AWS::MWAA::Environment").items()
    depends = set(environment.get("DependsOn", []))
    needed = {
        lid
        for lid, r in template["Resources"].items()
        if r["Type"]
        in (
            "AWS::EC2::Route",
            "AWS::EC2::NatGateway",
            "AWS::EC2::VPCEndpoint",
            "AWS::EC2::SubnetRouteTableAssociation",
            "AWS::EC2::SecurityGroupIngress",
            "AWS::EC2::SecurityGroupEgress",
        )
    }
    assert needed and needed <= depends, sorted(needed - depends)


def test_one_rule_per_catalogue_entry_with_its_pattern(synth):
    # The catalogue's rules match events; the one scheduled rule (the redrive) is tested with the queue.
    rules = {
        r["Properties"]["Name"]: r["Properties"]
        for r in synth.resources("AIOps", "AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    }
    entries = catalogue()
    assert len(rules) == len(entries)
    queue_id = next(lid for lid in synth.resources("AIOps", "AWS::SQS::Queue") if "DeadLetterQueue" in lid)
    function_id, _ = synth.trigger_function()
    for entry in entries.values():
        rule = rules[f"aiops-{entry.id}"]
        assert rule["EventPattern"] == entry.trigger
        assert rule["State"] == "ENABLED"
        [target] = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == RETRY_ATTEMPTS
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
        assert "Fn::GetAtt" in target["RoleArn"]
    # EventBridge may invoke the function for each rule (and the redrive schedule), and send to the DLQ.
    assert len(synth.resources("AIOps", "AWS::Lambda::Permission")) == len(entries) + 1
    queue = synth.resources("AIOps", "AWS::SQS::Queue")[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True


def test_ssm_documents_one_per_file(synth):
    files = {path.stem: path for path in document_files()}
    documents = {
        d["Properties"]["Name"]: d["Properties"]
        for d in synth.resources("AIOps", "AWS::SSM::Document").values()
    }
    assert set(documents) == set(files)
    for name, document in documents.items():
        assert document["DocumentType"] == "Automation"
        assert document["Content"] == yaml.safe_load(files[name].read_text())


def test_ssm_role_holds_exactly_the_runbooks_actions(synth):
    roles = synth.resources("AIOps", "AWS::IAM::Role")
    role_id = next(
        lid for lid, r in roles.items() if r["Properties"].get("RoleName") == "AIOpsSSMAutomationRole"
    )
    granted = sorted(
        a
        for r in synth.resources("AIOps", "AWS::IAM::Policy").values()
        if {"Ref": role_id} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    )
    files = document_files()
    if not files:
        assert granted == []
        return
    from aiops_infra.ssm_documents import document_permissions

    assert granted == sorted({action for path in files for action in document_permissions(path)})


def test_recycle_bin_keeps_deleted_snapshots(synth):
    rule = _one(synth, "AIOps", "AWS::Rbin::Rule")
    assert rule["ResourceType"] == "EBS_SNAPSHOT"
    assert rule["RetentionPeriod"] == {"RetentionPeriodUnit": "DAYS", "RetentionPeriodValue": 7}


def test_alarms(synth):
    alarms = [a["Properties"] for a in synth.resources("AIOps", "AWS::CloudWatch::Alarm").values()]
    by_metric = {(a["Namespace"], a["MetricName"]): a for a in alarms}
    assert set(by_metric) == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Errors"),
        (METRIC_NAMESPACE, METRIC_NAME),
    }
    # Depth of both queues: the rules' dead letters and the trigger's kept failed invocations.
    assert [a["MetricName"] for a in alarms].count("ApproximateNumberOfMessagesVisible") == 2
    assert by_metric[(METRIC_NAMESPACE, METRIC_NAME)]["Dimensions"] == [
        {"Name": "Outcome", "Value": "FAILURE"}
    ]
    topic_id = next(iter(synth.resources("AIOps", "AWS::SNS::Topic")))
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        # Any one is worth a human's look; only a kept event's age has a threshold (days, not 0).
        expected = (
            KEPT_EVENT_MAX_AGE.to_seconds() if alarm["MetricName"] == "ApproximateAgeOfOldestMessage" else 0
        )
        assert alarm["Threshold"] == expected


def test_member_stacks_trust_the_hub_by_name_and_rules_forward(synth_variant):
    """Each member stack names the hub's resources itself (no parameters): its remediation roles trust the
    hub's execution role, its runbooks write to the hub's diagnostics bucket and its rules forward to the
    hub's bus, each by the name the hub stack gives it."""
    [hub_role] = [
        r["Properties"]
        for r in synth_variant.resources("AIOps", "AWS::IAM::Role").values()
        if r["Properties"].get("RoleName") == EXECUTION_ROLE_NAME
    ]
    assert "AssumeRolePolicyDocument" in hub_role
    [hub_bucket] = [
        r["Properties"]["BucketName"]
        for r in synth_variant.resources("AIOps", "AWS::S3::Bucket").values()
        if "BucketName" in r["Properties"]
    ]
    assert hub_bucket == {
        "Fn::Join": ["", ["aiops-diagnostics-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]
    }
    for stack in MEMBER_STACKS:
        member = synth_variant.templates[stack]
        # Only CDK's own bootstrap-version parameter, which has a default.
        assert set(member.get("Parameters", {})) <= {"BootstrapVersion"}
        roles = {
            r["Properties"].get("RoleName"): r["Properties"]
            for r in synth_variant.resources(stack, "AWS::IAM::Role").values()
        }
        for entry in catalogue().values():
            trust = roles[remediation_role_name(entry.id)]["AssumeRolePolicyDocument"]["Statement"]
            # only with the human behind the session (SourceIdentity), which the hub may set
            assert trust == [
                {
                    "Action": action,
                    "Condition": {"Null": {"sts:SourceIdentity": "false"}},
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{HUB_ACCOUNT}:role/{EXECUTION_ROLE_NAME}"},
                }
                for action in ("sts:AssumeRole", "sts:SetSourceIdentity")
            ]
        runbook_writes = [
            statement["Resource"]
            for policy in synth_variant.resources(stack, "AWS::IAM::Policy").values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Action"] == "s3:PutObject"
        ]
        assert runbook_writes == [
            {
                "Fn::Join": [
                    "",
                    [
                        f"arn:aws:s3:::aiops-diagnostics-{HUB_ACCOUNT}-",
                        {"Ref": "AWS::Region"},
                        "/diagnostics/*",
                    ],
                ]
            }
        ]
        rules = {
            r["Properties"]["Name"]: r["Properties"]
            for r in synth_variant.resources(stack, "AWS::Events::Rule").values()
        }
        assert len(rules) == len(catalogue())
        for entry in catalogue().values():
            rule = rules[f"aiops-{entry.id}"]
            assert rule["EventPattern"] == entry.trigger
            assert rule["Targets"][0]["Arn"] == {
                "Fn::Join": [
                    "",
                    ["arn:aws:events:", {"Ref": "AWS::Region"}, f":{HUB_ACCOUNT}:event-bus/default"],
                ]
            }


def test_hub_bus_accepts_member_accounts_only_when_configured(synth, synth_variant):
    assert synth.resources("AIOps", "AWS::Events::EventBusPolicy") == {}
    policy = _one(synth_variant, "AIOps", "AWS::Events::EventBusPolicy")
    assert policy["Statement"]["Principal"]["AWS"] == [
        "arn:aws:iam::111111111111:root",
        "arn:aws:iam::222222222222:root",
    ]


def test_the_source_stack_uploads_the_bundle_before_the_hub_is_created(synth):
    """`cdk deploy --all` works from a clean account: the source stack's BucketDeployment puts the bundle
    (as `make bundle` lays it out) into the source bucket, and the hub stack is deployed after it."""
    [deployment] = synth.resources("AIOpsSource", "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    [bucket_id] = synth.resources("AIOpsSource", "AWS::S3::Bucket").keys() - {
        lid
        for lid, r in synth.resources("AIOpsSource", "AWS::S3::Bucket").items()
        if "LoggingConfiguration" not in r["Properties"]
    }
    assert props["DestinationBucketName"] == {"Ref": bucket_id}
    assert props["Prune"] is True and "DestinationBucketKeyPrefix" not in props
    # The staged asset is the bundle: dags/, plugins.zip, requirements.txt, startup.sh at the bucket's root.
    [key] = props["SourceObjectKeys"]
    asset = synth.outdir / f"asset.{key.removesuffix('.zip')}"
    assert sorted(p.name for p in asset.iterdir()) == [
        "dags",
        "plugins.zip",
        "requirements.txt",
        "startup.sh",
    ]
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    assert "AIOpsSource" in manifest["artifacts"]["AIOps"]["dependencies"]
    # The handler's role holds exact actions, no wildcards.
    for policy in synth.resources("AIOpsSource", "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert all("*" not in action for action in statement["Action"]), statement
