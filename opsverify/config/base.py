"""Building blocks shared by every section of an environment file.

A *section* is a top-level key of the environment file that lists named *targets* of one system
(``http:``, ``tls:``, ``nats:`` ...). Each system declares its target model in a module of
:mod:`opsverify.config` and registers it with :func:`section`; the environment model is assembled
from every registered section, so adding a system never edits a central list.

Example (``opsverify/config/network.py``)::

    class TcpTarget(Target):
        host: Host = Field(description="the name or address to connect to")
        port: Port

    section("tcp", TcpTarget, doc="TCP ports that must accept a connection")

Every field's ``description`` is its line in ``docs/environment/reference.md``, which is generated
from the registered sections (:mod:`opsverify.config.reference`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from opsverify.config.thresholds import Threshold

if TYPE_CHECKING:
    from opsverify.config.model import Defaults


INT_LIMIT = 2**63
"""Integers from a file must fit in 64 bits (the libraries the probes hand them to are C code)."""
STR_LIMIT = 65_536
"""Longest text value a file may give (a request body or a PEM bundle fits easily)."""


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are not coerced loosely.

    Numbers must be finite (no ``.nan``, ``.inf``), integers fit in 64 bits, and ``true``/``false``
    are not numbers (``status: [true]`` is an error, not HTTP status 1).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False, defer_build=True,
                              str_max_length=STR_LIMIT)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_or_huge_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None or isinstance(value, (str, dict)) or value is None:
            return value
        takes_bool, takes_any, takes_number = _accepts(cls, info.field_name)
        if takes_any or not takes_number:
            return value
        for item in _scalars(value):
            if isinstance(item, bool):
                if not takes_bool:
                    raise ValueError(f"{str(item).lower()} is not a number here")
            elif isinstance(item, int) and abs(item) >= INT_LIMIT:
                raise ValueError("number is too large (integers must fit in 64 bits)")
        return value


def _scalars(value: Any) -> list[Any]:
    """``value`` and the scalars of the lists in it (not mappings: those are models of their own)."""
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif not isinstance(item, dict):
            found.append(item)
    return found


@lru_cache(maxsize=None)
def _accepts(model: type[BaseModel], field: str) -> tuple[bool, bool, bool]:
    """Whether a field's type takes ``bool``, anything (``Any``), and a number, anywhere in it."""
    info = model.model_fields.get(field)
    if info is None:
        return True, True, True
    takes_bool = takes_any = takes_number = False
    stack: list[Any] = [info.annotation]
    while stack:
        annotation = stack.pop()
        if annotation is bool:
            takes_bool = True
        elif annotation in (int, float):
            takes_number = True
        elif annotation is Any or annotation is object:
            takes_any = True
        elif not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            stack.extend(get_args(annotation))  # unions, lists, dicts, Annotated (models check their own)
    return takes_bool, takes_any, takes_number


class Safety(str, Enum):
    """What a check does to the system it verifies (see the README, "Safety classes")."""

    read_only = "read_only"
    mutating = "mutating"
    disruptive = "disruptive"


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
NAME_MAX = 64
"""Longest name of an environment, target or item (names become check ids and report file names)."""


class Target(Strict):
    """One named thing a section verifies. ``timeout_s`` falls back to the environment default."""

    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX,
                      description="the target's name, unique in its section: check ids read <env>-<name>")
    timeout_s: float | None = Field(default=None, gt=0, le=300,
                                    description="seconds each probe of this target may take (defaults.timeout_s)")
    safety: Safety | None = Field(
        default=None,
        description="raise the class of every check of this target (mutating or disruptive); a target "
        "cannot lower what its checks send",
    )

    @field_validator("safety")
    @classmethod
    def _only_raises(cls, value: Safety | None) -> Safety | None:
        if value == Safety.read_only:
            raise ValueError(
                "read_only cannot lower what this target's checks send (a non-GET request, a publish, a "
                "delivery or a burst is never read_only); remove it, give mutating or disruptive to raise "
                "the class, or for a webhook receiver that only verifies set dry_run: true"
            )
        return value

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
