"""The environment file reference (``docs/environment/reference.md``), generated from the config models.

Every key of every registered section is listed once, with its type, default and the field's
``description``: the models are the truth, so the reference is never edited by hand::

    python -m opsverify.config.reference --write docs/environment/reference.md   # regenerate
    python -m opsverify.config.reference --check docs/environment/reference.md   # exit 1 when stale

:func:`reference` renders the whole document, :func:`section_rows` the rows of one model (a key path
such as ``raft.min_peers`` or ``keys[].min_ttl`` per field, nested models, lists and mappings of
models walked into; secret references and thresholds are leaves).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from opsverify.config.base import SECTIONS, SectionSpec
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import COUNT_MAX, Judged, Threshold
from opsverify.config.values import check_host, http_url, ws_url

COMMAND = "python -m opsverify.config.reference --write docs/environment/reference.md"
"""The command that regenerates the committed reference."""

_VALUE_TYPES: dict[Any, str] = {
    str: "text", int: "integer", float: "number", bool: "true/false", dt.datetime: "date-time",
    dt.date: "date", Any: "any value", object: "any value",
}
_PLAIN = re.compile(r"^[A-Za-z0-9_/.][A-Za-z0-9_/.+-]*$")
"""Text YAML reads as itself, unquoted (no ``:``, ``#``, braces, blanks, leading ``-``)."""
_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "~"}
_CHECKS = {http_url: "URL (http:// or https://)", ws_url: "URL (ws:// or wss://)",
           check_host: "host name or IP address"}


@dataclass(frozen=True)
class Row:
    """One key of the reference: its path inside a target, type, default and meaning."""

    key: str
    type: str
    default: str
    description: str


def _code(text: str) -> str:
    """``text`` as inline code in a Markdown table cell."""
    return f"`{text}`"


def _cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: one line, ``|`` escaped, ``<`` outside code not a tag."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def _inline(value: Any) -> str:
    """A default value written as it would be in the YAML file."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if _PLAIN.match(value) and value not in _WORDS else json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return str(value)


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """An annotation without ``Annotated`` and its metadata (constraints and validators)."""
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        metadata.extend(annotation.__metadata__)
        annotation = get_args(annotation)[0]
    flat: list[Any] = []
    for item in metadata:
        flat.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return annotation, flat


def _members(annotation: Any) -> list[Any]:
    """The members of a union (``None`` dropped), or the annotation itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _threshold(metadata: list[Any]) -> str:
    """How a threshold field is written and judged, from its validators."""
    from opsverify.config.vault import duration_threshold

    rule = next((m.func for m in metadata if isinstance(getattr(m, "func", None), Judged)), None)
    durations = any(getattr(m, "func", None) is duration_threshold for m in metadata)
    what = "a duration (45s, 30m, 12h, 7d, 1h30m, or a number of days)" if durations else "a number"
    text = f"threshold: {what} or {{warn, critical}}"
    if rule is None:
        return text
    worse = "larger" if rule.direction == "at_most" else "smaller"
    return f"{text}, {worse} is worse, {_levels(rule, durations)}"


def _levels(rule: Judged, durations: bool) -> str:
    """The levels a threshold rule allows: ``0..86400000 ms``, ``>= 0``, ``any number``."""
    if durations:
        return rule.describe_range()
    unit = f" {rule.unit}" if rule.unit else ""
    if rule.low is None:
        return "any number" if rule.high is None else f"<= {_inline(rule.high)}{unit}"
    if rule.high is None or rule.high >= COUNT_MAX:
        return f">= {_inline(rule.low)}{unit}"
    return f"{_inline(rule.low)}..{_inline(rule.high)}{unit}"


def _bounds(metadata: list[Any]) -> list[str]:
    """Numeric, length and pattern constraints in words."""
    low = next((m for m in metadata if isinstance(m, (at.Ge, at.Gt))), None)
    high = next((m for m in metadata if isinstance(m, (at.Le, at.Lt))), None)
    shown: list[str] = []
    if isinstance(low, at.Ge) and isinstance(high, at.Le):
        shown.append(f"{_inline(low.ge)}..{_inline(high.le)}")
    else:
        if low is not None:
            shown.append(f">= {_inline(low.ge)}" if isinstance(low, at.Ge) else f"> {_inline(low.gt)}")
        if high is not None:
            shown.append(f"<= {_inline(high.le)}" if isinstance(high, at.Le) else f"< {_inline(high.lt)}")
    shortest = next((m.min_length for m in metadata if isinstance(m, at.MinLen)), None)
    longest = next((m.max_length for m in metadata if isinstance(m, at.MaxLen)), None)
    if shortest is not None and longest is not None:
        shown.append(f"length {shortest}..{longest}")
    elif shortest:
        shown.append(f"at least {shortest} long")
    elif longest is not None:
        shown.append(f"at most {longest} long")
    shown += [f"matching {_code(p)}" for m in metadata if (p := getattr(m, "pattern", None)) is not None]
    return shown


