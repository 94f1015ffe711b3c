"""Our matcher agrees with an independent EventBridge: moto's.

Every catalogue pattern (and a set of operator patterns) becomes an EventBridge rule with an SQS target;
every sample event is put on the bus; the rules that fired (messages in their queues) must be exactly the
ones our matcher picks.

moto's matcher does not descend into arrays of objects, which EventBridge does ("crushed out", with the
fields of one match taken from one element). So each event is sent to moto in every single-element form:
each array of objects replaced by one of its elements, in all combinations. That is the same as the
EventBridge semantics, element by element: EventBridge fires for the original event exactly when it fires
for one of those forms. Our matcher must agree with moto on every form, and on the original event with
"some form fired".
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from matcarv_aiops.catalogue import catalogue
from matcarv_aiops.ingress.patterns import matches
from tests.ingress import samples

REGION = "us-east-1"
MARKER = "x-aiops-case"
TEST_SOURCE = "aiops.test"


def _test_rule(detail_pattern: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"source": [TEST_SOURCE], **top, "detail": detail_pattern}


OPERATOR_RULES = {
    "prefix": _test_rule({"name": [{"prefix": "web-"}]}),
    "prefix-ignore-case": _test_rule({"name": [{"prefix": {"equals-ignore-case": "WEB-"}}]}),
    "suffix": _test_rule({"name": [{"suffix": "-dlq"}]}),
    "equals-ignore-case": _test_rule({"state": [{"equals-ignore-case": "alarm"}]}),
    "anything-but-list": _test_rule({"state": [{"anything-but": ["OK", "INSUFFICIENT_DATA"]}]}),
    "anything-but-prefix": _test_rule({"name": [{"anything-but": {"prefix": "test-"}}]}),
    "numeric-range": _test_rule({"severity": [{"numeric": [">=", 7, "<", 9]}]}),
    "numeric-equals": _test_rule({"count": [{"numeric": ["=", 100]}]}),
    "exists": _test_rule({"owner": [{"exists": True}]}),
    "not-exists": _test_rule({"owner": [{"exists": False}]}),
    "wildcard": _test_rule({"arn": [{"wildcard": "arn:aws:s3:::*-exports"}]}),
    "cidr": _test_rule({"ip": [{"cidr": "10.0.0.0/24"}]}),
    "array-intersection": _test_rule({"tags": ["prod", "staging"]}),
    "null": _test_rule({"owner": [None]}),
    "number-literal": _test_rule({"count": [100]}),
    "nested-object": _test_rule({"config": {"mode": ["strict"]}}),
    "or": {
        "source": [TEST_SOURCE],
        "$or": [{"detail": {"severity": [{"numeric": [">", 8]}]}}, {"detail": {"state": ["ALARM"]}}],
    },
    "array-of-objects": _test_rule({"items": {"kind": ["disk"], "size": [{"numeric": [">", 100]}]}}),
}

OPERATOR_EVENTS = [
    {
        "name": "web-1",
        "state": "ALARM",
        "severity": 8,
        "count": 100,
        "owner": "team-a",
        "arn": "arn:aws:s3:::customer-exports",
        "ip": "10.0.0.7",
        "tags": ["prod", "x"],
        "config": {"mode": "strict"},
    },
    {
        "name": "WEB-2-dlq",
        "state": "ok",
        "severity": 9,
        "count": 101,
        "arn": "arn:aws:s3:::logs",
        "ip": "10.0.1.7",
        "tags": ["dev"],
        "config": {"mode": "lenient"},
    },
    {
        "name": "test-3",
        "state": "INSUFFICIENT_DATA",
        "severity": 6.5,
        "owner": None,
        "ip": "fe80::1",
        "tags": ["staging"],
        "items": [{"kind": "disk", "size": 50}, {"kind": "cpu", "size": 500}],
    },
    {
        "name": "orders-dlq",
        "state": "OK",
        "severity": 7,
        "count": "100",
        "arn": "arn:aws:s3:::a-exports",
        "items": [{"kind": "disk", "size": 500}],
    },
    {"name": ["web-a", "test-b"], "state": "Alarm", "severity": "8", "owner": "", "ip": "not-an-ip"},
    {
        "state": "ALARM",
        "severity": 8.5,
        "tags": "prod",
        "items": [{"kind": "cpu", "size": 1}, {"kind": "disk"}],
    },
]


def _rules() -> dict[str, dict[str, Any]]:
    rules = {f"entry-{entry.id}": entry.trigger for entry in catalogue().values()}
    rules.update({f"op-{name}": pattern for name, pattern in OPERATOR_RULES.items()})
    return rules


def _events() -> list[dict[str, Any]]:
    events = [samples.load(name) for name in samples.sample_names()]
    for entry in catalogue().values():
        events.append(samples.event_for(entry))
        near_miss = samples.near_miss_for(entry)
        if near_miss:
            events.append(near_miss)
    for index, detail in enumerate(OPERATOR_EVENTS):
        events.append(
            {
                "version": "0",
                "id": f"op-{index}",
                "detail-type": "AIOps Operator Test",
                "source": TEST_SOURCE,
                "account": "123456789012",
                "time": "2026-10-02T12:00:00Z",
                "region": REGION,
                "resources": [],
                "detail": detail,
            }
        )
    for event in events:  # moto puts every event in its own account and this test's region
        event["account"], event["region"] = "123456789012", REGION
    return events


def single_element_forms(node: Any, limit: int = 256) -> list[Any]:
    """Every form of ``node`` with each array of objects replaced by one of its elements."""
    if isinstance(node, dict):
        keys = list(node)
        options = [single_element_forms(node[key], limit) for key in keys]
        forms = []
        for combination in itertools.product(*options):
            forms.append(dict(zip(keys, combination, strict=True)))
            if len(forms) > limit:
                raise AssertionError("too many single-element forms; use a smaller sample")
        return forms
    if isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
        return [form for item in node for form in single_element_forms(item, limit)]
    if isinstance(node, list):
        return [
            [
                single_element_forms(item, limit)[0] if isinstance(item, (dict, list)) else item
                for item in node
            ]
        ]
    return [node]


@pytest.fixture(scope="module")
def fired_in_moto():
    """Put every rule and every single-element form of every event into moto; return what fired."""
    rules, events = _rules(), _events()
    cases: dict[str, tuple[int, dict[str, Any]]] = {}
    for event_index, event in enumerate(events):
        for form_index, detail in enumerate(single_element_forms(event["detail"])):
            case = f"{event_index}/{form_index}"
            form = copy.deepcopy(event)
            form["detail"] = {**detail, MARKER: case}
            cases[case] = (event_index, form)
    with mock_aws():
        bus = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queues = {}
        for number, (rule, pattern) in enumerate(rules.items()):
            url = sqs.create_queue(QueueName=f"rule-{number}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            bus.put_rule(Name=f"rule-{number}", EventPattern=json.dumps(pattern), State="ENABLED")
            bus.put_targets(Rule=f"rule-{number}", Targets=[{"Id": "queue", "Arn": arn}])
            queues[rule] = url
        entries = [
            {
                "Source": form["source"],
                "DetailType": form["detail-type"],
                "Detail": json.dumps(form["detail"]),
                "Resources": form["resources"],
            }
            for _, form in cases.values()
        ]
        for start in range(0, len(entries), 10):
            answer = bus.put_events(Entries=entries[start : start + 10])
            assert answer["FailedEntryCount"] == 0, answer
        fired: dict[str, set[str]] = {rule: set() for rule in rules}
        for rule, url in queues.items():
            while True:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    fired[rule].add(json.loads(message["Body"])["detail"][MARKER])
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )
    return rules, events, cases, fired


def test_every_rule_and_event_form_agrees_with_moto(fired_in_moto):
    rules, _, cases, fired = fired_in_moto
    disagreements = [
        (rule, case)
        for rule, pattern in rules.items()
        for case, (_, form) in cases.items()
        if matches(pattern, form) != (case in fired[rule])
    ]
    assert not disagreements, disagreements[:10]


def test_original_events_agree_with_eventbridge_semantics(fired_in_moto):
    rules, events, cases, fired = fired_in_moto
    disagreements = []
    for rule, pattern in rules.items():
        for event_index, event in enumerate(events):
            eventbridge = any(
                index == event_index and case in fired[rule] for case, (index, _) in cases.items()
            )
            if matches(pattern, {**event, "detail": {**event["detail"], MARKER: "x"}}) != eventbridge:
                disagreements.append((rule, event["id"]))
    assert not disagreements, disagreements[:10]


def test_the_comparison_is_not_vacuous(fired_in_moto):
    rules, _, cases, fired = fired_in_moto
    for entry_id in catalogue():
        assert fired[f"entry-{entry_id}"], f"no event fired entry {entry_id} in moto"
    for name in OPERATOR_RULES:
        assert fired[f"op-{name}"], f"no event fired op-{name}"
        assert len(fired[f"op-{name}"]) < len(cases), f"op-{name} fired for everything"
