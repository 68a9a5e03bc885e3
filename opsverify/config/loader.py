"""Reading the YAML files people write (environment files, gate policies, waivers), safely.

:func:`read_yaml` returns plain data or raises :class:`~opsverify.errors.ConfigError` naming the
file, the key path and, where YAML knows it, the line. Besides YAML syntax it rejects what
``yaml.safe_load`` accepts but no such file should hold, each with a one-line reason:

- a file that is not UTF-8 text, or larger than :data:`MAX_BYTES`;
- nesting deeper than :data:`MAX_DEPTH` levels (``yaml.safe_load`` overflows the stack at ~500);
- an alias that refers to a collection containing it (a structure that never ends);
- more than :data:`MAX_VALUES` values once aliases are expanded (an "alias bomb": a few hundred
  bytes that expand to billions of values);
- a key given twice in one mapping (YAML keeps the last one silently: ``status: 200`` then
  ``status: 500`` would check for 500), and keys that are not text (``1:``, ``yes:``).

Anchors, aliases and merge keys (``<<: *defaults``) within these bounds are fine.

Example::

    data = read_yaml(Path("environments/staging.yaml"))
    # ConfigError: environments/staging.yaml: http[0].status: duplicate key (line 9; first on line 7)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from opsverify.config.values import key_text
from opsverify.errors import ConfigError, YamlRejected

MAX_BYTES = 4 * 1024 * 1024
"""Largest file read (an environment file of a few hundred targets is well under 1 MiB)."""
MAX_DEPTH = 32
"""Deepest nesting of lists and mappings, counted after aliases are expanded."""
MAX_VALUES = 100_000
"""Most values (scalars, lists, mappings) a file may hold once its aliases are expanded."""

_MERGE = "tag:yaml.org,2002:merge"


def _line(mark: Any) -> str:
    return f"line {mark.line + 1}" if mark is not None else ""


def _join(path: str, key: str) -> str:
    shown = key_text(key)
    return f"{path}.{shown}" if path else shown


# libyaml's parser (C) when PyYAML was built with it, else PyYAML's own: parsing is most of the cost
# of reading a file of a few hundred targets (60-80 ms for 300 in Python). The composer stays
# PyYAML's, so that nesting is counted, and bounded, as each node is composed.
try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


class _Loader(Composer, _Parser, SafeConstructor, Resolver):  # type: ignore[misc,valid-type]
    """``yaml.SafeLoader`` with bounded depth and expansion, and no duplicate or non-text keys."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._seen: set[int] = set()
        self.lines: dict[str, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        # The composer recurses once per level: stop before Python's stack does.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise YamlRejected("", f"nested more than {MAX_DEPTH} levels deep", getattr(event, "start_mark", None))
            node: Node = super().compose_node(parent, index)  # type: ignore[no-untyped-call,assignment]
            return node
        finally:
            self._depth -= 1

    def inspect(self, root: Node) -> None:
        """Walk the composed document as it will be built (aliases expanded), without recursion:
        bound its size and depth, refuse self-containing aliases, check every mapping's keys once."""
        count = 0
        open_nodes: set[int] = set()
        stack: list[tuple[Node, str, int, bool]] = [(root, "", 0, False)]
        while stack:
            node, path, depth, leaving = stack.pop()
            if leaving:
                open_nodes.discard(id(node))
                continue
            count += 1
            self.lines.setdefault(path, node.start_mark.line + 1)
            if count > MAX_VALUES:
                raise YamlRejected(path, f"expands to more than {MAX_VALUES:,} values (YAML aliases?)", node.start_mark)
            if depth > MAX_DEPTH:
                raise YamlRejected(path, f"nested more than {MAX_DEPTH} levels deep (after expanding aliases)",
                                node.start_mark)
            if isinstance(node, ScalarNode):
                continue
            if id(node) in open_nodes:
                raise YamlRejected(path, "a YAML alias refers to a collection that contains it", node.start_mark)
            if id(node) not in self._seen:
                self._seen.add(id(node))
                if isinstance(node, MappingNode):
                    self._check_keys(node, path)
            open_nodes.add(id(node))
            stack.append((node, path, depth, True))
            if isinstance(node, SequenceNode):
                for index in range(len(node.value) - 1, -1, -1):
                    stack.append((node.value[index], f"{path}[{index}]", depth + 1, False))
            elif isinstance(node, MappingNode):
                for key, value in reversed(node.value):
                    merged = key.tag == _MERGE
                    label = str(key.value) if isinstance(key, ScalarNode) else "?"
                    child = path if merged else _join(path, label)
                    if not merged:
                        self.lines.setdefault(child, key.start_mark.line + 1)  # the key's line, not its value's
                    stack.append((value, child, depth + (0 if merged else 1), False))
                    stack.append((key, path, depth + 1, False))

    def _check_keys(self, node: MappingNode, path: str) -> None:
        """Keys of one mapping are text and unique (merged-in keys may be overridden, as YAML says)."""
        first: dict[str, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True) if isinstance(key_node, ScalarNode) else None  # type: ignore[no-untyped-call]
            if not isinstance(key, str):
                shown = key_node.value if isinstance(key_node, ScalarNode) else "a collection"
                raise YamlRejected(path, f"key {shown} is not text (quote it)", key_node.start_mark)
            if key in first:
                raise YamlRejected(
                    _join(path, key),
                    f"duplicate key ({_line(key_node.start_mark)}; first on {_line(first[key].start_mark)})",
                )
            first[key] = key_node


def _decode(shown: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(shown, "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})") from None


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path`` as plain data; a missing, unreadable, oversized or malformed file
    raises :class:`ConfigError` naming the file (and the key path and line where there is one)."""
    return read_yaml_with_lines(path)[0]


def line_of(lines: dict[str, int], key_path: str) -> str:
    """`` (line N)`` for a key path (``http[0].status``), or of the closest enclosing key; else ""."""
    path = key_path
    while path:
        if path in lines:
            return f" (line {lines[path]})"
        cut = max(path.rfind("."), path.rfind("["))
        path = path[: max(cut, 0)]
    return ""


def read_yaml_with_lines(path: Path) -> tuple[Any, dict[str, int]]:
    """:func:`read_yaml`, and the line each key path's value starts on (``{"http[0].url": 5}``), for
    messages about the data (a model's validation error) to name the line too."""
    shown = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(shown, "", f"is {size:,} bytes, more than the {MAX_BYTES:,} a file may have")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(shown, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(shown, "", f"cannot be read: {exc.strerror or exc}") from None
    text = _decode(shown, raw[: MAX_BYTES + 1])
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None, {}
        loader.inspect(node)
        return loader.construct_document(node), loader.lines
    except YamlRejected as exc:
        where = f" ({_line(exc.mark)})" if exc.mark is not None else ""
        raise ConfigError(shown, exc.key, f"{exc.problem}{where}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(shown, "", f"not valid YAML ({_yaml_problem(exc, text)})") from None
    except RecursionError:  # a bound above should always come first; never a traceback
        raise ConfigError(shown, "", f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        return f"line {line}: character #x{char:04x} is not allowed in YAML"
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["malformed"])[0]
    context = getattr(exc, "context", None)
    if context and problem.startswith("but "):
        problem = f"{context}, {problem}"
    return " ".join(f"{where}{problem}".split())
