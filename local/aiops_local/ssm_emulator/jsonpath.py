"""The JSONPath subset SSM Automation selectors use: ``$``, ``.name``, ``['name']``, ``[n]``, ``[*]``,
``..name``.

``select`` returns the single value, or a list when the path fans out (``[*]``, ``..``); ``MISSING`` when
nothing matches.
"""

from __future__ import annotations

import re
from typing import Any

MISSING = object()
_TOKEN = re.compile(
    r"""\.\.(?P<deep>[A-Za-z0-9_\-]+)|\.(?P<name>[A-Za-z0-9_\-]+)|\[(?P<index>-?\d+)\]"""
    r"""|\[\*\]|\.\*|\[['"](?P<quoted>[^'"]+)['"]\]"""
)


class SelectorError(ValueError):
    pass


def _tokens(path: str) -> list[tuple[str, Any]]:
    if not path.startswith("$"):
        raise SelectorError(f"selector {path!r} must start with '$'")
    tokens, position = [], 1
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            raise SelectorError(f"selector {path!r}: cannot parse at {path[position:]!r}")
        if match.group("deep"):
            tokens.append(("deep", match.group("deep")))
        elif match.group("name") or match.group("quoted"):
            tokens.append(("key", match.group("name") or match.group("quoted")))
        elif match.group("index") is not None:
            tokens.append(("index", int(match.group("index"))))
        else:
            tokens.append(("all", None))
        position = match.end()
    return tokens


def _descend(node: Any, key: str):
    if isinstance(node, dict):
        if key in node:
            yield node[key]
        for value in node.values():
            yield from _descend(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _descend(value, key)


def select(document: Any, path: str) -> Any:
    nodes, fanned = [document], False
    for kind, arg in _tokens(path):
        found = []
        for node in nodes:
            key_hit = kind == "key" and isinstance(node, dict) and arg in node
            index_hit = kind == "index" and isinstance(node, list) and -len(node) <= arg < len(node)
            if key_hit or index_hit:
                found.append(node[arg])
            elif kind == "all":
                fanned = True
                children = node if isinstance(node, list) else node.values() if isinstance(node, dict) else []
                found.extend(children)
            elif kind == "deep":
                fanned = True
                found.extend(_descend(node, arg))
        nodes = found
    if fanned:
        return nodes
    return nodes[0] if nodes else MISSING
