"""DynamoDB calls the platform makes in many places, done one way.

- ``batch_write`` / ``batch_put``: BatchWriteItem in chunks of 25 (the API's limit), and
  ``batch_get``: BatchGetItem in chunks of 100 keys (the API's limit). DynamoDB may accept only part of a
  call and hand the rest back (``UnprocessedItems`` / ``UnprocessedKeys``, typically under throttling);
  that rest is sent again after an exponential backoff (50 ms, 100 ms, 200 ms, ... capped at 2 s), for
  at most ``MAX_ROUNDS`` calls per chunk. Then ``UnprocessedError`` names the table and how many items
  were left.
- ``is_condition_failed``: whether a ClientError is the refusal of a ``ConditionExpression``.

Every function takes the client to use, so callers keep their own (hub or member account, stubbed in
tests).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from itertools import islice

WRITE_BATCH = 25  # BatchWriteItem's maximum
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
