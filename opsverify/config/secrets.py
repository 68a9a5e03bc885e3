"""Secret references and the redactor that keeps their values out of every output.

An environment file never holds a secret value, only a reference::

    token: {env: VAULT_TOKEN}          # the value of $VAULT_TOKEN
    creds: {file: /run/secrets/nats}   # the contents of a file (path relative to the env file)

A reference is resolved lazily, by the probe that needs it (``ref.reveal()``); a missing secret makes
only the checks that need it *error* (``SecretMissing``). Every revealed value is registered with the
process-wide :data:`REDACTOR`, which every writer and the console report pass their text through.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import stat
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from opsverify.errors import SecretMissing

MASK = "••••••"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
MIN_SECRET = 4
"""Shorter values are not redacted (they would mask ordinary words)."""
MIN_FRAGMENT = 4
"""The shortest start or end of a secret masked next to a cut (``...``)."""
MAX_SECRET_BYTES = 1024 * 1024
"""Largest secret file read (a certificate bundle or a .creds file is a few KiB)."""


class Redactor:
    """Replaces every known secret value, in every form a probe sends it in, with a mask. Thread-safe.

    A registered value is also looked for percent-encoded (``quote``, ``quote_plus``, either case of
    hex), in base64 (standard and URL-safe, padded or not, and the part of it that stays the same
    inside a longer base64 text), JSON-escaped, as Python writes it in a ``repr`` (traceback locals
    under ``-l``) and XML-escaped. A text cut short with ``...`` or ``…`` (pytest's ``saferepr``,
    the probes' own snippets) loses the start or end of a secret that ran into the cut too.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._raw: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        """Register a secret value (and each of its non-trivial lines), in all its forms."""
        with self._lock:
            for candidate in {value, value.strip(), *value.splitlines()}:
                candidate = candidate.strip()
                if len(candidate) >= MIN_SECRET:
                    self._raw.add(candidate)
                    self._values |= {f for f in encoded_forms(candidate) if len(f) >= MIN_SECRET}

    def redact(self, text: str) -> str:
        """``text`` with every registered secret (in any of its forms) replaced by a mask."""
        if not text:
            return text
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        if "..." in text or "…" in text:
            text = _mask_cut_fragments(text, values)
        return text

    def redact_obj(self, obj: Any) -> Any:
        """Redact every string inside a JSON-like structure."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        return obj

    def known(self) -> int:
        """How many secret values are registered (not counting their other forms)."""
        with self._lock:
            return len(self._raw)


REDACTOR = Redactor()


class SecretRef(BaseModel):
    """A reference to a secret: ``{env: NAME}`` or ``{file: PATH}``. Its repr never holds the value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(default=None, pattern=ENV_NAME, max_length=255,
                            description="an environment variable's name (letters, digits, _)")
    file: str | None = Field(default=None, min_length=1, max_length=4096)
    base_dir: str | None = None  # set by the loader: the environment file's directory

    @field_validator("file")
    @classmethod
    def _a_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "\x00" in value):
            raise ValueError("a secret file reference needs a path (no blanks or NUL characters)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _base_dir_from_context(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context and "base_dir" not in data:
            data = {**data, "base_dir": info.context.get("base_dir")}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of 'env' or 'file'")
        return self

    @model_validator(mode="after")
    def _a_readable_file(self) -> SecretRef:
        if self.file is not None:
            problem = file_problem(self.path)
            if problem is not None and not problem.startswith("cannot be read"):
                raise ValueError(f"secret file {self.path} {problem}")
        return self

    @property
    def label(self) -> str:
        """How the reference is named in messages (never the value)."""
        return f"${self.env}" if self.env else f"file {self.path}"

    @property
    def path(self) -> Path:
        assert self.file is not None
        path = Path(os.path.expandvars(os.path.expanduser(self.file)))
        if not path.is_absolute() and self.base_dir:
            path = Path(self.base_dir) / path
        return path

    def reveal(self) -> str:
        """The secret value; raises :class:`SecretMissing` naming the reference when absent."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise SecretMissing(f"secret {self.env} is not set")
        else:
            value = read_secret_file(self.path)
            if not value.strip():
                raise SecretMissing(f"secret file {self.path} is empty")
        REDACTOR.add(value)
        return value.strip() if self.env is None else value

    def try_register(self) -> None:
        """Register the value for redaction if it resolves; never raises."""
        try:
            self.reveal()
        except SecretMissing:
            pass

    def __repr__(self) -> str:
        return f"SecretRef({self.label})"

    __str__ = __repr__


def encoded_forms(value: str) -> set[str]:
    """``value`` as the probes and the report writers may write it (see :class:`Redactor`)."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/"),
             json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1],
             repr(value.encode())[2:-1], html.escape(value), html.escape(value, quote=False)}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in list(forms)}
    raw = value.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms |= {whole, whole.rstrip("=")}
        for shift in (0, 1, 2):  # inside a longer base64 text: the characters only these bytes decide
            shifted = encode(b"\0" * shift + raw).decode()
            first = -(-8 * shift // 6)
            last = (8 * (shift + len(raw))) // 6
            if last - first >= 8:
                forms.add(shifted[first:last])
    return forms


def _mask_cut_fragments(text: str, values: list[str]) -> str:
    """Mask the start of a secret just before a cut (``...``/``…``) and the end of one just after."""
    pieces = re.split(r"(\.\.\.|…)", text)
    for index in range(1, len(pieces), 2):
        for value in values:
            pieces[index - 1] = _cut_start(pieces[index - 1], value)
            pieces[index + 1] = _cut_end(pieces[index + 1], value)
    return "".join(pieces)


def _cut_start(before: str, value: str) -> str:
    """``before`` with a start of ``value`` (at least ``MIN_FRAGMENT`` long) that ends it masked."""
    tail = before[-(len(value) - 1):] if len(value) > 1 else ""
    head = value[:MIN_FRAGMENT]
    pos = tail.find(head)
    while pos != -1:
        if value.startswith(tail[pos:]):
            return before[: len(before) - len(tail) + pos] + MASK
        pos = tail.find(head, pos + 1)
    return before


def _cut_end(after: str, value: str) -> str:
    """``after`` with an end of ``value`` (at least ``MIN_FRAGMENT`` long) that starts it masked."""
    window = after[: len(value) - 1]
    end = value[-MIN_FRAGMENT:]
    pos = window.rfind(end)
    while pos != -1:
        size = pos + len(end)
        if value.endswith(window[:size]):
            return MASK + after[size:]
        pos = window.rfind(end, 0, pos + len(end) - 1)
    return after


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot hold a secret (not a regular file, too large, unreadable), or ``None``.

    A device (``/dev/zero``), a FIFO or a directory would hang a read or fill memory.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return _kind_problem(info)


def _kind_problem(info: os.stat_result) -> str | None:
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (a device, FIFO, socket or directory cannot hold a secret)"
    if info.st_size > MAX_SECRET_BYTES:
        return f"is larger than {MAX_SECRET_BYTES // 1024} KiB ({info.st_size:,} bytes): not a secret"
    return None


def read_secret_file(path: Path) -> str:
    """The text of a secret file, read with a cap and never blocking; raises :class:`SecretMissing`
    naming the file when it is not a regular file, too large, unreadable or not UTF-8."""
    problem = file_problem(path)
    if problem is not None:
        raise SecretMissing(f"secret file {path} {problem}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise SecretMissing(f"secret file {path} cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as handle:
        problem = _kind_problem(os.fstat(handle.fileno()))  # what was opened, not what was looked at
        if problem is not None:
            raise SecretMissing(f"secret file {path} {problem}")
        try:
            data = handle.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise SecretMissing(f"secret file {path} cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_SECRET_BYTES:
        raise SecretMissing(f"secret file {path} is larger than {MAX_SECRET_BYTES // 1024} KiB: not a secret")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretMissing(f"secret file {path} is not UTF-8 text") from None


def iter_secret_refs(obj: Any) -> list[SecretRef]:
    """Every :class:`SecretRef` inside a model (recursively)."""
    found: list[SecretRef] = []
    if isinstance(obj, SecretRef):
        found.append(obj)
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            found.extend(iter_secret_refs(getattr(obj, name)))
    elif isinstance(obj, dict):
        for value in obj.values():
            found.extend(iter_secret_refs(value))
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            found.extend(iter_secret_refs(value))
    return found
