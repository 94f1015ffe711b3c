"""EventBridge event-pattern matching, with EventBridge's own semantics.

The catalogue's ``trigger`` patterns become EventBridge rules in AWS; the trigger Lambda matches the same
patterns again to pick the remediations an event starts, so the two must agree. The semantics follow
EventBridge (aws/event-ruler's ``rulesForJSONEvent``):

- every field named in the pattern must match (AND); a field matches if any listed value matches (OR);
- when the event's value is an array, it matches if any element matches;
- arrays of objects are "crushed out": ``{"metrics": {"name": ["x"]}}`` matches
  ``{"metrics": [{"name": "x"}, ...]}``, and fields matched inside one array must come from the same
  element (array-consistent matching);
- ``prefix``, ``suffix`` (each also with ``equals-ignore-case``), ``equals-ignore-case``, ``wildcard``,
  ``anything-but`` (a value, a list, or a prefix/suffix/equals-ignore-case/wildcard), ``numeric``,
  ``cidr``, ``exists`` (leaf fields only), and ``$or``;
- literals match by JSON type: the string ``"5"`` does not match the number ``5``, ``true`` is not ``1``.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

_MISSING = object()
_OPERATORS = {"<": float.__lt__, "<=": float.__le__, "=": float.__eq__, ">=": float.__ge__, ">": float.__gt__}


class PatternError(ValueError):
    """The pattern itself is not a valid EventBridge pattern; the message names where."""


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """True if EventBridge would deliver ``event`` to a rule with ``pattern``."""
    return _match_object(pattern, event, "") is None


def mismatch(pattern: dict[str, Any], event: dict[str, Any]) -> str | None:
    """None if the event matches; otherwise the dotted path of the first field that does not."""
    return _match_object(pattern, event, "")


def _match_object(pattern: dict[str, Any], node: Any, path: str) -> str | None:
    if isinstance(node, list):
        # Array of objects: the whole sub-pattern must match within one element (array consistency).
        first_failure = None
        for element in _flatten(node):
            failure = _match_object(pattern, element, path)
            if failure is None:
                return None
            first_failure = first_failure or failure
        # No element matched; an empty array behaves as an absent field.
        return first_failure or _match_object(pattern, _MISSING, path)
    fields = node if isinstance(node, dict) else {}
    for key, sub_pattern in pattern.items():
        if key == "$or" and isinstance(sub_pattern, list):
            failures = [_match_object(alternative, node, path) for alternative in sub_pattern]
            if all(failures):
                return _nearest_miss([f for f in failures if f], node, path)
            continue
        field_path = f"{path}.{key}" if path else key
        value = fields.get(key, _MISSING)
        if isinstance(sub_pattern, dict):
            failure = _match_object(sub_pattern, value, field_path)
        elif isinstance(sub_pattern, list):
            failure = None if _match_leaf(sub_pattern, value, field_path) else field_path
        else:
            raise PatternError(f"{field_path}: a pattern value must be an object or an array")
        if failure is not None:
            return failure
    return None


def _nearest_miss(failures: list[str], node: Any, path: str) -> str:
    """The failure to report when no alternative of an ``$or`` matched: the alternative the event nearly
    matched (its failing field is in the event, the deepest such field), so that e.g. a CloudTrail call is
    told which of its own fields differs rather than that it is not a Security Hub finding; all of them
    where no one alternative is nearest."""

    def nearness(failure: str) -> tuple[bool, int]:
        relative = failure[len(path) + 1 :] if path else failure
        return _present(node, relative), failure.count(".")

    scores = [nearness(f) for f in failures]
    best = max(scores)
    if scores.count(best) == 1:
        return failures[scores.index(best)]
    return f"{path or '<event>'} ($or: {' / '.join(failures)})"


def _present(node: Any, relative: str) -> bool:
    """Whether the event holds a value at the dotted path below ``node`` (arrays of objects walked)."""
    nodes = [node]
    for part in relative.split("."):
        nodes = [
            item[part]
            for n in nodes
            for item in (_flatten(n) if isinstance(n, list) else [n])
            if isinstance(item, dict) and part in item
        ]
        if not nodes:
            return False
    return True


def _flatten(values: list[Any]):
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


def _match_leaf(filters: list[Any], value: Any, path: str) -> bool:
    if value is _MISSING:
        leaves: list[Any] = []
    elif isinstance(value, list):
        leaves = list(_flatten(value))
    else:
        leaves = [value]
    # Objects are not leaves: only `exists: false` can match a field whose value is an object.
    scalar_leaves = [leaf for leaf in leaves if not isinstance(leaf, dict)]
    for rule in filters:
        if isinstance(rule, dict):
            if len(rule) != 1:
                raise PatternError(f"{path}: a filter object holds exactly one operator, got {sorted(rule)}")
            ((operator, operand),) = rule.items()
            if operator == "exists":
                if not isinstance(operand, bool):
                    raise PatternError(f"{path}: exists takes true or false")
                if bool(scalar_leaves) == operand:
                    return True
                continue
            if any(_match_operator(operator, operand, leaf, path) for leaf in scalar_leaves):
                return True
        elif any(_equal(rule, leaf) for leaf in scalar_leaves):
            return True
    return False


def _equal(literal: Any, value: Any) -> bool:
    if isinstance(literal, bool) or isinstance(value, bool) or literal is None or value is None:
        return literal is value or (type(literal) is type(value) and literal == value)
    if isinstance(literal, (int, float)) and isinstance(value, (int, float)):
        return float(literal) == float(value)
    return type(literal) is type(value) and literal == value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _match_operator(operator: str, operand: Any, value: Any, path: str) -> bool:
    if operator in ("prefix", "suffix"):
        if not isinstance(value, str):
            return False
        ignore_case = isinstance(operand, dict)
        text = operand.get("equals-ignore-case") if ignore_case else operand
        if not isinstance(text, str):
            raise PatternError(f'{path}: {operator} takes a string or {{"equals-ignore-case": string}}')
        subject, text = (value.lower(), text.lower()) if ignore_case else (value, text)
        return subject.startswith(text) if operator == "prefix" else subject.endswith(text)
    if operator == "equals-ignore-case":
        options = operand if isinstance(operand, list) else [operand]
        return isinstance(value, str) and any(value.lower() == option.lower() for option in options)
    if operator == "wildcard":
        options = operand if isinstance(operand, list) else [operand]
        return isinstance(value, str) and any(_wildcard(option, path).fullmatch(value) for option in options)
    if operator == "numeric":
        return _is_number(value) and _numeric(operand, float(value), path)
    if operator == "cidr":
        if not isinstance(value, str) or not isinstance(operand, str):
            return False
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(operand, strict=False)
        except ValueError:
            return False
    if operator == "anything-but":
        if isinstance(operand, dict):
            if len(operand) != 1:
                raise PatternError(f"{path}: anything-but takes one operator, got {sorted(operand)}")
            ((inner, inner_operand),) = operand.items()
            if inner not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
                raise PatternError(f"{path}: anything-but does not take {inner!r}")
            return isinstance(value, str) and not _match_operator(inner, inner_operand, value, path)
        excluded = operand if isinstance(operand, list) else [operand]
        return not any(_equal(item, value) for item in excluded)
    raise PatternError(f"{path}: unknown pattern operator {operator!r}")


def _numeric(operand: Any, value: float, path: str) -> bool:
    if not isinstance(operand, list) or not operand or len(operand) % 2 or len(operand) > 4:
        raise PatternError(f"{path}: numeric takes [op, number] or [op, number, op, number]")
    for operator, bound in zip(operand[::2], operand[1::2], strict=True):
        if operator not in _OPERATORS or not _is_number(bound):
            raise PatternError(f"{path}: numeric operator {operator!r} {bound!r} is not valid")
        if not _OPERATORS[operator](value, float(bound)):
            return False
    return True


@lru_cache(maxsize=256)
def _wildcard(pattern: str, path: str) -> re.Pattern[str]:
    """``*`` is any run of characters; ``\\*`` a literal star, ``\\\\`` a literal backslash."""
    if "**" in pattern:
        raise PatternError(f"{path}: wildcard {pattern!r} has consecutive '*'")
    parts, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1 : index + 2]
            if escaped not in ("*", "\\"):
                raise PatternError(f"{path}: wildcard {pattern!r} escapes something other than '*' or '\\'")
            parts.append(re.escape(escaped))
            index += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)
