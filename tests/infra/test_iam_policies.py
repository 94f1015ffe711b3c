"""Walk every IAM statement of every synthesized template (identity policies, trust policies and resource
policies) and hold it to the rules of SPEC.md's roles table: per-action least privilege, never ``*``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiops_infra.audit_writer import AUDIT_WRITER_ROLE_NAME
from aiops_infra.iam_actions import supports_no_resource_level_permissions
from aiops_infra.remediation_roles import remediation_role_name
from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.maintenance import job_permissions
from tests.infra.conftest import MEMBER_STACKS

# Where statements live, by resource type: (property path to the policy document(s), is a key policy)
POLICY_PROPERTIES = {
    "AWS::IAM::Role": ("AssumeRolePolicyDocument", "Policies"),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
}


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def statements(template: dict) -> Iterator[tuple[str, str, dict]]:
    """(logical id, resource type, statement) for every statement in the template."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in POLICY_PROPERTIES.get(resource["Type"], ()):
            documents = (
                [p["PolicyDocument"] for p in props.get(key, [])] if key == "Policies" else [props.get(key)]
            )
            for document in documents:
                for statement in (document or {}).get("Statement", []):
                    yield logical_id, resource["Type"], statement
        if resource["Type"] == "AWS::Events::EventBusPolicy":
            yield logical_id, resource["Type"], props["Statement"]


def test_templates_have_policies_to_walk(any_synth):
    walked = [s for template in any_synth.templates.values() for s in statements(template)]
    assert len(walked) > 30


def test_no_allow_statement_grants_a_wildcard_action(any_synth):
    for stack, template in any_synth.templates.items():
        for logical_id, _, statement in statements(template):
            assert "NotAction" not in statement, (stack, logical_id)
            if statement["Effect"] != "Allow":
                continue  # a Deny may be broad: it only takes away (the TLS-only policies deny s3:* etc.)
            for action in _as_list(statement["Action"]):
                assert "*" not in action, f"{stack}/{logical_id}: wildcard action {action!r}"


def test_resource_star_only_for_actions_without_resource_level_permissions(any_synth):
    for stack, template in any_synth.templates.items():
        for logical_id, resource_type, statement in statements(template):
            if (
                statement["Effect"] != "Allow"
                or "Principal" in statement
                and resource_type == "AWS::IAM::Role"
            ):
                continue  # trust policies name no resource
            if resource_type == "AWS::KMS::Key":
                continue  # in a key policy, "*" means this key
            if "NotResource" in statement:
                # The one documented exception: MWAA's Celery queue key is AWS owned (not in this account)
                # and usable only through SQS.
                assert set(statement["Condition"]["StringLike"]) == {"kms:ViaService"}, (stack, logical_id)
                assert all(a.startswith("kms:") for a in _as_list(statement["Action"]))
                continue
            if "*" in _as_list(statement["Resource"]):
                broad = {
                    a for a in _as_list(statement["Action"]) if not supports_no_resource_level_permissions(a)
                }
                assert not broad, f"{stack}/{logical_id}: Resource '*' for {sorted(broad)}"


def _role_actions(role: dict) -> list[str]:
    return [
        action
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        for action in _as_list(statement["Action"])
    ]


def test_each_remediation_role_holds_exactly_its_entry_actions(any_synth, synth_variant):
    for stack in ("AIOps", *MEMBER_STACKS) if any_synth is synth_variant else ("AIOps",):
        roles = {
            r["Properties"].get("RoleName"): r for r in any_synth.resources(stack, "AWS::IAM::Role").values()
        }
        for entry in catalogue().values():
            role = roles[remediation_role_name(entry.id)]
            actions = _role_actions(role)
            assert sorted(actions) == sorted(entry.permissions), (stack, entry.id)
            assert len(actions) == len(set(actions))


