"""DynamoDB calls the platform makes in many places, done one way.

- ``batch_write`` / ``batch_put``: BatchWriteItem in chunks of 25 (the API's limit), and
  ``batch_get``: BatchGetItem in chunks of 100 keys (the API's limit). DynamoDB may accept only part of a
  call and hand the rest back (``UnprocessedItems`` / ``UnprocessedKeys``, typically under throttling);
  that rest is sent again after an exponential backoff (50 ms, 100 ms, 200 ms, ... capped at 2 s), for
  at most ``MAX_ROUNDS`` calls per chunk. Then ``UnprocessedError`` names the table and how many items
  were left.
- ``put_new``: put items only where their key is free (the first item under a key stands), up to 100
  per TransactWriteItems call, each Put conditional on ``attribute_not_exists``. A cancelled call names
  which items found their key taken (dropped) and which met contention (sent again after the backoff).
- ``is_condition_failed``: whether a ClientError is the refusal of a ``ConditionExpression``.

Every function takes the client to use, so callers keep their own (hub or member account, stubbed in
tests).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from itertools import islice

from botocore.exceptions import ClientError

WRITE_BATCH = 25  # BatchWriteItem's maximum
TRANSACT_BATCH = 100  # TransactWriteItems' maximum actions per call
# TransactWriteItems refuses a call whose items add up to more than 4 MB; an item's JSON (type tags and
# quotes included) is longer than DynamoDB's count of it, so staying under this keeps a margin.
TRANSACT_BYTES = 4_000_000
# Cancellation reasons that say nothing about the item itself: send it again after a backoff.
_CONTENTION = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
GET_BATCH = 100  # BatchGetItem's maximum
MAX_ROUNDS = 8
BASE_DELAY = 0.05  # seconds before the first retry; doubled each round
MAX_DELAY = 2.0


class UnprocessedError(RuntimeError):
    """DynamoDB still returned items unprocessed after the last round."""

    def __init__(self, operation: str, table: str, left: int, rounds: int):
        self.operation, self.table, self.left, self.rounds = operation, table, left, rounds
        super().__init__(
            f"{operation} on table {table}: {left} items still unprocessed after {rounds} rounds"
        )


def is_condition_failed(exc: BaseException) -> bool:
    """True when ``exc`` is DynamoDB refusing a write because its ConditionExpression was false."""
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def backoff(round_: int) -> float:
    """Seconds to wait before the retry that follows round ``round_`` (0-based)."""
    return min(BASE_DELAY * 2**round_, MAX_DELAY)


def _chunks(items: Iterable[dict], size: int) -> Iterator[list[dict]]:
    """Lists of ``size`` (the last one shorter), taken from ``items`` as they come."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def batch_write(client, table: str, requests: Iterable[dict], *, max_rounds: int = MAX_ROUNDS) -> int:
    """Send write requests (``{"PutRequest": ...}`` or ``{"DeleteRequest": ...}``) to ``table``, 25 per
    call, retrying unprocessed ones with backoff. ``requests`` is consumed a chunk at a time, so it may be
    a generator of any length. Returns how many requests were written."""
    written = 0
    for chunk in _chunks(requests, WRITE_BATCH):
        pending: dict = {table: chunk}
        for round_ in range(max_rounds):
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending.get(table):
                break
            if round_ + 1 < max_rounds:
                time.sleep(backoff(round_))
        else:
            raise UnprocessedError("BatchWriteItem", table, len(pending[table]), max_rounds)
        written += len(chunk)
    return written


def batch_put(client, table: str, items: Iterable[dict], *, max_rounds: int = MAX_ROUNDS) -> int:
    """Put ``items`` (attribute-value maps) into ``table`` with ``batch_write``. Returns how many."""
    requests = ({"PutRequest": {"Item": item}} for item in items)
    return batch_write(client, table, requests, max_rounds=max_rounds)


