"""Deploy what ``infra/`` synthesizes into moto, through CloudFormation ``CreateStack``, as ``cdk deploy``
and StackSets would: the local stack (moto_server) and the in-process tests get the resources the CDK app
defines, from its templates, not from a second description.

    cdk_out = synthesized()     # infra/cdk.out, synthesized again only when its inputs changed
    deployment = deploy(cdk_out, client_factory(endpoint_url), member=...)
    deployment.settings         # AIOPS_* for Airflow, from the hub's MWAA configuration

The steps, in ``cdk deploy``'s order:
1. bootstrap each account: the CDK asset bucket ``cdk-hnb659fds-assets-<account>-<region>`` and the
   bootstrap version parameter the templates check;
2. publish the file assets each template references (directories zipped, once per asset hash);
3. ``CreateStack`` AIOpsSource, then AIOps (it imports the source bucket's ARN), then
   ``AIOpsMember-<account>`` in the member account (through an assumed role there, as the CDK CLI's
   cross-account deploy role is), which takes nothing from the hub but its account id: the synth is given
   the local accounts as context (``LOCAL_CONTEXT``), as ``cdk deploy --all -c memberAccountIds=...``;
   then, given the clients for it (``regional=``), each account's ``AIOpsRegion-<account>-<region>`` in
   the second Region (``OTHER_REGION``), after its account's home stack;
4. for every resource moto's CloudFormation does not create, the small fallback ``FALLBACKS`` names for
   its type, under the template's own names and properties, or nothing where ``LEFT_OUT`` says why it
   has no effect here. A resource that is in neither fails the deploy, naming it: nothing is dropped
   silently.

The platform's settings are the hub's ``AWS::MWAA::Environment`` configuration options ``aiops.*``,
resolved against the created stack's physical ids: what MWAA exports to ``startup.sh`` in AWS.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# Not infra/cdk.out: `make synth` writes there with cdk.json's context alone (no member accounts), and
# this synth is the same app with the local accounts as context.
CDK_OUT = REPO / "build" / "local-cdk.out"
# The hub is moto's default account (123456789012), where the demo's problems are too.
HUB_ACCOUNT = "123456789012"
MEMBER_ACCOUNT = "210987654321"  # a member account, with its own member stack
SOURCE_STACK, HUB_STACK, MEMBER_STACK = "AIOpsSource", "AIOps", f"AIOpsMember-{MEMBER_ACCOUNT}"
REGION = "us-east-1"
# The second Region the local accounts cover: the hub's and the member's regional stacks are there.
OTHER_REGION = "eu-west-1"
# cdk.json's context, and the local accounts and Regions: the hub's own account is non-production (its
# untagged resources are fixed unattended, as the demo shows); none is production.
LOCAL_CONTEXT = {
    "memberAccountIds": MEMBER_ACCOUNT,
    "hubAccountId": HUB_ACCOUNT,
    "productionAccountIds": "",
    "nonProductionAccountIds": HUB_ACCOUNT,
    "regions": f"{REGION},{OTHER_REGION}",
    "hubRegion": REGION,
}


def regional_stack_name(account: str, region: str) -> str:
    """The CDK app's name for an account's stack in another Region (aiops_infra.app)."""
    return f"AIOpsRegion-{account}-{region}"


REGIONAL_STACKS = tuple(regional_stack_name(a, OTHER_REGION) for a in (HUB_ACCOUNT, MEMBER_ACCOUNT))
BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION = "30"  # what `cdk bootstrap` of CDK 2.2xx writes; the templates require >= 6
# What the synth reads: the CDK app, the catalogue and core it generates from, the bundle's and the trigger
# Lambda's sources, the runbooks, and the locked dependency versions the Lambda package is built at.
SYNTH_INPUTS = ("infra", "plugins", "dags", "operators", "sensors", "ssm", "requirements.txt", "uv.lock")
_SKIPPED_PARTS = {"cdk.out", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
HASH_FILE = ".aiops-inputs-sha256"
SYNTH_TIMEOUT_SECONDS = 900

ClientFactory = Callable[[str], Any]  # service name -> boto3 client, for one account


class DeployError(RuntimeError):
    """A stack did not deploy, or a resource was neither created nor covered by a fallback."""


# ---------------------------------------------------------------------------------------------------- synth


def inputs_sha256(repo: Path = REPO) -> str:
    """One digest of every file the synth reads (paths and contents), and of the local context."""
    digest = hashlib.sha256(json.dumps(LOCAL_CONTEXT, sort_keys=True).encode())
    for name in SYNTH_INPUTS:
        root = repo / name
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(repo)
            if _SKIPPED_PARTS.intersection(relative.parts) or path.suffix == ".pyc":
                continue
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def synthesized(cdk_out: Path = CDK_OUT, *, log: Callable[[str], None] = print) -> Path:
    """``cdk_out`` holding the templates of the current sources: ``make synth``'s command, run only when
    the inputs' digest differs from the one recorded by the last synth. Two processes asking at once (two
    test workers, a test session and ``make up``) wait on one lock, so the app is synthesized once."""
    cdk_out.parent.mkdir(parents=True, exist_ok=True)
    with open(cdk_out.parent / ".cdk.out.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = inputs_sha256()
        recorded = cdk_out / HASH_FILE
        if recorded.is_file() and recorded.read_text().strip() == wanted:
            return cdk_out
        log(f"synthesizing the CDK app into {cdk_out} (its inputs changed)")
        started = time.monotonic()
        # Credentials and endpoints make no difference to the synth; they must not leak into it either.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_", "AIOPS_"))}
        context = json.loads((REPO / "infra" / "cdk.json").read_text())["context"] | LOCAL_CONTEXT
        env |= {
            "CDK_OUTDIR": str(cdk_out),
            "CDK_CONTEXT_JSON": json.dumps(context),
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        }
        done = subprocess.run(
            [sys.executable, "app.py"],
            cwd=REPO / "infra",
            env=env,
            capture_output=True,
            text=True,
            timeout=SYNTH_TIMEOUT_SECONDS,
            check=False,
        )
        missing = [
            s
            for s in (SOURCE_STACK, HUB_STACK, MEMBER_STACK, *REGIONAL_STACKS)
            if not _template_path(cdk_out, s).is_file()
        ]
        if done.returncode != 0 or missing:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise DeployError(f"the CDK synth failed (exit {done.returncode}, missing {missing}):\n{tail}")
        recorded.write_text(wanted)
        log(f"synthesized in {time.monotonic() - started:.0f}s")
        return cdk_out


def _template_path(cdk_out: Path, stack: str) -> Path:
    return cdk_out / f"{stack}.template.json"


# ---------------------------------------------------------------------------------------------- clients


def client_factory(
    endpoint_url: str | None = None, *, region: str = REGION, credentials: dict[str, str] | None = None
) -> ClientFactory:
    """boto3 clients for one account: moto_server at ``endpoint_url``, or moto in-process when None."""
    import boto3

    keys = credentials or {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "aws_session_token": "testing",
    }
    session = boto3.session.Session(region_name=region, **keys)
    return lambda service: session.client(service, endpoint_url=endpoint_url)


def member_account_clients(
    hub: ClientFactory, endpoint_url: str | None, account: str, *, region: str = REGION
) -> ClientFactory:
    """Clients in ``account`` and ``region``: CDK's deploy role there (what ``cdk bootstrap --trust <hub>``
    lets the hub's credentials assume), assumed from the hub (moto keys the account of every request on
    its credentials)."""
    return assumed_role_clients(
        hub,
        endpoint_url,
        f"arn:aws:iam::{account}:role/cdk-{BOOTSTRAP_QUALIFIER}-deploy-role-{account}-{region}",
        session_name="aiops-local-deploy",
        region=region,
    )


def assumed_role_clients(
    caller: ClientFactory, endpoint_url: str | None, role_arn: str, *, session_name: str, region: str = REGION
) -> ClientFactory:
    """Clients in ``region`` with the credentials of a session of ``role_arn``, assumed by ``caller``."""
    assumed = caller("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return client_factory(
        endpoint_url,
        region=region,
        credentials={
            "aws_access_key_id": assumed["AccessKeyId"],
            "aws_secret_access_key": assumed["SecretAccessKey"],
            "aws_session_token": assumed["SessionToken"],
        },
    )


# ------------------------------------------------------------------------------------------- the deploy


@dataclass
class DeployedStack:
    name: str
    account: str
    template: dict[str, Any]
    parameters: dict[str, str]  # each parameter's default (cdk deploy --all passes none)
    outputs: dict[str, str]
    physical_ids: dict[str, str]  # logical id -> physical id, of every resource CloudFormation created
    fallbacks: dict[str, str] = field(default_factory=dict)  # logical id -> what stood in for it
    seconds: float = 0.0
    region: str = REGION


@dataclass
class Deployment:
    stacks: dict[str, DeployedStack]
    settings: dict[str, str]  # AIOPS_<SETTING> -> value, from the hub's MWAA configuration options

    def summary(self) -> str:
        return "; ".join(
            f"{s.name} in {s.account}/{s.region}: {len(s.physical_ids)} created by CloudFormation, "
            f"{len(s.fallbacks)} by fallback or left out ({s.seconds:.1f}s)"
            for s in self.stacks.values()
        )


def store_document_content_as_text() -> None:
    """In the process moto runs in: an ``AWS::SSM::Document``'s ``Content`` is a JSON object in the
    templates (as CloudFormation allows) and CloudFormation stores it as text in the document's format;
    moto's CloudFormation
    stores the object itself, and then every call that hashes the document fails with a 500 in that
    account and Region (DescribeDocument, and the tagging API's GetResources, which alarm_sync lists
    resources with). This makes moto store the text, as AWS does. Local only; idempotent."""
    import yaml
    from moto.ssm.models import Document

    create = Document.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    if getattr(create, "stores_text", False):
        return

    def create_as_text(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json.get("Properties", {})
        if isinstance(properties.get("Content"), dict):
            content = properties["Content"]
            as_text = (
                yaml.safe_dump(content, sort_keys=False)
                if properties.get("DocumentFormat") == "YAML"
                else None
            )
            properties = {**properties, "Content": as_text or json.dumps(content)}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    create_as_text.stores_text = True  # type: ignore[attr-defined]
    Document.create_from_cloudformation_json = classmethod(create_as_text)  # type: ignore[method-assign]


def deploy(
    cdk_out: Path,
    hub: ClientFactory,
    *,
    member: ClientFactory | None = None,
    stacks: Iterable[str] = (SOURCE_STACK, HUB_STACK, MEMBER_STACK),
    regional: dict[str, ClientFactory] | None = None,
) -> Deployment:
    """Create ``stacks`` from ``cdk_out`` (source, hub, member: in that order) with the hub account's
    clients, and the member stack with ``member``, the member account's (required for that stack); then
    each regional stack ``regional`` names, with its clients (in its account and Region), once its
    account's home stack (the hub's or the member's) is deployed."""
    wanted = list(stacks)
    deployed: dict[str, DeployedStack] = {}
    hub_account = hub("sts").get_caller_identity()["Account"]
    for name in (SOURCE_STACK, HUB_STACK, MEMBER_STACK):
        if name not in wanted:
            continue
        clients = hub
        if name == MEMBER_STACK:
            if member is None:
                raise DeployError("the member stack needs the member account's clients (member=...)")
            if HUB_STACK not in deployed:
                # as `cdk deploy --all` orders it: its roles trust the hub's execution role
                raise DeployError("the member stack trusts the hub's execution role: deploy AIOps first")
            clients = member
        account = clients("sts").get_caller_identity()["Account"]
        if name != MEMBER_STACK and account != hub_account:
            raise DeployError(f"stack {name} goes into the hub account {hub_account}, not {account}")
        deployed[name] = _create_stack(cdk_out, name, clients, account)
    for name, clients in (regional or {}).items():
        account = clients("sts").get_caller_identity()["Account"]
        region = clients("sts").meta.region_name
        if name != regional_stack_name(account, region):
            raise DeployError(f"stack {name}: its clients are for account {account} in {region}")
        home = HUB_STACK if account == hub_account else MEMBER_STACK
        if home not in deployed:
            # as `cdk deploy --all` orders it: its rules name the forwarding role of the home stack
            raise DeployError(f"stack {name} names the roles of {home}: deploy {home} first")
        deployed[name] = _create_stack(cdk_out, name, clients, account, region)
    settings = mwaa_settings(deployed[HUB_STACK], hub) if HUB_STACK in deployed else {}
    return Deployment(stacks=deployed, settings=settings)


