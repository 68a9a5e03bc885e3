"""``rotation:``: a credential rotation in progress in this environment, and the phase to verify.

The checks marked ``rotation`` (old NATS creds kept until the rollout completes, the previous
Restate token, a retired Redis password, a JWT signing key's second key id ...) verify the
expectations of exactly one phase:

=========  ===================================================
phase      what the rotation checks expect
=========  ===================================================
before     the old credential works (the new one need not yet)
overlap    the old and the new credential both work
after      the new credential works, the old one is rejected
=========  ===================================================

Declared in the environment file's ``rotation:`` block (``--phase`` on the command line overrides it
for every credential of the run); its keys: ``docs/environment/reference.md#top-level``, with an
example in the README ("Credential rotation phases").

Without a ``rotation:`` block and without ``--phase`` the rotation checks see no phase (``None``)
and verify the end state of a finished rotation (an old credential, if still configured, must be
rejected).

Example::

    rotation = env.rotation
    rotation.phase_for("nats", "wasmcloud")      # "overlap" (or None: not rotating)
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

from pydantic import Field, field_validator, model_validator

from opsverify.config.base import Strict


class Phase(str, Enum):
    """A rotation phase: ``before`` (old works), ``overlap`` (both work), ``after`` (only new works)."""

    before = "before"
    overlap = "overlap"
    after = "after"


PHASES = tuple(p.value for p in Phase)


class RotatingCredential(Strict):
    """One target whose credential is being rotated, optionally in a phase of its own."""

    target: str = Field(pattern=r"^[a-z_]+/[A-Za-z0-9][A-Za-z0-9_.-]*$",
                        description="<section>/<target name>, e.g. nats/wasmcloud")
    phase: Phase | None = Field(default=None, description="default: the rotation's phase")

    @property
    def section(self) -> str:
        return self.target.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.target.split("/", 1)[1]


class Rotation(Strict):
    """A rotation in progress: its phase and, optionally, which credentials it concerns."""

    phase: Phase | None = Field(default=None, description="phase of every listed credential without its own")
    change: str = Field(default="", description="change record / ticket, shown in the summary")
    started_at: dt.datetime | None = None
    credentials: list[RotatingCredential] = Field(
        default_factory=list, description="<section>/<target> entries; empty: every target of the environment"
    )

    @field_validator("credentials", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"target": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _every_credential_has_a_phase(self) -> Rotation:
        if self.phase is None and (not self.credentials or any(c.phase is None for c in self.credentials)):
            raise ValueError("set rotation.phase (before | overlap | after), or a phase on every credential")
        seen: set[str] = set()
        for cred in self.credentials:
            if cred.target in seen:
                raise ValueError(f"credential {cred.target} is listed twice")
            seen.add(cred.target)
        return self

    def phase_for(self, section: str, target: str) -> str | None:
        """The phase of ``section/target`` (``None`` when this rotation does not concern it)."""
        if not self.credentials:
            return self.phase.value if self.phase else None
        for cred in self.credentials:
            if cred.section == section and cred.name == target:
                chosen = cred.phase or self.phase
                return chosen.value if chosen else None
        return None

    def phases(self) -> dict[str, str]:
        """``{"nats/wasmcloud": "overlap", ...}``, or ``{"*": phase}`` when every target rotates."""
        if not self.credentials:
            return {"*": self.phase.value} if self.phase else {}
        return {c.target: (c.phase or self.phase).value for c in self.credentials}  # type: ignore[union-attr]

    def unknown_targets(self, known: set[tuple[str, str]]) -> list[str]:
        """Listed credentials that name no target of the environment."""
        return [c.target for c in self.credentials if (c.section, c.name) not in known]
