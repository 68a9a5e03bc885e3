"""The project's runbooks (``runbooks/*.md``) as data: procedures and verifiable steps with stable ids.

Format of a runbook file::

    # Vault                                  <- the runbook's title
    ## Sealed Vault                          <- a procedure
    ### vault#sealed — Vault is unsealed     <- a verifiable step: id — title
    **Action:** Unseal with 3 of 5 key shares (`bao operator unseal`), then ...

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
_PROCEDURE = re.compile(r"^##\s+(?P<title>[^#].*?)\s*$")
_TITLE = re.compile(r"^#\s+(?P<title>.+?)\s*$")


@dataclass(frozen=True)
class Step:
    """One verifiable runbook step."""

    id: str
    title: str
    action: str
    procedure: str
    runbook: str
    file: str

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


def load_runbooks(directory: Path) -> RunbookBook:
    """Parse every ``*.md`` in ``directory``; raises :class:`ConfigError` on a malformed step."""
    book = RunbookBook()
    for path in sorted(directory.glob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        rel = f"{directory.name}/{path.name}"
        title = path.stem
        procedure = ""
        pending: tuple[str, str, int] | None = None
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            if (m := _TITLE.match(line)) and not line.startswith("##"):
                title = m.group("title")
                continue
            if m := _STEP.match(line):
                if pending:
                    raise ConfigError(rel, f"line {pending[2]}", f"step {pending[0]} has no **Action:** line")
                if m.group("id") in book.steps:
                    raise ConfigError(rel, f"line {number}", f"duplicate step id {m.group('id')}")
                pending = (m.group("id"), m.group("title"), number)
                continue
            if (m := _PROCEDURE.match(line)) and not line.startswith("###"):
                if pending:
                    raise ConfigError(rel, f"line {pending[2]}", f"step {pending[0]} has no **Action:** line")
                procedure = m.group("title")
                book.procedures.setdefault(f"{title} / {procedure}", [])
                continue
            if pending and (m := _ACTION.match(line)):
                step_id, step_title, _ = pending
                book.steps[step_id] = Step(step_id, step_title, m.group("action"), procedure, title, rel)
                book.procedures.setdefault(f"{title} / {procedure}", []).append(step_id)
                pending = None
        if pending:
            raise ConfigError(rel, f"line {pending[2]}", f"step {pending[0]} has no **Action:** line")
    return book
