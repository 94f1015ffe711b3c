"""``aiops_local.cloudformation``: the synthesized templates deployed through CloudFormation into moto,
here in-process and with small templates of the same shapes as the CDK app's (the real ones are deployed
by the local stack in tests/e2e): stack order and parameters, the fallbacks for what moto's CloudFormation
skips, the settings read from the hub's MWAA options, and the synth cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aiops_local import cloudformation as cf

TLS_DENY = {
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": "s3:*",
    "Resource": [
        {"Fn::GetAtt": ["Source", "Arn"]},
        {"Fn::Join": ["", [{"Fn::GetAtt": ["Source", "Arn"]}, "/*"]]},
    ],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
ASSET_BUCKET = {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}
BOOTSTRAP = {
    "BootstrapVersion": {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": "/cdk-bootstrap/hnb659fds/version",
    }
}

SOURCE = {
    "Parameters": BOOTSTRAP,
    "Resources": {
        "Source": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
        },
        "SourcePolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "Source"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        TLS_DENY,
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "logging.s3.amazonaws.com"},
                            "Action": "s3:PutObject",
                            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["Source", "Arn"]}, "/*"]]},
                        },
                    ],
                },
            },
        },
        "Bundle": {
            "Type": "Custom::CDKBucketDeployment",
            "Properties": {
                "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:never-invoked",
                "SourceBucketNames": [ASSET_BUCKET],
                "SourceObjectKeys": ["bundle.zip"],
                "DestinationBucketName": {"Ref": "Source"},
            },
        },
    },
    "Outputs": {
        "SourceBucketArn": {"Value": {"Fn::GetAtt": ["Source", "Arn"]}, "Export": {"Name": "Test-SourceArn"}}
    },
}
HUB = {
    "Parameters": BOOTSTRAP,
    "Resources": {
        "Audit": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": "AuditUnderTest",
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "executionId", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "executionId", "AttributeType": "S"}],
            },
        },
        "Diagnostics": {"Type": "AWS::S3::Bucket"},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "TopicUnderTest"}},
        "TopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [{"Ref": "Topic"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sns:Publish",
                            "Resource": {"Ref": "Topic"},
                        }
                    ],
                },
            },
        },
        "Kept": {"Type": "AWS::SQS::Queue"},
        "KeptPolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": "Kept"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": ["Kept", "Arn"]},
                        }
                    ],
                },
            },
        },
        "KeptDepth": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmActions": [{"Ref": "Topic"}],
                "ComparisonOperator": "GreaterThanThreshold",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Kept", "QueueName"]}}],
                "EvaluationPeriods": 1,
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Namespace": "AWS/SQS",
                "Period": 300,
                "Statistic": "Maximum",
                "Threshold": 0,
            },
        },
        "ExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "airflow.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "Environment": {
            "Type": "AWS::MWAA::Environment",
            "Properties": {
                "Name": "env-under-test",
                "AirflowConfigurationOptions": {
                    "core.default_timezone": "utc",
                    "aiops.audit_table": {"Ref": "Audit"},
                    "aiops.diagnostics_bucket": {"Ref": "Diagnostics"},
                    "aiops.sns_topic_arn": {"Ref": "Topic"},
                    "aiops.source_bucket_arn": {"Fn::ImportValue": "Test-SourceArn"},
                    "aiops.region": {"Ref": "AWS::Region"},
                },
            },
        },
        "RecycleBin": {"Type": "AWS::Rbin::Rule", "Properties": {"ResourceType": "EBS_SNAPSHOT"}},
    },
    "Outputs": {
        "MwaaExecutionRoleArn": {"Value": {"Fn::GetAtt": ["ExecutionRole", "Arn"]}},
        "DiagnosticsBucketName": {"Value": {"Ref": "Diagnostics"}},
        "NotificationsTopicArn": {"Value": {"Ref": "Topic"}},
    },
}
HUB_EXECUTION_ROLE = f"arn:aws:iam::{cf.HUB_ACCOUNT}:role/AIOpsMwaaExecutionRole"
MEMBER = {
    "Parameters": BOOTSTRAP,
    "Resources": {
        "Remediation": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": "AIOpsRemediation-under_test",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": HUB_EXECUTION_ROLE},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
            },
        }
    },
}


HUB_BUS = f"arn:aws:events:{cf.REGION}:{cf.HUB_ACCOUNT}:event-bus/default"
# A hub with only its environment: what the regional stacks' order needs deployed first, quickly.
HUB_ALONE = {
    "Parameters": BOOTSTRAP,
    "Resources": {
        "Environment": {
            "Type": "AWS::MWAA::Environment",
            "Properties": {
                "Name": "env",
                "AirflowConfigurationOptions": {"aiops.region": {"Ref": "AWS::Region"}},
            },
        }
    },
}
REGIONAL = {
    "Parameters": BOOTSTRAP,
    "Resources": {
        "Forward": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": "aiops-under_test",
                "EventPattern": {"source": ["aws.ec2"]},
                "Targets": [
                    {
                        "Id": "hub",
                        "Arn": HUB_BUS,
                        "RoleArn": {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:role/AIOpsEventBridgeRole"},
                    }
                ],
            },
        },
        "Rule": {
            "Type": "AWS::Config::ConfigRule",
            "Properties": {
                "ConfigRuleName": {"Fn::Sub": "restricted-ssh-${AWS::Region}"},
                "Source": {"Owner": "AWS", "SourceIdentifier": "INCOMING_SSH_DISABLED"},
            },
        },
    },
}


def _cdk_out(directory: Path, **templates: dict) -> Path:
    """A cdk.out with these templates and, for the source stack, a directory asset (the bundle)."""
    bundle = directory / "asset.bundle"
    (bundle / "dags").mkdir(parents=True)
    (bundle / "dags" / "a_dag.py").write_text("# a DAG file\n")
    for stack, template in templates.items():
        (directory / f"{stack}.template.json").write_text(json.dumps(template))
        files = {
            "template": {
                "source": {"path": f"{stack}.template.json", "packaging": "file"},
                "destinations": {"here": {"objectKey": f"{stack}.json"}},
            }
        }
        if stack == cf.SOURCE_STACK:
            files["bundle"] = {
                "source": {"path": "asset.bundle", "packaging": "zip"},
                "destinations": {"here": {"objectKey": "bundle.zip"}},
            }
        (directory / f"{stack}.assets.json").write_text(json.dumps({"files": files}))
    return directory


@pytest.fixture
def clients(aws):
    """The hub's clients and the member account's, in moto in-process."""
    hub = cf.client_factory()
    return hub, cf.member_account_clients(hub, None, cf.MEMBER_ACCOUNT)


def test_the_three_stacks_deploy_in_order_with_fallbacks_and_the_hubs_settings(tmp_path, clients):
    hub, member = clients
    cdk_out = _cdk_out(tmp_path, **{cf.SOURCE_STACK: SOURCE, cf.HUB_STACK: HUB, cf.MEMBER_STACK: MEMBER})

    deployment = cf.deploy(cdk_out, hub, member=member)

    source, hub_stack, member_stack = (
        deployment.stacks[s] for s in (cf.SOURCE_STACK, cf.HUB_STACK, cf.MEMBER_STACK)
    )
    s3 = hub("s3")
    source_bucket = source.physical_ids["Source"]
    # The bundle's custom resource: unzipped into the source bucket by its fallback, not by a Lambda.
    assert s3.get_object(Bucket=source_bucket, Key="dags/a_dag.py")["Body"].read() == b"# a DAG file\n"
    # The bucket policy, without the TLS-only deny that moto would apply to every plain-HTTP request.
    policy = json.loads(s3.get_bucket_policy(Bucket=source_bucket)["Policy"])
    assert [s["Effect"] for s in policy["Statement"]] == ["Allow"]
    assert policy["Statement"][0]["Resource"] == f"arn:aws:s3:::{source_bucket}/*"
    # The hub's fallbacks: topic and queue policies, the alarm under its logical id, MWAA and Rbin left out.
    topic = hub_stack.physical_ids["Topic"]
    assert (
        json.loads(hub("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])["Statement"][0][
            "Effect"
        ]
        == "Deny"
    )
    queue_url = hub_stack.physical_ids["Kept"]
    queue_policy = hub("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])[
        "Attributes"
    ]
    assert json.loads(queue_policy["Policy"])["Statement"][0]["Resource"].endswith(
        queue_url.rsplit("/", 1)[1]
    )
    (alarm,) = hub("cloudwatch").describe_alarms(AlarmNames=["AIOps-KeptDepth"])["MetricAlarms"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": queue_url.rsplit("/", 1)[1]}]
    assert alarm["AlarmActions"] == [topic]
    assert hub_stack.fallbacks["Environment"].startswith("left out")
    assert hub_stack.fallbacks["RecycleBin"].startswith("left out")
    # The settings are the MWAA environment's aiops.* options, resolved; Airflow's own options are not.
    assert deployment.settings == {
        "AIOPS_AUDIT_TABLE": "AuditUnderTest",
        "AIOPS_DIAGNOSTICS_BUCKET": hub_stack.physical_ids["Diagnostics"],
        "AIOPS_SNS_TOPIC_ARN": topic,
        "AIOPS_SOURCE_BUCKET_ARN": f"arn:aws:s3:::{source_bucket}",
        "AIOPS_REGION": "us-east-1",
    }
    # The member stack, in the member account, trusts the hub's execution role (named in advance).
    assert member_stack.account == cf.MEMBER_ACCOUNT
    trust = member("iam").get_role(RoleName="AIOpsRemediation-under_test")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"]["AWS"] == HUB_EXECUTION_ROLE
    with pytest.raises(hub("iam").exceptions.NoSuchEntityException):
        hub("iam").get_role(RoleName="AIOpsRemediation-under_test")


def test_a_resource_moto_skips_with_no_fallback_fails_the_deploy_naming_it(tmp_path, clients):
    hub, _ = clients
    template = {
        "Resources": {**HUB["Resources"], "Budget": {"Type": "AWS::Budgets::Budget", "Properties": {}}}
    }
    cdk_out = _cdk_out(tmp_path, AIOps=template)

    with pytest.raises(
        cf.DeployError, match=r"did not create Budget \(AWS::Budgets::Budget\) and it has no fallback"
    ):
        cf.deploy(cdk_out, hub, stacks=[cf.HUB_STACK])


def test_the_member_stack_comes_after_the_hub_and_no_parameter_goes_without_a_default(tmp_path, clients):
    hub, member = clients
    cdk_out = _cdk_out(tmp_path, **{cf.MEMBER_STACK: MEMBER})
    with pytest.raises(cf.DeployError, match="deploy AIOps first"):
        cf.deploy(cdk_out, hub, member=member, stacks=[cf.MEMBER_STACK])
    with pytest.raises(cf.DeployError, match="member account's clients"):
        cf.deploy(cdk_out, hub, stacks=[cf.MEMBER_STACK])
    with_parameter = {**HUB, "Parameters": {**BOOTSTRAP, "HubAccountId": {"Type": "String"}}}
    cdk_out = _cdk_out(tmp_path / "p", **{cf.HUB_STACK: with_parameter})
    with pytest.raises(cf.DeployError, match=r"parameters \['HubAccountId'\] have no default value"):
        cf.deploy(cdk_out, hub, stacks=[cf.HUB_STACK])


def test_the_synth_is_reused_while_its_inputs_are_unchanged(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    for name in cf.SYNTH_INPUTS:
        path = repo / name
        if "." in name:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(name)
        else:
            (path / "__pycache__").mkdir(parents=True)
            (path / "module.py").write_text("x = 1\n")
    first = cf.inputs_sha256(repo)
    (repo / "plugins" / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"compiled")
    (repo / "infra" / "cdk.out").mkdir()
    (repo / "infra" / "cdk.out" / "AIOps.template.json").write_text("{}")
    assert cf.inputs_sha256(repo) == first, "bytecode and cdk.out are not inputs"
    (repo / "ssm" / "module.py").write_text("x = 2\n")
    assert cf.inputs_sha256(repo) != first

    # With the digest recorded, no synth runs; with another, the synth runs without AWS credentials.
    cdk_out = tmp_path / "cdk.out"
    cdk_out.mkdir()
    for stack in (cf.SOURCE_STACK, cf.HUB_STACK, cf.MEMBER_STACK, *cf.REGIONAL_STACKS):
        (cdk_out / f"{stack}.template.json").write_text("{}")
    monkeypatch.setattr(cf, "inputs_sha256", lambda repo=None: "digest-now")
    runs = []

    def synth(argv, **kwargs):
        runs.append(kwargs["env"])
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(cf.subprocess, "run", synth)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a-key")
    (cdk_out / cf.HASH_FILE).write_text("digest-now")
    assert cf.synthesized(cdk_out, log=lambda _: None) == cdk_out
    assert runs == []
    (cdk_out / cf.HASH_FILE).write_text("digest-before")
    cf.synthesized(cdk_out, log=lambda _: None)
    assert len(runs) == 1 and runs[0]["CDK_OUTDIR"] == str(cdk_out) and "AWS_ACCESS_KEY_ID" not in runs[0]
    assert (cdk_out / cf.HASH_FILE).read_text() == "digest-now"


def test_regional_stacks_deploy_in_their_region_after_their_accounts_home_stack(tmp_path, clients):
    hub, member = clients
    hub_stack, member_regional = cf.REGIONAL_STACKS
    cdk_out = _cdk_out(
        tmp_path,
        **{cf.HUB_STACK: HUB_ALONE, cf.MEMBER_STACK: MEMBER, hub_stack: REGIONAL, member_regional: REGIONAL},
    )
    in_other_region = {
        hub_stack: cf.client_factory(region=cf.OTHER_REGION),
        member_regional: cf.member_account_clients(hub, None, cf.MEMBER_ACCOUNT, region=cf.OTHER_REGION),
    }
    with pytest.raises(cf.DeployError, match=f"stack {hub_stack}: its clients are for account 210987654321"):
        cf.deploy(cdk_out, hub, stacks=[], regional={hub_stack: in_other_region[member_regional]})
    with pytest.raises(cf.DeployError, match=f"stack {member_regional} names the roles of {cf.MEMBER_STACK}"):
        cf.deploy(cdk_out, hub, stacks=[], regional={member_regional: in_other_region[member_regional]})

    deployment = cf.deploy(
        cdk_out, hub, member=member, stacks=[cf.HUB_STACK, cf.MEMBER_STACK], regional=in_other_region
    )

    for name, clients in in_other_region.items():
        stack = deployment.stacks[name]
        assert (stack.region, stack.account) == (
            cf.OTHER_REGION,
            clients("sts").get_caller_identity()["Account"],
        )
        # In the second Region, forwarding to the hub's bus in the hub's Region as the home stack's role.
        [target] = clients("events").list_targets_by_rule(Rule="aiops-under_test")["Targets"]
        assert (target["Arn"], target["RoleArn"]) == (
            HUB_BUS,
            f"arn:aws:iam::{stack.account}:role/AIOpsEventBridgeRole",
        )
        # The fallback's Config rule, its Region resolved as the stack's.
        [rule] = clients("config").describe_config_rules()["ConfigRules"]
        assert rule["ConfigRuleName"] == f"restricted-ssh-{cf.OTHER_REGION}"
    # Nothing of theirs in the hub's Region.
    assert hub("events").list_rules(NamePrefix="aiops-")["Rules"] == []
    assert hub("config").describe_config_rules()["ConfigRules"] == []


def test_a_runbook_deployed_by_cloudformation_is_stored_as_text_so_the_tagging_api_lists_its_region(aws):
    """alarm_sync lists resources with GetResources, which hashes every SSM document of its account and
    Region: a runbook moto's CloudFormation stored as an object made that a 500 on the local stack."""
    cf.store_document_content_as_text()
    cf.store_document_content_as_text()  # idempotent: the moto server and a test may both apply it
    content = {"schemaVersion": "0.3", "mainSteps": [{"name": "wait", "action": "aws:sleep"}]}
    template = {
        "Resources": {
            "Runbook": {
                "Type": "AWS::SSM::Document",
                "Properties": {
                    "Name": "AIOps-Test",
                    "DocumentType": "Automation",
                    "DocumentFormat": "YAML",  # as the synthesized templates have it
                    "Content": content,
                },
            }
        }
    }
    hub = cf.client_factory()
    hub("cloudformation").create_stack(StackName="runbooks", TemplateBody=json.dumps(template))
    stored = hub("ssm").get_document(Name="AIOps-Test")["Content"]
    assert yaml.safe_load(stored) == content
    hub("resourcegroupstaggingapi").get_resources(ResourceTypeFilters=["sqs"])  # no longer a 500
