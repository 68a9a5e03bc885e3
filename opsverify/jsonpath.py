"""A small path syntax into JSON documents, for ``json:`` expectations.

``status``, ``checks[0].healthy``, ``data.items[-1].id``, ``labels["app.kubernetes.io/name"]``.

Example::

    lookup({"checks": [{"healthy": True}]}, "checks[0].healthy")   # -> True
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'\s*(?:\.?([A-Za-z_$][\w$-]*)|\[\s*(-?\d+)\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\])')


class JsonPathError(LookupError):
    """The path does not exist in the document, or is not valid syntax."""


def parse(path: str) -> list[str | int]:
    """Split ``path`` into keys (str) and indices (int); raises :class:`JsonPathError`."""
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if not match or match.end() == pos:
            raise JsonPathError(f"invalid path {path!r} at position {pos}")
        name, index, quoted = match.groups()
        if name is not None:
            parts.append(name)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(quoted.replace('\\"', '"'))
        pos = match.end()
    if not parts:
        raise JsonPathError("empty path")
    return parts


def lookup(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``; raises :class:`JsonPathError` naming what is missing."""
    node = document
    walked = ""
    for part in parse(path):
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                raise JsonPathError(f"{walked or '(root)'} has no element [{part}]")
            node = node[part]
            walked += f"[{part}]"
        else:
            if not isinstance(node, dict) or part not in node:
                raise JsonPathError(f"{walked or '(root)'} has no key {part!r}")
            node = node[part]
            walked += f".{part}" if walked else part
    return node
