"""The audit writer's own role, run under moto's IAM enforcement with the policy the hub stack synthesizes:
it puts new records and their copies, cannot overwrite a record (the conditional put), and cannot update,
delete or batch-write one; the execution role's own grants on the audit table put nothing.

What moto does not evaluate is checked over the synthesized template instead (the static tests below):
- DynamoDB resource policies (moto stores them, never applies them): the table's deny of UpdateItem,
  DeleteItem, BatchWriteItem and PartiQL writes to all, and of PutItem to all but the writer;
- trust-policy conditions other than sts:ExternalId, and a role's ARN as principal when the caller is a
  role session: the writer's trust (the execution role alone, session name ``aiops-audit-writer``);
- bucket policies' conditions: the archive's deny of puts by anyone but the writer.
Two things moto does differently from IAM, which the enforcement fixture makes it do as IAM does: it
authorises every DynamoDB request against the resource ``*`` (so a policy scoped to a table never
matches; the fixture names the table, or index, the request acts on), and it authorises TransactWriteItems
as an action of its own, which IAM does not have (each Put in it is authorised as PutItem).
"""

from __future__ import annotations

import json
import math
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aiops_infra.audit_writer import AUDIT_WRITER_ROLE_NAME
from matcarv_aiops.audit import ARCHIVE_PREFIX, WRITER_SESSION_NAME, AuditWriter, archive_key
from matcarv_aiops.aws import hub_client
from matcarv_aiops.settings import Settings
from tests.records import audit_record

ACCOUNT = "123456789012"
WRITER_ARN = f"arn:aws:iam::{ACCOUNT}:role/{AUDIT_WRITER_ROLE_NAME}"


# --- the synthesized template --------------------------------------------------------------------
def _statements(document: dict) -> list[dict]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _logical_id(synth, resource_type: str, prefix: str) -> str:
    (logical_id,) = [lid for lid in synth.resources("AIOps", resource_type) if lid.startswith(prefix)]
    return logical_id


def _writer_role(synth) -> tuple[str, dict]:
    ((logical_id, role),) = [
        (lid, role)
        for lid, role in synth.resources("AIOps", "AWS::IAM::Role").items()
        if role["Properties"].get("RoleName") == AUDIT_WRITER_ROLE_NAME
    ]
    return logical_id, role


def _execution_role(synth) -> str:
    return _logical_id(synth, "AWS::IAM::Role", "MwaaExecutionRole")


