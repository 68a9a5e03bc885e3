"""The typed environment model and its loader.

One YAML file per environment (``environments/<name>.yaml``)::

    name: staging
    tier: staging                 # dev | staging | production: picks default thresholds and safety
    allow: [read_only, mutating]  # production defaults to [read_only]
    defaults: {timeout_s: 5, tls_min_days: {warn: 30, critical: 14}}
    http: [...]
    tls: [...]

:func:`load_environment` validates a file once, before collection; every problem becomes a
:class:`~opsverify.errors.ConfigError` naming the file and the key path (``http[0].status``).
Defaults are filled in one place: :meth:`Environment.fill_defaults`.
"""

from __future__ import annotations

import importlib
import pkgutil
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, create_model, model_validator

from opsverify.config.analysis import Analysis
from opsverify.config.base import NAME_MAX, NAME_PATTERN, SECTIONS, Safety, Strict, Target
from opsverify.config.loader import line_of, read_yaml_with_lines
from opsverify.config.rotation import Rotation
from opsverify.config.secrets import SecretRef, iter_secret_refs
from opsverify.config.thresholds import MaxMs, MinDays, Threshold
from opsverify.config.values import key_text
from opsverify.errors import ConfigError
from opsverify.extras import missing_extra


class Tier(str, Enum):
    """How careful to be: picks default thresholds and the default allowed safety classes."""

    dev = "dev"
    staging = "staging"
    production = "production"


TIER_DEFAULTS: dict[Tier, dict[str, Any]] = {
    Tier.dev: {
        "tls_min_days": {"warn": 14, "critical": 7},
        "http_latency_ms": {"warn": 1000, "critical": 2000},
        "credential_min_days": {"warn": 14, "critical": 3},
    },
    Tier.staging: {
        "tls_min_days": {"warn": 30, "critical": 14},
        "http_latency_ms": {"warn": 500, "critical": 1000},
        "credential_min_days": {"warn": 30, "critical": 7},
    },
    Tier.production: {
        "tls_min_days": {"warn": 30, "critical": 14},
        "http_latency_ms": {"warn": 400, "critical": 800},
        "credential_min_days": {"warn": 30, "critical": 14},
    },
}

TIER_ALLOW: dict[Tier, list[Safety]] = {
    Tier.dev: [Safety.read_only, Safety.mutating, Safety.disruptive],
    Tier.staging: [Safety.read_only, Safety.mutating],
    Tier.production: [Safety.read_only],
}


class Defaults(Strict):
    """Environment-wide defaults; a target's own value always wins. Unset ones come from the tier."""

    timeout_s: float = Field(default=5.0, gt=0, le=300, description="seconds every probe may take")
    tls_min_days: MinDays | None = Field(default=None, description="days a certificate must have left; default by tier")
    http_latency_ms: MaxMs | None = Field(default=None, description="latency budget of answers; by tier")
    credential_min_days: MinDays | None = Field(default=None, description="days a credential must have left")
    max_credential_age_days: float = Field(default=90, gt=0, le=36_500,
                                           description="days since a credential was issued or rotated, at most")

    def for_tier(self, tier: Tier) -> Defaults:
        """A copy with every unset threshold taken from ``tier``'s defaults."""
        filled = self.model_copy()
        for key, value in TIER_DEFAULTS[tier].items():
            if getattr(filled, key) is None:
                setattr(filled, key, Threshold.model_validate(value))
        return filled


class EnvironmentBase(Strict):
    """Fields every environment has; the sections are added from the registry."""

    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX,
                      description="the environment's name (default: the file name); check ids start with it")
    tier: Tier = Field(default=Tier.dev, description="picks the default thresholds and the safety classes allowed")
    allow: list[Safety] | None = Field(
        default=None, description="safety classes whose checks may run; default by tier: dev all three, staging "
        "read_only and mutating, production read_only")
    description: str = Field(default="", description="free text about the environment")
    defaults: Defaults = Field(default_factory=Defaults)
    rotation: Rotation | None = Field(default=None, description="a credential rotation in progress (README: rotation phases)")
    analysis: Analysis | None = Field(default=None, description="judge read-only checks over a window of samples")
    source: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _fill(self) -> EnvironmentBase:
        self.defaults = self.defaults.for_tier(self.tier)
        if self.allow is None:
            self.allow = list(TIER_ALLOW[self.tier])
        for key in SECTIONS:
            targets: list[Target] = getattr(self, key, None) or []
            seen: set[str] = set()
            for index, target in enumerate(targets):
                if target.name in seen:
                    raise ValueError(f"{key}[{index}].name: duplicate target name {target.name!r}")
                seen.add(target.name)
                target.fill_defaults(self.defaults)
        if self.rotation is not None:
            known = {(key, t.name) for key in SECTIONS for t in self.targets(key)}
            unknown = self.rotation.unknown_targets(known)
            if unknown:
                raise ValueError(f"rotation.credentials: {', '.join(unknown)} names no target of this environment")
        return self

    @property
    def allowed(self) -> set[Safety]:
        return set(self.allow or [])

    def targets(self, key: str) -> list[Target]:
        """The targets of section ``key`` (empty when the file has none)."""
        return list(getattr(self, key, None) or [])

    def target(self, key: str, name: str) -> Target:
        """The target ``name`` of section ``key`` (raises ``KeyError``)."""
        index: dict[tuple[str, str], Target] | None = self.__dict__.get("_target_index")
        if index is None:
            index = {(k, t.name): t for k in SECTIONS for t in self.targets(k)}
            self.__dict__["_target_index"] = index
        try:
            return index[(key, name)]
        except KeyError:
            raise KeyError(f"{self.name}: no {key} target named {name!r}") from None

    def secret_refs(self) -> list[SecretRef]:
        return iter_secret_refs(self)