def type_text(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A field's type in words: ``integer, 1..65535``, ``list of text``, ``one of `any`, `active```."""
    annotation, inner = _split(annotation)
    metadata = [*(metadata or []), *inner]
    members = _members(annotation)
    if len(members) > 1:
        return " or ".join(type_text(m) for m in members) + "".join(f", {b}" for b in _bounds(metadata))
    annotation = members[0]
    annotation, inner = _split(annotation)
    metadata += inner
    if annotation is Threshold:
        return _threshold(metadata)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(_code(_inline(a)) for a in args)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(_code(str(m.value)) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, SecretRef):
        extra = "" if annotation is SecretRef else " (with the keys below)"
        return "secret reference: {env: NAME} or {file: PATH}" + extra
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (keys below)"
    if origin in (list, tuple, set, frozenset):
        return f"list of {type_text(args[0])}" + "".join(f", {b}" for b in _bounds(metadata))
    if origin in (dict, Mapping):
        return f"mapping of {type_text(args[0])} to {type_text(args[1])}"
    checked = [_CHECKS[m.func] for m in metadata if getattr(m, "func", None) in _CHECKS]
    base = checked[0] if checked else _VALUE_TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return ", ".join([base, *_bounds(metadata)])


def _default(field: FieldInfo) -> str:
    """The default as it would be written, ``**required**``, or blank when unset means "not checked"."""
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    if value is None:
        return ""
    if isinstance(value, BaseModel) and not isinstance(value, Threshold):
        return "(keys below)"
    return _code(_inline(value))


def _prose(text: str | None) -> str:
    """A description or a docstring's first paragraph, reST literals as Markdown code."""
    return (text or "").strip().split("\n\n", 1)[0].replace("``", "`")


def _models(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """The models a field's value may hold, each with the key-path suffix to reach its keys."""
    annotation, _ = _split(annotation)
    for member in _members(annotation):
        member, _ = _split(member)
        origin, args = get_origin(member), get_args(member)
        if origin in (list, tuple, set, frozenset):
            yield from (("[]" + s, m) for s, m in _models(args[0]))
        elif origin in (dict, Mapping):
            yield from ((".<name>" + s, m) for s, m in _models(args[1]))
        elif isinstance(member, type) and issubclass(member, BaseModel) and member not in (SecretRef, Threshold):
            yield "", member


def fields_of(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The keys a file may give for ``model``, by the name written in the file (its alias).

    A :class:`SecretRef` subclass (a header value) lists only the keys it adds to ``env``/``file``.
    """
    inherited = SecretRef.model_fields if issubclass(model, SecretRef) else {}
    return {(f.alias or n): f for n, f in model.model_fields.items() if n not in inherited and not f.exclude}


def section_rows(model: type[BaseModel], prefix: str = "", seen: tuple[type[BaseModel], ...] = ()) -> list[Row]:
    """A row for every key of ``model`` and, under it, of the models its fields hold."""
    rows: list[Row] = []
    for key, field in fields_of(model).items():
        path = prefix + key
        nested = [(s, m) for s, m in _models(field.annotation) if m not in seen]
        meaning = _prose(field.description or next((m.__doc__ for _, m in nested), ""))
        rows.append(Row(path, type_text(field.annotation, list(field.metadata)), _default(field), meaning))
        for suffix, nested_model in nested:
            rows += section_rows(nested_model, f"{path}{suffix}.", (*seen, model))
    return rows


def _table(rows: list[Row]) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| {_code(r.key)} | {_cell(r.type)} | {_cell(r.default)} | {_cell(r.description)} |" for r in rows]
    return lines


def _section(spec: SectionSpec) -> list[str]:
    return [
        f"## {spec.key}", "",
        f"{spec.doc}." if spec.doc and not spec.doc.endswith(".") else spec.doc, "",
        f"`{spec.key}:` is a list of targets ({spec.model.__name__}); each item has these keys:", "",
        *_table(section_rows(spec.model)), "",
    ]


HEADER = f"""\
# Environment file reference

<!-- Generated from the config models (opsverify/config/*.py): do not edit by hand.
     Change a model or its Field(description=...), then run: {COMMAND} -->

Every key an environment file (`environments/<name>.yaml`) may hold, generated from the models that
validate it. What each check does with these keys, and its messages, is in the system's own page in
this directory. Unknown keys are usage errors; a key left out takes the default shown (blank: the
key is optional and, unset, its check does not run or takes the environment default named in its
description).

- **secret reference**: `{{env: NAME}}` (an environment variable) or `{{file: PATH}}` (a file, relative
  to the environment file); never the value itself.
- **threshold**: a number (the failing, *critical* level) or `{{warn: W, critical: C}}`; "larger is
  worse" fails above the level, "smaller is worse" below it, and `warn` must come before `critical`
  in that direction. Duration thresholds take `45s`, `30m`, `12h`, `7d`, `2w`, `1h30m` or a number of
  days.
- **key paths**: `a.b` is key `b` of mapping `a`; `a[].b` is key `b` of each item of list `a`;
  `a.<name>.b` is key `b` of each value of mapping `a`.
"""


def reference(sections: Mapping[str, SectionSpec] | None = None) -> str:
    """The whole reference document: the top-level keys, then one table per section."""
    from opsverify.config.model import EnvironmentBase, environment_model

    environment_model()  # imports every section module, so SECTIONS is complete
    specs = dict(sorted((sections if sections is not None else SECTIONS).items()))
    top = section_rows(EnvironmentBase)
    top += [Row(k, f"list of targets ([below](#{k}))", "", s.doc) for k, s in specs.items()]
    lines = [HEADER, "## Top level", "", *_table(top), ""]
    for spec in specs.values():
        lines += _section(spec)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m opsverify.config.reference [--write PATH | --check PATH]``: print, write or verify."""
    parser = argparse.ArgumentParser(prog="python -m opsverify.config.reference",
                                     description="The environment file reference, from the config models.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="PATH", help="write the reference to PATH")
    group.add_argument("--check", type=Path, metavar="PATH", help="exit 1 when PATH is not the current reference")
    args = parser.parse_args(argv)
    text = reference()
    try:
        if args.write:
            args.write.write_text(text, encoding="utf-8")
        elif args.check:
            if args.check.read_text(encoding="utf-8") != text:
                print(f"{args.check} is stale: run {COMMAND}", file=sys.stderr)
                return 1
        else:
            sys.stdout.write(text)
    except OSError as exc:
        print(f"{parser.prog}: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
