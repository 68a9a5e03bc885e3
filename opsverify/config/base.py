"""Building blocks shared by every section of an environment file.

A *section* is a top-level key of the environment file that lists named *targets* of one system
(``http:``, ``tls:``, ``nats:`` ...). Each system declares its target model in a module of
:mod:`opsverify.config` and registers it with :func:`section`; the environment model is assembled
from every registered section, so adding a system never edits a central list.

Example (``opsverify/config/tcp.py``)::

    class TcpTarget(Target):
        host: str
        port: int

    section("tcp", TcpTarget, system="tcp", doc="TCP ports that must accept connections")
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from opsverify.config.thresholds import Threshold

if TYPE_CHECKING:
    from opsverify.config.model import Defaults


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Safety(str, Enum):
    """What a check does to the system it verifies (DESIGN.md §6)."""

    read_only = "read_only"
    mutating = "mutating"
    disruptive = "disruptive"


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Target(Strict):
    """One named thing a section verifies. ``timeout_s`` falls back to the environment default."""

    name: str = Field(pattern=NAME_PATTERN)
    timeout_s: float | None = Field(default=None, gt=0, le=300)
    safety: Safety | None = Field(
        default=None,
        description="declare what this target's probes do, overriding the check's own class "
        "(e.g. read_only for a dry-run webhook verifier)",
    )

    def fill_defaults(self, defaults: Defaults) -> None:
        """Fill every unset field that has an environment-level default (called once, after load)."""
        if self.timeout_s is None:
            self.timeout_s = defaults.timeout_s

    @property
    def timeout(self) -> float:
        """The probe timeout in seconds (always set after loading)."""
        return float(self.timeout_s or 5.0)


def threshold_or(value: Threshold | None, default: Threshold) -> Threshold:
    """``value`` when set, else ``default``."""
    return value if value is not None else default


@dataclass(frozen=True)
class SectionSpec:
    """A registered section: its key in the file, its target model and the system it belongs to."""

    key: str
    model: type[Target]
    system: str
    doc: str
    many: bool = True


SECTIONS: dict[str, SectionSpec] = {}


def section(key: str, model: type[Target], *, system: str | None = None, doc: str = "") -> SectionSpec:
    """Register a section of the environment file (a list of ``model`` targets under ``key``)."""
    spec = SectionSpec(key=key, model=model, system=system or key, doc=doc)
    SECTIONS[key] = spec
    return spec


def dump_public(model: BaseModel) -> dict[str, Any]:
    """A model as plain data, secret references shown by label only."""
    return model.model_dump(mode="json", exclude_none=True)
