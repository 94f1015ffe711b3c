"""TargetSpec's conditional specs (when), the resource's own account (account_path), and event values that
already are ARNs."""

from matcarv_aiops.catalogue import CatalogueEntry
from tests.events import envelope

BASE = {
    "id": "probe_entry",
    "condition": "probe",
    "action": "probe",
    "pattern": "lambda",
    "reversible": True,
    "approval": "outside_production",
    "resource_type": "AWS::IAM::User",
    "trigger_conditions": [{"kind": "service_event", "source": "aws.x", "detail_type": "Probe"}],
    "trigger": {"source": ["aws.x"], "detail-type": ["Probe"]},
    "eligibility": ["the user exists"],
    "validation": "read back",
    "rollback": "undo it",
    "permissions": ["iam:GetUser"],
}


def _entry(targets):
    return CatalogueEntry.model_validate(BASE | {"targets": targets})


def _event(detail, account="123456789012"):
    event = envelope("aws.x", "X", detail)
    event["account"] = account
    return event


def test_when_picks_the_spec_whose_condition_holds():
    entry = _entry(
        [
            {
                "paths": ["detail.name"],
                "when": {"detail.kind": ["user"]},
                "arn": "arn:aws:iam::{account}:user/{value}",
            },
            {
                "paths": ["detail.name"],
                "when": {"detail.kind": ["role", "assumed"]},
                "arn": "arn:aws:iam::{account}:role/{value}",
            },
        ]
    )
    assert (
        entry.resolve_target(_event({"name": "a", "kind": "user"})).arn == "arn:aws:iam::123456789012:user/a"
    )
    assert (
        entry.resolve_target(_event({"name": "a", "kind": "assumed"})).arn
        == "arn:aws:iam::123456789012:role/a"
    )
    assert entry.resolve_target(_event({"name": "a", "kind": "root"})) is None
    assert entry.resolve_target(_event({"name": "a"})) is None


def test_account_path_names_the_resources_account_else_the_envelopes():
    entry = _entry(
        [
            {
                "paths": ["detail.name"],
                "account_path": "detail.accountId",
                "arn": "arn:aws:iam::{account}:user/{value}",
            }
        ]
    )
    member = entry.resolve_target(_event({"name": "a", "accountId": "210987654321"}, account="111111111111"))
    assert (member.arn, member.account) == ("arn:aws:iam::210987654321:user/a", "210987654321")
    assert entry.resolve_target(_event({"name": "a"}, account="111111111111")).account == "111111111111"


def test_an_event_value_that_is_an_arn_is_used_as_it_is():
    entry = _entry([{"paths": ["detail.name"], "arn": "arn:aws:cloudtrail:{region}:{account}:trail/{value}"}])
    arn = "arn:aws:cloudtrail:eu-west-1:210987654321:trail/main"
    target = entry.resolve_target(_event({"name": arn}))
    assert (target.arn, target.resource_id, target.region, target.account) == (
        arn,
        "main",
        "eu-west-1",
        "210987654321",
    )
    assert (
        entry.resolve_target(_event({"name": "main"})).arn
        == "arn:aws:cloudtrail:us-east-1:123456789012:trail/main"
    )
