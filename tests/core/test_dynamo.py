"""matcarv_aiops.dynamo against a stubbed client: chunking, UnprocessedItems/UnprocessedKeys retried with
backoff, the error after the last round, and recognising a failed condition."""

import json

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


# --- put_new: conditional puts, 100 per TransactWriteItems call ------------------------------------
def _conditional(numbers) -> dict:
    return {
        "TransactItems": [
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": _item(n),
                    "ConditionExpression": "attribute_not_exists(#key)",
                    "ExpressionAttributeNames": {"#key": "pk"},
                }
            }
            for n in numbers
        ]
    }


def _cancelled(stubber, numbers, codes: list[str]) -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message=f"Transaction cancelled [{', '.join(codes)}]",
        expected_params=_conditional(numbers),
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


def _numbers(items: list[dict]) -> list[int]:
    return [int(item["v"]["N"]) for item in items]


def test_put_new_sends_100_conditional_puts_per_call(stubbed, sleeps):
    client, stubber = stubbed
    for chunk in (range(0, 100), range(100, 200), range(200, 230)):
        stubber.add_response("transact_write_items", {}, _conditional(chunk))
    calls = list(dynamo.put_new(client, TABLE, (_item(n) for n in range(230)), key="pk"))
    assert [(_numbers(written), taken) for written, taken in calls] == [
        (list(range(0, 100)), []),
        (list(range(100, 200)), []),
        (list(range(200, 230)), []),
    ]
    assert sleeps == []


def test_put_new_drops_the_items_whose_key_is_taken_and_sends_the_rest_at_once(stubbed, sleeps):
    client, stubber = stubbed
    _cancelled(stubber, range(4), ["None", "ConditionalCheckFailed", "None", "ConditionalCheckFailed"])
    stubber.add_response("transact_write_items", {}, _conditional([0, 2]))
    [(written, taken)] = dynamo.put_new(client, TABLE, [_item(n) for n in range(4)], key="pk")
    assert (_numbers(written), _numbers(taken)) == ([0, 2], [1, 3])
    assert sleeps == []  # a taken key is an answer, not contention


def test_put_new_when_every_key_is_taken_writes_nothing(stubbed, sleeps):
    client, stubber = stubbed
    _cancelled(stubber, range(3), ["ConditionalCheckFailed"] * 3)
    [(written, taken)] = dynamo.put_new(client, TABLE, [_item(n) for n in range(3)], key="pk")
    assert (written, _numbers(taken)) == ([], [0, 1, 2])


def test_put_new_never_sends_a_key_twice_in_one_call(stubbed):
    client, stubber = stubbed
    stubber.add_response("transact_write_items", {}, _conditional([0, 1]))
    again = {"pk": {"S": "k0"}, "v": {"N": "7"}}
    [(written, taken)] = dynamo.put_new(client, TABLE, [_item(0), again, _item(1)], key="pk")
    assert (_numbers(written), taken) == ([0, 1], [again])


def test_put_new_retries_contention_after_a_backoff_then_gives_up(stubbed, sleeps):
    client, stubber = stubbed
    _cancelled(stubber, range(3), ["None", "TransactionConflict", "ConditionalCheckFailed"])
    _cancelled(stubber, [0, 1], ["ThrottlingError", "None"])
    stubber.add_response("transact_write_items", {}, _conditional([0, 1]))
    [(written, taken)] = dynamo.put_new(client, TABLE, [_item(n) for n in range(3)], key="pk")
    assert (_numbers(written), _numbers(taken)) == ([0, 1], [2])
    assert sleeps == [0.05, 0.1]

    for _ in range(3):
        _cancelled(stubber, [5], ["TransactionConflict"])
    with pytest.raises(
        dynamo.UnprocessedError,
        match="TransactWriteItems on table T: 1 items still unprocessed after 3 rounds",
    ):
        list(dynamo.put_new(client, TABLE, [_item(5)], key="pk", max_rounds=3))


def test_put_new_raises_a_cancellation_it_cannot_act_on(stubbed):
    client, stubber = stubbed
    _cancelled(stubber, range(2), ["None", "ValidationError"])
    with pytest.raises(ClientError, match="ValidationError"):
        list(dynamo.put_new(client, TABLE, [_item(n) for n in range(2)], key="pk"))


def test_put_new_keeps_a_call_under_the_size_limit(stubbed, monkeypatch):
    client, stubber = stubbed
    monkeypatch.setattr(dynamo, "TRANSACT_BYTES", 2 * len(json.dumps(_item(0))))
    for chunk in ([0, 1], [2, 3], [4]):
        stubber.add_response("transact_write_items", {}, _conditional(chunk))
    calls = list(dynamo.put_new(client, TABLE, [_item(n) for n in range(5)], key="pk"))
    assert [_numbers(written) for written, _ in calls] == [[0, 1], [2, 3], [4]]


def test_put_new_against_moto_leaves_the_first_item_standing(aws):
    client = boto3.client("dynamodb", region_name="us-east-1")
    table = aws.platform.state_table
    client.put_item(TableName=table, Item={"pk": {"S": "k3"}, "v": {"N": "-1"}})
    items = [{"pk": {"S": f"k{n}"}, "v": {"N": str(n)}} for n in range(130)]
    calls = list(dynamo.put_new(client, table, items, key="pk"))
    assert [(len(written), _numbers(taken)) for written, taken in calls] == [(99, [3]), (30, [])]
    stored = dynamo.batch_get(client, table, [{"pk": item["pk"]} for item in items])
    assert sorted(_numbers(stored)) == [-1, *(n for n in range(130) if n != 3)]