def bootstrap(clients: ClientFactory, account: str, region: str = REGION) -> str:
    """What ``cdk bootstrap`` leaves that the templates use: the asset bucket and the version parameter."""
    from botocore.exceptions import ClientError

    bucket = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{account}-{region}"
    s3 = clients("s3")
    with contextlib.suppress(ClientError):  # already there: another stack of this account made it
        s3.create_bucket(
            Bucket=bucket,
            **(
                {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            ),
        )
    clients("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version",
        Value=BOOTSTRAP_VERSION,
        Type="String",
        Overwrite=True,
    )
    return bucket


def publish_assets(cdk_out: Path, stack: str, clients: ClientFactory, bucket: str) -> list[str]:
    """Upload the stack's file assets (not its own template: CreateStack gets that as its body) to the
    asset bucket under their object keys; a directory asset is zipped as the CDK CLI zips it, and the zip
    kept next to it (an asset's hash is of its content, so the zip never goes stale)."""
    manifest = json.loads((cdk_out / f"{stack}.assets.json").read_text())
    s3 = clients("s3")
    keys = []
    for asset in manifest.get("files", {}).values():
        source = cdk_out / asset["source"]["path"]
        if source.name.endswith(".template.json"):
            continue
        body = _zipped(source) if source.is_dir() else source
        for destination in asset["destinations"].values():
            s3.upload_file(str(body), bucket, destination["objectKey"])
            keys.append(destination["objectKey"])
    return keys


def _zipped(directory: Path) -> Path:
    target = directory.with_name(directory.name + ".local.zip")
    if not target.is_file():
        partial = target.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in directory.rglob("*") if p.is_file()):
                archive.write(path, path.relative_to(directory).as_posix())
        partial.replace(target)
    return target


