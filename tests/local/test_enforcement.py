"""The local stack's adaptation of deployed roles to moto's IAM (aiops_local.enforcement): pure functions,
no server."""

from __future__ import annotations

from aiops_local.enforcement import _allows, _trust_for_moto

EXECUTION_ROLE = "arn:aws:iam::123456789012:role/AIOpsMwaaExecutionRole"
WORKER = "arn:aws:sts::123456789012:assumed-role/AIOpsMwaaExecutionRole/airflow-worker"
ADMIN = "arn:aws:iam::123456789012:user/aiops-local-admin"


def trust(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_a_trust_in_the_execution_role_also_names_its_session_and_keeps_its_condition():
    condition = {"Null": {"sts:SourceIdentity": "false"}}
    found = _trust_for_moto(
        trust(
            {
                "Effect": "Allow",
                "Principal": {"AWS": EXECUTION_ROLE},
                "Action": "sts:AssumeRole",
                "Condition": condition,
            }
        ),
        EXECUTION_ROLE,
        WORKER,
        None,
    )
    (statement,) = found["Statement"]
    assert statement["Principal"] == {"AWS": [EXECUTION_ROLE, WORKER]}
    assert statement["Condition"] == condition


def test_a_service_trust_is_given_to_its_stand_in_only_where_one_is_named():
    service = {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    assert _trust_for_moto(trust(service), EXECUTION_ROLE, WORKER, ADMIN)["Statement"][0]["Principal"] == {
        "AWS": ADMIN
    }
    assert _trust_for_moto(trust(service), EXECUTION_ROLE, WORKER, None) == trust(service)


def test_other_trusts_are_left_as_they_are():
    other = trust(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "Action": "sts:AssumeRole",
        }
    )
    assert _trust_for_moto(other, EXECUTION_ROLE, WORKER, ADMIN) == other


def test_only_allows_that_name_their_resources_are_viewed():
    allow = {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "arn:aws:sqs:us-east-1:1:q"}
    document = {
        "Statement": [
            allow,
            {"Effect": "Deny", "Action": "*", "Resource": "*"},
            {"Effect": "Allow", "Action": "kms:Decrypt", "NotResource": "arn:aws:kms:*:1:key/*"},
        ]
    }
    assert _allows(document)["Statement"] == [allow]