def _discover_sections() -> None:
    import opsverify.config as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in {"base", "model", "secrets", "thresholds", "loader", "analysis", "values"}:
            importlib.import_module(f"opsverify.config.{info.name}")


@lru_cache(maxsize=1)
def environment_model() -> type[EnvironmentBase]:
    """The environment model with every registered section (discovered once)."""
    _discover_sections()
    return _model_with(frozenset(SECTIONS))


@lru_cache(maxsize=8)
def _model_with(keys: frozenset[str]) -> type[EnvironmentBase]:
    """The environment model with the sections ``keys`` only.

    Config models build their validators on first use (``defer_build``), so validating a file with
    this model builds the models of the sections the file has, not those of every system (0.2 s of
    every start-up for a file of HTTP targets alone). A key that is no section stays unknown.
    """
    specs = {key: SECTIONS[key] for key in sorted(keys)}
    fields: dict[str, Any] = {
        key: (list[spec.model] | None, Field(default=None, description=spec.doc))  # type: ignore[name-defined]
        for key, spec in specs.items()
    }
    model: type[EnvironmentBase] = create_model("Environment", __base__=EnvironmentBase, **fields)
    return model


Environment = EnvironmentBase


def _key_path(loc: tuple[int | str, ...], data: Any) -> tuple[str, str]:
    """The key path of a validation error's location, and the name of the target it is in."""
    parts: list[str] = []
    node = data
    label = ""
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    label = node["name"] if len(node["name"]) <= 40 else node["name"][:39] + "…"
            continue
        if _is_type_tag(item):
            continue
        parts.append(("." if parts else "") + key_text(item))
        node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts), label


_TYPE_TAGS = {"int", "str", "float", "bool", "none", "dict", "list"}


def _is_type_tag(part: str) -> bool:
    """pydantic puts union-member and validator names into error locations; they are not keys."""
    return part in _TYPE_TAGS or "[" in part or part.startswith(("function-", "json-or-python", "constrained-"))


def _keys_of(loc: Any) -> tuple[Any, ...]:
    return tuple(p for p in loc if not (isinstance(p, str) and _is_type_tag(p)))


def _most_specific(errors: list[Any]) -> Any:
    """The first error, or a deeper one at the same place: for a value that may be text or a
    mapping (``str | HeaderValue``), the problem inside the mapping given, not "not a string"."""
    first = errors[0]
    here = _keys_of(first.get("loc", ()))
    deeper = [e for e in errors if _keys_of(e.get("loc", ()))[: len(here)] == here]
    return max(deeper, key=lambda e: len(_keys_of(e.get("loc", ()))))


def load_environment(path: Path) -> EnvironmentBase:
    """Read and validate one environment file; raises :class:`ConfigError` naming file and key."""
    shown = str(path)
    data, lines = read_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise ConfigError(shown, "", "must be a mapping of keys (name, tier, sections ...)")
    data.setdefault("name", path.stem)
    environment_model()  # every section registered, so a key is known or unknown for certain
    model = _model_with(frozenset(key for key in data if key in SECTIONS))
    try:
        env = model.model_validate(data, context={"base_dir": str(path.parent.resolve())})
    except ValidationError as exc:
        first = _most_specific(exc.errors())
        loc = tuple(first.get("loc", ()))
        message = first.get("msg", "invalid value")
        if first.get("type") == "extra_forbidden":
            known = _known_keys(environment_model(), loc, data)
            message = "unknown key" + (f" (known keys: {', '.join(known)})" if known else "")
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        key, label = _key_path(loc, data)
        message += line_of(lines, key)
        here = _keys_of(exc.errors()[0].get("loc", ()))
        places = {_keys_of(e.get("loc", ())) for e in exc.errors()}
        more = len({p for p in places if p[: len(here)] != here})
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        shown_key = (f"{key} (target {label!r})" if label else key) or "(top level)"
        raise ConfigError(shown, shown_key, message) from None
    env.source = shown
    _require_extras(env, shown, lines)
    return env


def _require_extras(env: EnvironmentBase, shown: str, lines: dict[str, int]) -> None:
    """A section whose client library is not installed is an error naming the extra that installs it."""
    for key in SECTIONS:
        for index, target in enumerate(env.targets(key)):
            problem = missing_extra(key, target)
            if problem is not None:
                path = f"{key}[{index}]"
                raise ConfigError(shown, f"{path} (target {target.name!r})", problem + line_of(lines, path))


def _known_keys(model: type[EnvironmentBase], loc: tuple[int | str, ...], data: Any) -> list[str]:
    """The keys allowed where an unknown key was found (best effort, for the error message)."""
    current: Any = model
    for item in loc[:-1]:
        if isinstance(item, int):
            continue
        fields = getattr(current, "model_fields", {})
        field = fields.get(item)
        if field is None:
            return []
        annotation = field.annotation
        current = _model_in(annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", {})
    return sorted(
        (f.alias or name) for name, f in fields.items() if name not in {"source"}
    )


def _model_in(annotation: Any) -> Any:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, Strict):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