def _role_statements(synth) -> dict[str, list[dict]]:
    """Every role's Allow statements: its inline policies and the AWS::IAM::Policy resources attached."""
    found: dict[str, list[dict]] = {lid: [] for lid in synth.resources("AIOps", "AWS::IAM::Role")}
    for lid, role in synth.resources("AIOps", "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            found[lid] += _statements(policy["PolicyDocument"])
    for policy in synth.resources("AIOps", "AWS::IAM::Policy").values():
        for role in policy["Properties"].get("Roles", []):
            found[role["Ref"]] += _statements(policy["Properties"]["PolicyDocument"])
    return {lid: [s for s in statements if s["Effect"] == "Allow"] for lid, statements in found.items()}


def _resolve(value: Any, arns: dict[str, str]) -> Any:
    """A template value with the intrinsics these policies use filled in (moto's account and region)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_resolve(v, arns) for v in value]
    if "Ref" in value:
        return {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": ACCOUNT}[value["Ref"]]
    if "Fn::GetAtt" in value:
        return arns[value["Fn::GetAtt"][0]]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve(part, arns) for part in parts)
    if any(key.startswith("Fn::") for key in value):
        raise ValueError(f"no value for {value!r}")
    return {key: _resolve(v, arns) for key, v in value.items()}


def _grants_on_audit_table(synth) -> dict[str, list[str]]:
    table = _logical_id(synth, "AWS::DynamoDB::Table", "TablesAuditLog")
    grants: dict[str, list[str]] = {}
    for role, statements in _role_statements(synth).items():
        for statement in statements:
            if table in json.dumps(statement.get("Resource")):
                grants.setdefault(role, []).extend(_listed(statement["Action"]))
    return {role: sorted(actions) for role, actions in grants.items()}


# --- moto with IAM enforced ---------------------------------------------------------------------
@pytest.fixture
def enforced(aws, synth, monkeypatch):
    """The writer role (the template's policy, resolved) and a user standing in for the execution role
    (the template's grants on the audit table, and sts:AssumeRole on the writer), then every request
    authorised by moto as these principals. Yields (settings naming the writer, the writer's policy)."""
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.access_control import IAMRequestBase

    table_id = _logical_id(synth, "AWS::DynamoDB::Table", "TablesAuditLog")
    arns = {
        table_id: f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{aws.platform.audit_table}",
        _logical_id(
            synth, "AWS::S3::Bucket", "AuditArchive"
        ): f"arn:aws:s3:::{aws.platform.audit_archive_bucket}",
    }
    _, role = _writer_role(synth)
    (writer_policy,) = role["Properties"]["Policies"]
    iam = boto3.client("iam")
    iam.create_role(
        RoleName=AUDIT_WRITER_ROLE_NAME,
        AssumeRolePolicyDocument=json.dumps(
            {  # moto checks the principal of a user only; the real trust is checked statically below
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/mwaa-execution"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    document = _resolve(writer_policy["PolicyDocument"], arns)

    def install(policy: dict) -> None:
        """The writer's policy, set as an administrator would (outside the enforcement)."""
        enforced_from = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = math.inf
        try:
            iam.put_role_policy(
                RoleName=AUDIT_WRITER_ROLE_NAME,
                PolicyName=writer_policy["PolicyName"],
                PolicyDocument=json.dumps(policy),
            )
        finally:
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = enforced_from

    install(document)
    execution_grants = [
        _resolve(statement, {**arns, table_id: arns[table_id]})
        for statement in _role_statements(synth)[_execution_role(synth)]
        if table_id in json.dumps(statement.get("Resource"))
    ]
    iam.create_user(UserName="mwaa-execution")
    iam.put_user_policy(
        UserName="mwaa-execution",
        PolicyName="AuditTableAndWriter",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    *execution_grants,
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": WRITER_ARN},
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="mwaa-execution")["AccessKey"]
    for variable in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    def acted_on(self) -> str:
        """The table (or index) a request acts on, as IAM authorises it."""
        params = getattr(self, "params", {})
        table = (
            params.get("TableName")
            or next(iter(params.get("RequestItems", {})), None)
            or next(
                (op["TableName"] for item in params.get("TransactItems", []) for op in item.values()), None
            )
        )
        if table is None:
            return "*"
        arn = f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"
        return f"{arn}/index/{params['IndexName']}" if params.get("IndexName") else arn

    monkeypatch.setattr(DynamoHandler, "_determine_resource", acted_on, raising=False)
    original = IAMRequestBase.check_action_permitted

    def as_iam_authorises(self, resource: str) -> None:
        if self._action == "dynamodb:TransactWriteItems":  # IAM: each of its Puts is a PutItem
            self._action = "dynamodb:PutItem"
        original(self, resource)

    monkeypatch.setattr(IAMRequestBase, "check_action_permitted", as_iam_authorises)
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    settings = Settings(**{**aws.as_flat(), "audit_writer_role_arn": WRITER_ARN})
    yield settings, document, install


def _writer_session_client(settings: Settings, service: str):
    from matcarv_aiops.audit import writer_client

    return writer_client(service, settings)


def _denied(call) -> bool:
    """Whether moto refused the call for want of permission. It answers a DynamoDB request it refuses
    with an XML error that botocore cannot parse as JSON: the code is then the HTTP status."""
    with pytest.raises(ClientError) as refused:
        call()
    error = refused.value.response["Error"]
    return error["Code"] in ("AccessDenied", "AccessDeniedException") or (
        error["Code"] == "403" and "<Code>AccessDenied</Code>" in error.get("Message", "")
    )


def test_the_writer_role_adds_records_and_copies_and_cannot_overwrite_one(enforced):
    settings, _, _ = enforced
    writer = AuditWriter(settings)
    first = audit_record()
    assert writer.write(first) is True
    assert writer.write(audit_record(first.execution_id, outcome="FAILURE", action="rewritten")) is False
    batch = [audit_record() for _ in range(3)]
    assert writer.write_all([audit_record(first.execution_id, action="re-run"), *batch]) == 3
    for record in (first, *batch):
        assert writer.read(record.execution_id) == record
    s3 = _writer_session_client(settings, "s3")
    body = s3.get_object(Bucket=settings.platform.audit_archive_bucket, Key=archive_key(first.execution_id))
    assert json.loads(body["Body"].read()) == first.to_item()


def test_the_writer_role_cannot_update_delete_or_batch_write(enforced):
    settings, _, _ = enforced
    record = audit_record()
    AuditWriter(settings).write(record)
    ddb = _writer_session_client(settings, "dynamodb")
    table, key = settings.platform.audit_table, {"executionId": {"S": record.execution_id}}
    update = {"UpdateExpression": "SET outcome = :o", "ExpressionAttributeValues": {":o": {"S": "SUCCESS"}}}
    assert _denied(lambda: ddb.update_item(TableName=table, Key=key, **update))
    assert _denied(lambda: ddb.delete_item(TableName=table, Key=key))
    assert _denied(lambda: ddb.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": key}}]}))
    assert AuditWriter(settings).read(record.execution_id) == record


def test_without_put_in_its_policy_the_writer_is_refused(enforced):
    # Proves enforcement is on: the same write fails once PutItem leaves the role's policy.
    settings, document, install = enforced
    statements = [
        {**statement, "Action": [a for a in _listed(statement["Action"]) if a != "dynamodb:PutItem"]}
        for statement in document["Statement"]
    ]
    install({**document, "Statement": [s for s in statements if s["Action"]]})
    assert _denied(lambda: AuditWriter(settings).write(audit_record()))
    assert _denied(lambda: AuditWriter(settings).write_all([audit_record()]))


def test_the_execution_roles_grants_put_nothing_into_the_audit_table(enforced):
    settings, _, _ = enforced
    record = audit_record()
    AuditWriter(settings).write(record)
    ddb = hub_client("dynamodb", settings)  # the execution role's own credentials (the stand-in user's)
    assert ddb.get_item(
        TableName=settings.platform.audit_table, Key={"executionId": {"S": record.execution_id}}
    )
    item = {k: {"S": v} for k, v in audit_record().to_item().items()}
    assert _denied(lambda: ddb.put_item(TableName=settings.platform.audit_table, Item=item))


# --- what moto does not evaluate, over the template ------------------------------------------------
def test_only_the_writer_may_put_and_the_execution_role_only_reads(any_synth):
    writer, _ = _writer_role(any_synth)
    assert _grants_on_audit_table(any_synth) == {
        writer: ["dynamodb:PutItem"],
        _execution_role(any_synth): ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"],
    }


def test_the_writer_role_may_put_and_copy_only(any_synth):
    _, role = _writer_role(any_synth)
    (policy,) = role["Properties"]["Policies"]
    actions = sorted(a for s in _statements(policy["PolicyDocument"]) for a in _listed(s["Action"]))
    assert actions == ["dynamodb:PutItem", "s3:GetObject", "s3:PutObject"]
    copies = next(s for s in _statements(policy["PolicyDocument"]) if "s3:PutObject" in _listed(s["Action"]))
    assert json.dumps(copies["Resource"]).endswith(f'"/{ARCHIVE_PREFIX}*"]]}}')
    assert role["Properties"]["MaxSessionDuration"] == 3600


def test_only_the_execution_role_may_assume_the_writer_under_its_session_name(any_synth):
    writer, role = _writer_role(any_synth)
    (statement,) = _statements(role["Properties"]["AssumeRolePolicyDocument"])
    assert statement["Principal"] == {"AWS": {"Fn::GetAtt": [_execution_role(any_synth), "Arn"]}}
    assert statement["Condition"] == {"StringEquals": {"sts:RoleSessionName": WRITER_SESSION_NAME}}
    assumers = [
        role_id
        for role_id, statements in _role_statements(any_synth).items()
        for s in statements
        if "sts:AssumeRole" in _listed(s["Action"]) and writer in json.dumps(s["Resource"])
    ]
    assert assumers == [_execution_role(any_synth)]


def test_the_archive_refuses_puts_from_anyone_but_the_writer(any_synth):
    bucket = _logical_id(any_synth, "AWS::S3::Bucket", "AuditArchive")
    (policy,) = [
        p
        for p in any_synth.resources("AIOps", "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    (deny,) = [
        s
        for s in _statements(policy["Properties"]["PolicyDocument"])
        if s.get("Sid") == "OnlyTheAuditWriterCopies"
    ]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"} and deny["Action"] == "s3:PutObject"
    writer = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert json.dumps(writer).endswith(f':role/{AUDIT_WRITER_ROLE_NAME}"]]}}')


def test_the_dags_are_told_the_writer_role(any_synth):
    (environment,) = any_synth.resources("AIOps", "AWS::MWAA::Environment").values()
    options = environment["Properties"]["AirflowConfigurationOptions"]
    assert json.dumps(options["aiops.audit_writer_role_arn"]).endswith(f':role/{AUDIT_WRITER_ROLE_NAME}"]]}}')