def _create_stack(
    cdk_out: Path, name: str, clients: ClientFactory, account: str, region: str = REGION
) -> DeployedStack:
    started = time.monotonic()
    template = json.loads(_template_path(cdk_out, name).read_text())
    bucket = bootstrap(clients, account, region)
    publish_assets(cdk_out, name, clients, bucket)
    # Custom resources are backed by a Lambda, which moto runs in Docker: their fallback does their job.
    body = {
        **template,
        "Resources": {
            logical_id: resource
            for logical_id, resource in template["Resources"].items()
            if not resource["Type"].startswith("Custom::")
        },
    }
    # `cdk deploy --all` passes no parameter values either: each must have a default.
    missing = [p for p, spec in template.get("Parameters", {}).items() if "Default" not in spec]
    if missing:
        raise DeployError(f"stack {name}: parameters {missing} have no default value")
    cfn = clients("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(body),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    description = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if description["StackStatus"] != "CREATE_COMPLETE":
        reason = description.get("StackStatusReason", "no reason given")
        raise DeployError(f"stack {name}: {description['StackStatus']} ({reason})")
    physical_ids: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for summary in page["StackResourceSummaries"]:
            # moto lists a resource type it skipped with no logical id: the fallbacks deal with those.
            if "LogicalResourceId" in summary:
                physical_ids[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    stack = DeployedStack(
        name=name,
        account=account,
        template=template,
        parameters={
            p: spec["Default"]
            for p, spec in template.get("Parameters", {}).items()
            if not spec["Type"].startswith("AWS::SSM::Parameter::")  # resolved by CloudFormation only
        },
        outputs={o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])},
        physical_ids=physical_ids,
        region=region,
    )
    resolver = Resolver(stack, clients)
    for logical_id, resource in template["Resources"].items():
        if logical_id in physical_ids:
            continue
        kind = resource["Type"]
        if kind in LEFT_OUT:
            stack.fallbacks[logical_id] = f"left out: {LEFT_OUT[kind]}"
        elif kind in FALLBACKS:
            stack.fallbacks[logical_id] = FALLBACKS[kind](
                logical_id, resolver.value(resource.get("Properties", {})), resolver
            )
        else:
            raise DeployError(
                f"stack {name}: moto's CloudFormation did not create {logical_id} ({kind}) and it has no "
                "fallback (aiops_local.cloudformation.FALLBACKS) nor a reason to leave it out (LEFT_OUT)"
            )
    stack.seconds = time.monotonic() - started
    return stack


