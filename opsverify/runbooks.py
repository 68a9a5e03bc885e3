"""The project's runbooks (``runbooks/*.md``) as data: procedures and verifiable steps with stable ids.

Format of a runbook file::

    # Vault                                  <- the runbook's title
    ## Sealed Vault                          <- a procedure
    ### vault#sealed — Vault is unsealed     <- a step: id — title
    **Action:** Unseal with 3 of 5 key shares (`bao operator unseal`), then ...
    **Manual:** reason                        <- optional: a step no check can verify (not counted)

Every check carries ``@pytest.mark.runbook("vault#sealed")``; an unknown id is a collection error,
and a failing check's message ends with the step's action and id.

Example::

    book = load_runbooks(Path("runbooks"))
    book.step("vault#sealed").action
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from opsverify.errors import ConfigError

_STEP = re.compile(r"^###\s+(?P<id>[a-z0-9][a-z0-9_-]*#[a-z0-9][a-z0-9_.-]*)\s+[—-]+\s+(?P<title>.+?)\s*$")
_ACTION = re.compile(r"^\*\*Action:\*\*\s*(?P<action>.+?)\s*$")
_MANUAL = re.compile(r"^\*\*Manual:\*\*\s*(?P<reason>.+?)\s*$")


@dataclass(frozen=True)
class Step:
    """One verifiable runbook step."""

    id: str
    title: str
    action: str
    procedure: str
    runbook: str
    file: str
    manual: str | None = None  # why no check can verify this step (``**Manual:** reason``)

    @property
    def link(self) -> str:
        """Relative link to the step in the repository (``runbooks/vault.md#vault-sealed``)."""
        anchor = re.sub(r"[^a-z0-9 -]", "", f"{self.id} — {self.title}".lower()).replace(" ", "-")
        return f"{self.file}#{anchor}"


@dataclass
class RunbookBook:
    """Every step of every runbook, by id."""

    steps: dict[str, Step] = field(default_factory=dict)
    procedures: dict[str, list[str]] = field(default_factory=dict)

    def step(self, step_id: str) -> Step:
        try:
            return self.steps[step_id]
        except KeyError:
            raise KeyError(f"unknown runbook step {step_id!r}") from None

    def __contains__(self, step_id: object) -> bool:
        return step_id in self.steps


def load_runbooks(*directories: Path) -> RunbookBook:
    """Parse every ``*.md`` in each of ``directories`` (a folder given twice is read once) into one
    book; raises :class:`ConfigError` on a malformed step or a step id two files both define."""
    book = RunbookBook()
    for directory in dict.fromkeys(d.resolve() for d in directories):
        for path in sorted(directory.glob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            _parse_file(book, path, f"{directory.name}/{path.name}")
    return book


def _parse_file(book: RunbookBook, path: Path, rel: str) -> None:
    title = path.stem
    procedure = ""
    current: dict[str, str | int | None] | None = None

    def close() -> None:
        if current is None:
            return
        if not current["action"]:
            raise ConfigError(rel, f"line {current['line']}", f"step {current['id']} has no **Action:** line")
        step = Step(
            str(current["id"]), str(current["title"]), str(current["action"]), procedure, title, rel,
            manual=str(current["manual"]) if current["manual"] else None,
        )
        book.steps[step.id] = step
        book.procedures.setdefault(f"{title} / {procedure}", []).append(step.id)

    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("# "):
            title = line[2:].strip()
        elif m := _STEP.match(line):
            close()
            if m.group("id") in book.steps:
                raise ConfigError(rel, f"line {number}", f"duplicate step id {m.group('id')}")
            current = {"id": m.group("id"), "title": m.group("title"), "action": None, "manual": None,
                       "line": number}
        elif line.startswith("## "):
            close()
            current = None
            procedure = line[3:].strip()
            book.procedures.setdefault(f"{title} / {procedure}", [])
        elif current is not None and (m := _ACTION.match(line)):
            current["action"] = m.group("action")
        elif current is not None and (m := _MANUAL.match(line)):
            current["manual"] = m.group("reason")
    close()
