"""The audit log's indexes in the CDK app are the core's (``AUDIT_INDEXES``), and the DAGs may Query
them, and only them, on the audit table; the audit step may write its run's note (the User role)."""

from __future__ import annotations

from matcarv_aiops.audit import AUDIT_INDEXES
from tests.infra.test_iam_policies import _as_list, _policies_of, _render, _role_by_trust


def test_the_audit_table_has_the_cores_indexes(synth):
    template = synth.templates["AIOps"]
    [audit] = [
        r for r in template["Resources"].values()
        if r["Type"] == "AWS::DynamoDB::Table" and r["Properties"].get("TableName") == "AutomationAuditLog"
    ]  # fmt: skip
    indexes = {
        index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
        for index in audit["Properties"]["GlobalSecondaryIndexes"]
    }
    assert indexes == AUDIT_INDEXES
    assert {i["Projection"]["ProjectionType"] for i in audit["Properties"]["GlobalSecondaryIndexes"]} == {
        "ALL"
    }


def test_the_execution_role_queries_only_the_audit_indexes_and_notes_runs_as_user(synth):
    template = synth.templates["AIOps"]
    [audit] = [
        logical_id
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::DynamoDB::Table" and r["Properties"].get("TableName") == "AutomationAuditLog"
    ]
    statements = _policies_of(template, _role_by_trust(template, "airflow.amazonaws.com"))
    queried = {
        _render(resource)
        for s in statements
        if "dynamodb:Query" in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }
    assert "${" + audit + ".Arn}/index/*" in queried
    assert "${" + audit + ".Arn}" not in queried  # the table itself is never queried, let alone scanned
    invoked = {
        _render(resource)
        for s in statements
        if "airflow:InvokeRestApi" in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }
    assert invoked == {"arn:aws:airflow:${AWS::Region}:${AWS::AccountId}:role/matcarv-aiops/User"}