# ------------------------------------------------------------------------------------- the hub's settings


def mwaa_settings(hub_stack: DeployedStack, clients: ClientFactory) -> dict[str, str]:
    """``AIOPS_<SETTING>`` for every ``aiops.<setting>`` configuration option of the hub's MWAA environment,
    its references resolved against the created resources: what ``startup.sh`` exports on MWAA."""
    environments = [
        r for r in hub_stack.template["Resources"].values() if r["Type"] == "AWS::MWAA::Environment"
    ]
    if len(environments) != 1:
        raise DeployError(
            f"stack {hub_stack.name}: expected one AWS::MWAA::Environment, found {len(environments)}"
        )
    options = Resolver(hub_stack, clients).value(
        environments[0]["Properties"].get("AirflowConfigurationOptions", {})
    )
    return {
        f"AIOPS_{key.removeprefix('aiops.').upper()}": str(value)
        for key, value in options.items()
        if key.startswith("aiops.")
    }


# ------------------------------------------------------------------------------ intrinsics, for fallbacks


class Resolver:
    """Resolves a template value against a created stack: Ref, Fn::GetAtt (the attributes the fallbacks'
    properties use), Fn::Join, Fn::Sub, Fn::Select, Fn::ImportValue. Anything else fails, naming it."""

    def __init__(self, stack: DeployedStack, clients: ClientFactory) -> None:
        self.stack = stack
        self.clients = clients
        self.pseudo = {
            "AWS::AccountId": stack.account,
            "AWS::Region": stack.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack.name,
            "AWS::NoValue": None,
        }

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                return self.get_att(*(argument.split(".", 1) if isinstance(argument, str) else argument))
            if key == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self.value(part)) for part in self.value(parts))
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::Select":
                index, items = argument
                return self.value(items)[int(self.value(index))]
            if key == "Fn::ImportValue":
                return self.import_value(self.value(argument))
            if key.startswith("Fn::"):
                raise DeployError(f"stack {self.stack.name}: {key} is not resolved for fallbacks")
        return {key: self.value(item) for key, item in node.items()}

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.stack.parameters:
            return self.stack.parameters[name]
        if name in self.stack.physical_ids:
            return self.stack.physical_ids[name]
        raise DeployError(f"stack {self.stack.name}: Ref {name}: no such parameter or created resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        physical = self.ref(logical_id)
        kind = self.stack.template["Resources"][logical_id]["Type"]
        if (kind, attribute) == ("AWS::S3::Bucket", "Arn"):
            return f"arn:aws:s3:::{physical}"
        if (kind, attribute) == ("AWS::EC2::SecurityGroup", "GroupId"):
            return physical
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return physical.rstrip("/").rsplit("/", 1)[1]
        if (kind, attribute) == ("AWS::SQS::Queue", "Arn"):
            sqs = self.clients("sqs")
            return sqs.get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        if (kind, attribute) == ("AWS::Events::Rule", "Arn"):
            return self.clients("events").describe_rule(Name=physical.split("|")[-1])["Arn"]
        if (kind, attribute) == ("AWS::Lambda::Function", "Arn"):
            return self.clients("lambda").get_function(FunctionName=physical)["Configuration"]["FunctionArn"]
        if (kind, attribute) == ("AWS::IAM::Role", "Arn"):
            return self.clients("iam").get_role(RoleName=physical)["Role"]["Arn"]
        raise DeployError(
            f"stack {self.stack.name}: Fn::GetAtt {logical_id}.{attribute} ({kind}) is not resolved"
        )

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {k: self.value(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        # ${!Literal} is the literal ${Literal}.
        return re.sub(r"\$\{([^!}][^}]*)\}", replace, text).replace("${!", "${")

    def import_value(self, export: str) -> str:
        for page in self.clients("cloudformation").get_paginator("list_exports").paginate():
            for item in page["Exports"]:
                if item["Name"] == export:
                    return item["Value"]
        raise DeployError(f"stack {self.stack.name}: no export named {export}")


# ------------------------------------------------------------------------------------------ the fallbacks
# Each takes the resource's logical id, its properties (resolved) and the resolver, makes the API calls
# CloudFormation would, and says in one line what it did.


def _is_tls_only_deny(statement: dict[str, Any]) -> bool:
    return statement.get("Effect") == "Deny" and statement.get("Condition") == {
        "Bool": {"aws:SecureTransport": "false"}
    }


def _is_conditioned_deny(statement: dict[str, Any]) -> bool:
    return statement.get("Effect") == "Deny" and "Condition" in statement


def _bucket_policy(logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
    """The policy without its conditioned denies: moto's S3 applies a bucket policy's deny to every
    request whatever its condition. So the TLS-only deny (the local endpoint is plain HTTP anyway) and the
    audit archive's "PutObject only by the audit writer" (``aws:PrincipalArn``) would refuse every read
    and write. Their presence in AWS is checked on the template (tests/infra)."""
    document = props["PolicyDocument"]
    statements = [s for s in document["Statement"] if not _is_conditioned_deny(s)]
    resolver.clients("s3").put_bucket_policy(
        Bucket=props["Bucket"], Policy=json.dumps({**document, "Statement": statements})
    )
    dropped = len(document["Statement"]) - len(statements)
    return f"PutBucketPolicy on {props['Bucket']} ({dropped} conditioned deny statements left out)"


def _topic_policy(logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
    sns = resolver.clients("sns")
    for topic in props["Topics"]:
        sns.set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
        )
    return f"SetTopicAttributes Policy on {', '.join(props['Topics'])}"


def _event_bus_policy(logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
    bus = props.get("EventBusName", "default")
    statement = {"Sid": props["StatementId"], **props["Statement"]}  # its Sid is the StatementId
    resolver.clients("events").put_permission(
        EventBusName=bus, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )
    return f"PutPermission on event bus {bus} ({props['StatementId']})"


def _config_rule(logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
    rule = {key: value for key, value in props.items() if key != "InputParameters"}
    if "InputParameters" in props:  # an object in the template, a JSON string in the API
        rule["InputParameters"] = json.dumps(props["InputParameters"])
    resolver.clients("config").put_config_rule(ConfigRule=rule)
    return f"PutConfigRule {props['ConfigRuleName']}"


def _queue_policy(logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
    sqs = resolver.clients("sqs")
    for queue in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    return f"SetQueueAttributes Policy on {', '.join(props['Queues'])}"


def _security_group_egress(logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
    permission: dict[str, Any] = {"IpProtocol": str(props["IpProtocol"])}
    for port in ("FromPort", "ToPort"):
        if port in props:
            permission[port] = int(props[port])
    description = {"Description": props["Description"]} if "Description" in props else {}
    if "DestinationSecurityGroupId" in props:
        permission["UserIdGroupPairs"] = [{"GroupId": props["DestinationSecurityGroupId"], **description}]
    elif "CidrIp" in props:
        permission["IpRanges"] = [{"CidrIp": props["CidrIp"], **description}]
    elif "CidrIpv6" in props:
        permission["Ipv6Ranges"] = [{"CidrIpv6": props["CidrIpv6"], **description}]
    elif "DestinationPrefixListId" in props:
        permission["PrefixListIds"] = [{"PrefixListId": props["DestinationPrefixListId"], **description}]
    else:
        raise DeployError(f"{logical_id}: an egress rule with no destination")
    resolver.clients("ec2").authorize_security_group_egress(
        GroupId=props["GroupId"], IpPermissions=[permission]
    )
    return f"AuthorizeSecurityGroupEgress on {props['GroupId']}"


def _event_invoke_config(logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
    resolver.clients("lambda").put_function_event_invoke_config(
        **{
            key: props[key]
            for key in (
                "FunctionName",
                "Qualifier",
                "MaximumRetryAttempts",
                "MaximumEventAgeInSeconds",
                "DestinationConfig",
            )
            if key in props
        }
    )
    return f"PutFunctionEventInvokeConfig on {props['FunctionName']}"


def _alarm(logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
    # Without AlarmName, CloudFormation names the alarm <stack>-<logical id>-<random suffix>; here without
    # the suffix, so the name says which resource it stands for.
    name = props.pop("AlarmName", None) or f"{resolver.stack.name}-{logical_id}"
    resolver.clients("cloudwatch").put_metric_alarm(AlarmName=name, **props)
    return f"PutMetricAlarm {name}"


def _bucket_deployment(logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
    """CDK's BucketDeployment: unzip each source object into the destination bucket (its Lambda's job)."""
    s3 = resolver.clients("s3")
    prefix = props.get("DestinationBucketKeyPrefix", "")
    written = 0
    for bucket, key in zip(props["SourceBucketNames"], props["SourceObjectKeys"], strict=True):
        archive = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        for member in archive.infolist():
            if not member.is_dir():
                s3.put_object(
                    Bucket=props["DestinationBucketName"],
                    Key=prefix + member.filename,
                    Body=archive.read(member),
                )
                written += 1
    return f"{written} objects unzipped into {props['DestinationBucketName']} (its Lambda's job)"


FALLBACKS: dict[str, Callable[[str, dict[str, Any], Resolver], str]] = {
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::EC2::SecurityGroupEgress": _security_group_egress,
    "AWS::Lambda::EventInvokeConfig": _event_invoke_config,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::Events::EventBusPolicy": _event_bus_policy,
    "AWS::Config::ConfigRule": _config_rule,
    "Custom::CDKBucketDeployment": _bucket_deployment,
}

# Types with no effect locally, left out, and why (the README's table says the same).
LEFT_OUT = {
    "AWS::MWAA::Environment": "the local stack's airflow standalone is the environment; its aiops.* "
    "options are the stack's AIOPS_* settings (mwaa_settings)",
    "AWS::Rbin::Rule": "moto has no Recycle Bin API; nothing here reads the rule (the snapshot job's "
    "Recycle Bin calls are tested with botocore's Stubber)",
    "Custom::AWS": "CDK's AwsCustomResource: the hub's reads of the bundle's S3 object versions, which only "
    "the MWAA environment takes (left out above)",
}
