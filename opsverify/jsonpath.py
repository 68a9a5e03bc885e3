"""A small path syntax into JSON documents, for ``json:`` expectations.

``status``, ``checks[0].healthy``, ``data.items[-1].id``, ``labels["app.kubernetes.io/name"]``, and two
wildcards over a list: ``checks[*].healthy`` (every element) and ``checks[any].healthy`` (at least one).

Why not JMESPath or jsonpath-ng: JMESPath answers ``null`` both for a missing key and for a key that
holds ``null``, so "the field must be absent" and "the field is null" could not be told apart, and a
missing field would satisfy ``field: null``; jsonpath-ng is a parser generator with its own quoting
rules for keys such as ``app.kubernetes.io/name``. The whole grammar here is one regular expression,
and every miss names the part of the document that is not there.

Example::

    lookup({"checks": [{"healthy": True}]}, "checks[0].healthy")   # -> True
    judge({"checks": [{"healthy": True}, {"healthy": False}]}, "checks[*].healthy", True)
    # -> "checks[1].healthy=False"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from opsverify.errors import JsonPathError

_TOKEN = re.compile(
    r'\s*(?:\.?([A-Za-z_$][\w$-]*)|\[\s*(-?\d+)\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*(\*|any)\s*\])'
)


@dataclass(frozen=True)
class Each:
    """A wildcard over a list: ``[*]`` (``quantifier="all"``) or ``[any]``."""

    quantifier: str

    def __str__(self) -> str:
        return "[*]" if self.quantifier == "all" else "[any]"


Part = str | int | Each


def parse(path: str) -> list[Part]:
    """Split ``path`` into keys (str), indices (int) and wildcards (:class:`Each`); raises :class:`JsonPathError`."""
    parts: list[Part] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if not match or match.end() == pos:
            raise JsonPathError(f"invalid path {path!r} at position {pos}")
        name, index, quoted, wildcard = match.groups()
        if name is not None:
            parts.append(name)
        elif index is not None:
            parts.append(int(index))
        elif wildcard is not None:
            parts.append(Each("all" if wildcard == "*" else "any"))
        else:
            parts.append(quoted.replace('\\"', '"'))
        pos = match.end()
    if not parts:
        raise JsonPathError("empty path")
    return parts


def parse_single(path: str) -> list[Part]:
    """Like :func:`parse`, for a path that must name one value (no wildcard)."""
    parts = parse(path)
    if any(isinstance(p, Each) for p in parts):
        raise JsonPathError(f"{path!r}: a wildcard ([*] or [any]) is not allowed here (one value is read)")
    return parts


def _step(node: Any, part: str | int, walked: str) -> tuple[Any, str]:
    """One key or index down from ``node``; raises :class:`JsonPathError` naming what is missing."""
    if isinstance(part, int):
        if not isinstance(node, list) or not -len(node) <= part < len(node):
            raise JsonPathError(f"{walked or '(root)'} has no element [{part}]")
        return node[part], f"{walked}[{part}]"
    if not isinstance(node, dict) or part not in node:
        raise JsonPathError(f"{walked or '(root)'} has no key {part!r}")
    return node[part], f"{walked}.{part}" if walked else part


def lookup(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``; raises :class:`JsonPathError` naming what is missing."""
    node = document
    walked = ""
    for part in parse_single(path):
        assert not isinstance(part, Each)
        node, walked = _step(node, part, walked)
    return node


def _elements(node: Any, each: Each, walked: str) -> list[Any]:
    if not isinstance(node, list):
        raise JsonPathError(f"{walked or '(root)'} is not a list (for {each})")
    if not node:
        raise JsonPathError(f"{walked or '(root)'} is an empty list: no element to judge")
    return node


def _judge(node: Any, parts: list[Part], walked: str, wanted: Any) -> list[str]:
    """Problems of the value(s) at ``parts`` below ``node``, compared to ``wanted`` (empty: as expected)."""
    for i, part in enumerate(parts):
        if isinstance(part, Each):
            elements = _elements(node, part, walked)
            found = [_judge_or_missing(e, parts[i + 1:], f"{walked}[{n}]", wanted) for n, e in enumerate(elements)]
            if part.quantifier == "all":
                return [p for problems in found for p in problems]
            if any(not problems for problems in found):
                return []
            return [f"no element of {walked or '(root)'} as expected: " + "; ".join(p for ps in found for p in ps[:1])]
        node, walked = _step(node, part, walked)
    return [] if node == wanted else [f"{walked}={node!r}"]


def _judge_or_missing(node: Any, parts: list[Part], walked: str, wanted: Any) -> list[str]:
    try:
        return _judge(node, parts, walked, wanted)
    except JsonPathError as missing:
        return [str(missing)]


def judge(document: Any, path: str, wanted: Any) -> str | None:
    """What differs from ``path: wanted`` in ``document`` (None: as expected).

    ``[*]`` needs every element to hold ``wanted``, ``[any]`` at least one; an empty list, a value that
    is not a list and a missing key are problems (an empty list is no evidence of health).
    Raises :class:`JsonPathError` when a part of the path outside any wildcard is missing.
    """
    problems = _judge(document, parse(path), "", wanted)
    return "; ".join(problems) if problems else None


def present(document: Any, path: str) -> list[str]:
    """Where ``path`` exists in ``document`` (concrete paths, e.g. ``checks[2].error``), for ``json_absent``.

    Everything before the last part must exist (an absent field is only evidence inside a document
    that has its parent), and a wildcard's list must not be empty; raises :class:`JsonPathError` otherwise.
    """
    parts = parse(path)
    *parents, last = parts
    if isinstance(last, Each):
        raise JsonPathError(f"{path!r}: the last part of an absent path must be a key or an index")
    nodes: list[tuple[Any, str]] = [(document, "")]
    for part in parents:
        if isinstance(part, Each):
            nodes = [(e, f"{w}[{n}]") for node, w in nodes for n, e in enumerate(_elements(node, part, w))]
        else:
            nodes = [_step(node, part, w) for node, w in nodes]
    found = []
    for node, walked in nodes:
        try:
            found.append(_step(node, last, walked)[1])
        except JsonPathError:
            continue
    return found
