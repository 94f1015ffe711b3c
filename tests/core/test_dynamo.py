"""matcarv_aiops.dynamo against a stubbed client: chunking, UnprocessedItems/UnprocessedKeys retried with
backoff, the error after the last round, and recognising a failed condition."""

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from matcarv_aiops import dynamo

TABLE = "T"


@pytest.fixture
def stubbed():
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="stub", aws_secret_access_key="stub"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def sleeps(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr(dynamo.time, "sleep", waited.append)
    return waited


def _item(n: int) -> dict:
    return {"pk": {"S": f"k{n}"}, "v": {"N": str(n)}}


def _puts(numbers) -> list[dict]:
    return [{"PutRequest": {"Item": _item(n)}} for n in numbers]


def _keys(numbers) -> list[dict]:
    return [{"pk": {"S": f"k{n}"}} for n in numbers]


def test_writes_in_chunks_of_25(stubbed, sleeps):
    client, stubber = stubbed
    for chunk in (range(0, 25), range(25, 50), range(50, 60)):
        stubber.add_response(
            "batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {TABLE: _puts(chunk)}}
        )
    assert dynamo.batch_put(client, TABLE, (_item(n) for n in range(60))) == 60
    assert sleeps == []


def test_unprocessed_items_are_sent_again_after_a_backoff(stubbed, sleeps):
    client, stubber = stubbed
    stubber.add_response(
        "batch_write_item",
        {"UnprocessedItems": {TABLE: _puts([3, 4])}},
        {"RequestItems": {TABLE: _puts(range(5))}},
    )
    stubber.add_response(
        "batch_write_item",
        {"UnprocessedItems": {TABLE: _puts([4])}},
        {"RequestItems": {TABLE: _puts([3, 4])}},
    )
    stubber.add_response("batch_write_item", {}, {"RequestItems": {TABLE: _puts([4])}})
    assert dynamo.batch_put(client, TABLE, [_item(n) for n in range(5)]) == 5
    assert sleeps == [0.05, 0.1]


def test_write_gives_up_after_the_last_round_naming_table_and_count(stubbed, sleeps):
    client, stubber = stubbed
    stubber.add_response(
        "batch_write_item",
        {"UnprocessedItems": {TABLE: _puts([1, 2])}},
        {"RequestItems": {TABLE: _puts(range(3))}},
    )
    for _ in range(3):
        stubber.add_response(
            "batch_write_item",
            {"UnprocessedItems": {TABLE: _puts([1, 2])}},
            {"RequestItems": {TABLE: _puts([1, 2])}},
        )
    with pytest.raises(dynamo.UnprocessedError) as raised:
        dynamo.batch_put(client, TABLE, [_item(n) for n in range(3)], max_rounds=4)
    assert (raised.value.table, raised.value.left, raised.value.rounds) == (TABLE, 2, 4)
    assert str(raised.value) == "BatchWriteItem on table T: 2 items still unprocessed after 4 rounds"
    assert sleeps == [0.05, 0.1, 0.2]  # between the rounds, none after the last


def test_backoff_doubles_up_to_its_cap():
    assert [dynamo.backoff(r) for r in range(8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_gets_in_chunks_of_100_and_retries_unprocessed_keys(stubbed, sleeps):
    client, stubber = stubbed
    stubber.add_response(
        "batch_get_item",
        {
            "Responses": {TABLE: [_item(n) for n in range(0, 90)]},
            "UnprocessedKeys": {TABLE: {"Keys": _keys(range(90, 100)), "ConsistentRead": True}},
        },
        {"RequestItems": {TABLE: {"Keys": _keys(range(0, 100)), "ConsistentRead": True}}},
    )
    stubber.add_response(
        "batch_get_item",
        {"Responses": {TABLE: [_item(n) for n in range(90, 100)]}},
        {"RequestItems": {TABLE: {"Keys": _keys(range(90, 100)), "ConsistentRead": True}}},
    )
    stubber.add_response(
        "batch_get_item",
        {"Responses": {TABLE: [_item(n) for n in range(100, 130, 2)]}},  # some do not exist
        {"RequestItems": {TABLE: {"Keys": _keys(range(100, 130)), "ConsistentRead": True}}},
    )
    items = dynamo.batch_get(client, TABLE, _keys(range(130)))
    assert sorted(int(i["v"]["N"]) for i in items) == list(range(100)) + list(range(100, 130, 2))
    assert sleeps == [0.05]


def test_get_gives_up_after_the_last_round(stubbed, sleeps):
    client, stubber = stubbed
    request = {TABLE: {"Keys": _keys(range(3)), "ConsistentRead": False}}
    for _ in range(2):
        stubber.add_response(
            "batch_get_item", {"Responses": {}, "UnprocessedKeys": request}, {"RequestItems": request}
        )
    with pytest.raises(
        dynamo.UnprocessedError, match="BatchGetItem on table T: 3 items still unprocessed after 2 rounds"
    ):
        dynamo.batch_get(client, TABLE, _keys(range(3)), consistent=False, max_rounds=2)
    assert sleeps == [0.05]


def test_nothing_to_do_makes_no_call(stubbed):
    client, _ = stubbed  # the Stubber fails any call it was not given a response for
    assert dynamo.batch_put(client, TABLE, []) == 0
    assert dynamo.batch_get(client, TABLE, []) == []


def test_is_condition_failed():
    def error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutItem")

    assert dynamo.is_condition_failed(error("ConditionalCheckFailedException"))
    assert not dynamo.is_condition_failed(error("ProvisionedThroughputExceededException"))
    assert not dynamo.is_condition_failed(ValueError("ConditionalCheckFailedException"))


def test_round_trip_against_moto(aws):
    client = boto3.client("dynamodb", region_name="us-east-1")
    items = [{"pk": {"S": f"exempt#arn:{n}"}, "v": {"N": str(n)}} for n in range(130)]
    assert dynamo.batch_put(client, aws.platform.state_table, items) == 130
    keys = [{"pk": item["pk"]} for item in items] + [{"pk": {"S": "not-there"}}]
    found = dynamo.batch_get(client, aws.platform.state_table, keys)
    assert sorted(int(i["v"]["N"]) for i in found) == list(range(130))