def test_remediation_roles_scope_each_action_to_its_own_service(any_synth, synth_variant):
    """Every ARN a remediation role names belongs to the service of the actions granted on it, with at
    most one wildcard (the resource name), in this account or the hub's."""
    for stack in ("AIOps", *MEMBER_STACKS) if any_synth is synth_variant else ("AIOps",):
        roles = {
            r["Properties"].get("RoleName"): r for r in any_synth.resources(stack, "AWS::IAM::Role").values()
        }
        for entry in catalogue().values():
            for policy in roles[remediation_role_name(entry.id)]["Properties"]["Policies"]:
                for statement in policy["PolicyDocument"]["Statement"]:
                    services = {a.split(":")[0] for a in _as_list(statement["Action"])}
                    for resource in _as_list(statement["Resource"]):
                        if resource == "*":
                            continue
                        rendered = _render(resource)
                        assert {rendered.split(":")[2]} == services, (stack, entry.id, rendered, services)
                        # An Auto Scaling group's ARN also carries the group's UUID, which no event names:
                        # that segment is the documented ARN format's, not a second name wildcard.
                        rendered = rendered.replace(":autoScalingGroup:*:", ":autoScalingGroup:{GroupId}:")
                        assert rendered.count("*") <= 1, (stack, entry.id, rendered)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::Join" in value:
        return value["Fn::Join"][0].join(_render(part) for part in value["Fn::Join"][1])
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Fn::ImportValue" in value:
        return "${import:" + _render(value["Fn::ImportValue"]) + "}"
    raise AssertionError(f"unexpected intrinsic {value}")