def _transactions(items: Iterable[dict], key: str) -> Iterator[tuple[list[dict], list[dict]]]:
    """(items for one call, items repeating a key already in it), taken from ``items`` as they come: at
    most ``TRANSACT_BATCH`` and ``TRANSACT_BYTES`` per call, and no key twice (one transaction may not
    touch an item twice)."""
    chunk: list[dict] = []
    repeated: list[dict] = []
    keys: set[str] = set()
    size = 0
    for item in items:
        item_key = json.dumps(item[key], sort_keys=True)
        if item_key in keys:
            repeated.append(item)
            continue
        item_size = len(json.dumps(item))
        if chunk and (len(chunk) == TRANSACT_BATCH or size + item_size > TRANSACT_BYTES):
            yield chunk, repeated
            chunk, repeated, keys, size = [], [], set(), 0
        chunk.append(item)
        keys.add(item_key)
        size += item_size
    if chunk or repeated:
        yield chunk, repeated


def put_new(
    client, table: str, items: Iterable[dict], *, key: str, max_rounds: int = MAX_ROUNDS
) -> Iterator[tuple[list[dict], list[dict]]]:
    """Put each of ``items`` into ``table`` only if no item holds its ``key`` (the partition key) yet:
    the first item written under a key stands, none is ever overwritten. Up to 100 items per
    TransactWriteItems call, each Put conditional on ``attribute_not_exists``; ``items`` is consumed a
    call at a time, so it may be a generator of any length.

    A call is all or nothing. When DynamoDB cancels it, its CancellationReasons say, item by item, whose
    key was taken (dropped: nothing to write) and which met contention (another transaction, throttling;
    sent again after a backoff, at most ``max_rounds`` times per call, then ``UnprocessedError``); the
    rest are sent again. Any other reason (a malformed item) is raised as it came.

    Yields ``(written, taken)`` per call, as soon as it succeeded: the items now in the table, and those
    whose key already held an item (a repeat within the call counts as taken)."""
    for chunk, taken in _transactions(items, key):
        pending, contended = chunk, 0
        while pending:
            try:
                client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": table,
                                "Item": item,
                                "ConditionExpression": "attribute_not_exists(#key)",
                                "ExpressionAttributeNames": {"#key": key},
                            }
                        }
                        for item in pending
                    ]
                )
                break
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                codes = [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]
                if len(codes) != len(pending) or set(codes) - {
                    "None",
                    "ConditionalCheckFailed",
                    *_CONTENTION,
                }:
                    raise
                taken += [
                    item
                    for item, code in zip(pending, codes, strict=True)
                    if code == "ConditionalCheckFailed"
                ]
                pending = [
                    item
                    for item, code in zip(pending, codes, strict=True)
                    if code != "ConditionalCheckFailed"
                ]
                if _CONTENTION.intersection(codes):
                    contended += 1
                    if contended == max_rounds:
                        raise UnprocessedError("TransactWriteItems", table, len(pending), max_rounds) from exc
                    time.sleep(backoff(contended - 1))
                elif "ConditionalCheckFailed" not in codes:
                    raise  # cancelled, yet no item says why: sending it again would loop
        yield pending, taken


def batch_get(
    client, table: str, keys: Iterable[dict], *, consistent: bool = True, max_rounds: int = MAX_ROUNDS
) -> list[dict]:
    """The items of ``table`` with these keys (those that exist, in no particular order), 100 keys per
    call, retrying unprocessed keys with backoff."""
    found: list[dict] = []
    for chunk in _chunks(keys, GET_BATCH):
        pending: dict = {table: {"Keys": chunk, "ConsistentRead": consistent}}
        for round_ in range(max_rounds):
            response = client.batch_get_item(RequestItems=pending)
            found.extend(response.get("Responses", {}).get(table, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending.get(table, {}).get("Keys"):
                break
            if round_ + 1 < max_rounds:
                time.sleep(backoff(round_))
        else:
            raise UnprocessedError("BatchGetItem", table, len(pending[table]["Keys"]), max_rounds)
    return found