def _policies_of(template: dict, role_logical_id: str) -> list[dict]:
    """Every statement attached to a role: its inline Policies and AWS::IAM::Policy resources naming it."""
    role = template["Resources"][role_logical_id]
    found = [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for resource in template["Resources"].values():
        if (
            resource["Type"] == "AWS::IAM::Policy"
            and {"Ref": role_logical_id} in resource["Properties"]["Roles"]
        ):
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def _role_by_trust(template: dict, service: str) -> str:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        principals = [
            s["Principal"].get("Service")
            for s in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        ]
        if any(service in _as_list(p) for p in principals if p):
            return logical_id
    raise AssertionError(f"no role trusts {service}")


def test_mwaa_execution_role_does_only_what_it_must(any_synth):
    template = any_synth.templates["AIOps"]
    actions = {
        a
        for s in _policies_of(template, _role_by_trust(template, "airflow.amazonaws.com"))
        for a in _as_list(s["Action"])
    }
    services = {a.split(":")[0] for a in actions}
    # MWAA itself, assuming remediation roles, audit/state tables, diagnostics, notifications, logs, metrics.
    assert services == {"airflow", "s3", "logs", "cloudwatch", "sqs", "kms", "sts", "dynamodb", "sns"}
    # assuming a remediation role names the human behind the session (SourceIdentity), which needs both
    assert {a for a in actions if a.startswith("sts:")} == {"sts:AssumeRole", "sts:SetSourceIdentity"}
    # IAM action names are case-insensitive (the source-bucket reads are the reference's lower-case names).
    assert {
        a for a in actions if a.startswith("s3:") and not a.lower().startswith(("s3:get", "s3:list"))
    } == {"s3:PutObject", "s3:DeleteObject"}
    # Deletes only the maintenance jobs' own plans and journals.
    deleted = {
        _render(r)
        for s in _policies_of(template, _role_by_trust(template, "airflow.amazonaws.com"))
        if "s3:DeleteObject" in _as_list(s["Action"])
        for r in _as_list(s["Resource"])
    }
    assert len(deleted) == 1 and next(iter(deleted)).endswith("/maintenance/*"), deleted
    assert {a for a in actions if a.startswith("sns:")} == {"sns:Publish"}
    assert not {a for a in actions if a.startswith("dynamodb:")} - {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
    }
    # Scan only where audit_reconciler lists its claims: the state table, and no other resource.
    tables = {
        logical_id: resource["Properties"].get("TableName")
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    [state_table] = [logical_id for logical_id, name in tables.items() if name == "AIOpsRemediationState"]
    scanned = {
        _render(resource)
        for s in _policies_of(template, _role_by_trust(template, "airflow.amazonaws.com"))
        if "dynamodb:Scan" in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }
    assert scanned == {"${" + state_table + ".Arn}"}


def test_mwaa_execution_role_assumes_only_remediation_and_maintenance_roles_and_the_audit_writer(
    synth, synth_variant
):
    for result, accounts in (
        (synth, ["${AWS::AccountId}"]),
        (synth_variant, ["${AWS::AccountId}", "111111111111", "222222222222"]),
    ):
        members = accounts[1:]
        template = result.templates["AIOps"]
        statements_ = _policies_of(template, _role_by_trust(template, "airflow.amazonaws.com"))
        assumed = {
            _render(r)
            for s in statements_
            if "sts:AssumeRole" in _as_list(s["Action"])
            for r in _as_list(s["Resource"])
        }
        (writer,) = [
            logical_id
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::IAM::Role"
            and resource["Properties"].get("RoleName") == AUDIT_WRITER_ROLE_NAME
        ]
        maintenance_roles = {
            "${" + logical_id + ".Arn}"
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::IAM::Role"
            and str(resource["Properties"].get("RoleName", "")).startswith("AIOpsMaintenance-")
        }
        assert len(maintenance_roles) == len(job_permissions())
        assert assumed == {
            *(f"arn:aws:iam::{account}:role/{remediation_role_name('*')}" for account in accounts),
            "${" + writer + ".Arn}",
            *maintenance_roles,
            # alarm_sync's role in each member account: the one job that acts in every account.
            *(f"arn:aws:iam::{account}:role/AIOpsMaintenance-alarm_sync" for account in members),
        }


def test_trigger_lambda_role_only_invokes_the_airflow_rest_api(any_synth, synth):
    template = any_synth.templates["AIOps"]
    [trigger_role, _] = any_synth.trigger_function()[1]["Properties"]["Role"]["Fn::GetAtt"]
    statements_ = _policies_of(template, trigger_role)
    by_action = {a: s for s in statements_ for a in _as_list(s["Action"])}
    kept_events = {"sqs:SendMessage"}  # the on-failure destination
    redrive = {  # the scheduled redrive: read, delete, give back
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }
    assert set(by_action) == {
        "airflow:InvokeRestApi",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        *kept_events,
        *redrive,
    }
    queues = {
        logical_id: queue
        for logical_id, queue in template["Resources"].items()
        if queue["Type"] == "AWS::SQS::Queue"
    }
    failed_events = next(lid for lid in queues if "FailedEvents" in lid)
    rules_dlq = next(lid for lid in queues if "DeadLetterQueue" in lid)
    resources: dict[str, set[str]] = {}
    for statement in statements_:
        for action in _as_list(statement["Action"]):
            resources.setdefault(action, set()).update(_render(r) for r in _as_list(statement["Resource"]))
    arn = "${{{}.Arn}}".format
    assert resources["sqs:SendMessage"] == {arn(failed_events)}
    for action in redrive - {"sqs:GetQueueAttributes", "sqs:GetQueueUrl"}:
        assert resources[action] == {arn(failed_events), arn(rules_dlq)}, action
    environment_role = "matcarv-aiops/User" if any_synth is synth else "aiops-prod/Op"
    assert _render(by_action["airflow:InvokeRestApi"]["Resource"]) == (
        f"arn:aws:airflow:${{AWS::Region}}:${{AWS::AccountId}}:role/{environment_role}"
    )


def test_spec_roles_exist_by_name(synth, synth_variant):
    names = {r["Properties"].get("RoleName") for r in synth.resources("AIOps", "AWS::IAM::Role").values()}
    assert {"AIOpsSSMAutomationRole", "AIOpsEventBridgeRole"} <= names
    for stack in MEMBER_STACKS:
        member = {
            r["Properties"].get("RoleName") for r in synth_variant.resources(stack, "AWS::IAM::Role").values()
        }
        assert {"AIOpsSSMAutomationRole", "AIOpsEventBridgeRole"} <= member
