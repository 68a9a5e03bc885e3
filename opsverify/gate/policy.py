"""The promotion policy (``gates/<promotion>.yaml``) and waivers (``waivers.yaml``): typed models.

A policy says which environment's results count, which checks are in scope, which named checklist
items are required (each mapped to markers, systems, check-id or node-id patterns and targets), how
many warnings are tolerated, how fresh the evidence must be, which outcomes block, and how long a
waiver may run. Example::

    name: production
    environment: staging            # whose results count
    markers: [predeploy]            # scope: every check with these markers is judged
    max_age_minutes: 30             # evidence older than this holds the release
    max_warnings: 0                 # null = any number
    block_on: [failed, error, missing]   # skipped may be added
    waivers: {max_days: 14, file: ../waivers.yaml}
    items:
      - name: Health endpoints answer
        systems: [http]
        checks: [test_endpoint_returns_expected_status]
      - name: Secrets store healthy
        checks: ["test_vault_*"]

Errors name the file and the key path (:class:`~opsverify.errors.ConfigError`). A bad policy means
the gate cannot decide (exit 2; a usage error for ``pytest --gate``); a bad waiver — in the policy's
``waivers.entries`` or a waivers file — holds the release instead (:func:`gather_waivers`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from opsverify.config.base import Strict
from opsverify.config.loader import line_of, read_yaml_with_lines
from opsverify.config.secrets import SecretRef
from opsverify.config.values import key_text
from opsverify.errors import ConfigError

BlockingOutcome = Literal["failed", "error", "missing", "skipped"]
ALWAYS_BLOCK: tuple[BlockingOutcome, ...] = ("failed", "error", "missing")


class _Strict(Strict):
    """Unknown keys are errors; numbers are finite and not true/false (as in environment files)."""

    model_config = ConfigDict(extra="forbid")


def _no_blank(values: list[str], what: str) -> list[str]:
    for value in values:
        if not value.strip():
            raise ValueError(f"{what} must not be empty strings")
    return values


class Item(_Strict):
    """A named line of the pre-deploy checklist and the checks that make it true.

    A check belongs to the item when it is in the policy's scope and matches every selector given
    (``markers``: all of them; ``systems``, ``checks``, ``targets``: any of them). Each ``checks``
    pattern and each ``targets`` pattern must be matched by at least one verified (not skipped)
    check, and the item needs at least ``min_checks`` of them: otherwise it is *missing*.
    """

    name: str = Field(min_length=1)
    description: str = ""
    markers: list[str] = Field(default_factory=list)
    systems: list[str] = Field(default_factory=list)
    checks: list[str] = Field(default_factory=list, description="check ids (test_vault_*) or node-id globs")
    targets: list[str] = Field(default_factory=list)
    min_checks: int = Field(default=1, ge=0)
    manual: str | None = Field(default=None, description="a step no check verifies: listed, not decided")
    min_samples: int | None = Field(default=None, ge=1, description="each check judged on at least this many samples")
    min_window_minutes: float | None = Field(default=None, ge=0, description="... spread over at least this long")

    @field_validator("markers", "systems", "checks", "targets")
    @classmethod
    def _nonblank(cls, value: list[str]) -> list[str]:
        return _no_blank(value, "patterns")

    @model_validator(mode="after")
    def _manual_has_no_selectors(self) -> Item:
        if self.manual is not None and (self.markers or self.systems or self.checks or self.targets
                                        or self.min_samples or self.min_window_minutes):
            raise ValueError("a manual item cannot also select checks (drop manual: or the selectors)")
        return self


class Waiver(_Strict):
    """Permission to promote despite one check's failure, for a bounded time, with two names on it."""

    check: str = Field(min_length=1, description="check id or node-id pattern")
    target: str | None = Field(default=None, description="target name pattern (default: every target)")
    environment: str = Field(min_length=1)
    justification: str = Field(min_length=10)
    owner: str = Field(min_length=1)
    approver: str = Field(min_length=1)
    created: datetime
    expires: datetime
    ticket: str | None = None

    @field_validator("created", "expires", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("must be an ISO time in UTC, e.g. 2025-06-01T12:00:00Z") from None
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() != timedelta(0):
                raise ValueError("must be in UTC with an explicit Z (e.g. 2025-06-01T12:00:00Z)")
            return value
        raise ValueError("must be an ISO time in UTC, e.g. 2025-06-01T12:00:00Z")

    @model_validator(mode="after")
    def _consistent(self) -> Waiver:
        if self.expires <= self.created:
            raise ValueError("expires must be later than created")
        if self.owner.strip().lower() == self.approver.strip().lower():
            raise ValueError("approver must be someone other than the owner")
        return self

    @property
    def label(self) -> str:
        where = f" on {self.target}" if self.target else ""
        return f"`{self.check}`{where} in {self.environment}"


class WaiverRules(_Strict):
    """How the policy treats waivers.

    ``entries`` are validated apart from the policy (:func:`gather_waivers`): a malformed waiver
    holds the release with its reason, it does not make the policy unreadable.
    """

    allowed: bool = True
    max_days: float = Field(default=14, gt=0, le=365)
    file: str | None = Field(default=None, description="waivers file, relative to the policy file")
    entries: list[Any] = Field(default_factory=list)


class EvidenceRules(_Strict):
    """What the gate demands of the results files beyond their integrity digest."""

    key: SecretRef | None = Field(
        default=None,
        description="HMAC key the runs sign their summary.json with ($OPSVERIFY_EVIDENCE_KEY at run time), "
        "e.g. {env: OPSVERIFY_EVIDENCE_KEY}: unsigned or otherwise signed evidence holds",
    )


MAX_AGE_LIMIT = 30 * 24 * 60
"""The longest ``max_age_minutes`` a policy may set (30 days)."""


class Policy(_Strict):
    """One promotion's rules (``gates/production.yaml``)."""

    name: str = ""
    description: str = ""
    environment: str = Field(min_length=1, description="the environment whose results count")
    markers: list[str] = Field(default_factory=list, description="scope: checks carrying all of these")
    max_age_minutes: float = Field(default=30, gt=0, le=MAX_AGE_LIMIT)
    max_warnings: int | None = Field(default=0, ge=0)
    block_on: list[BlockingOutcome] = Field(default_factory=lambda: list(ALWAYS_BLOCK))
    waivers: WaiverRules = Field(default_factory=WaiverRules)
    evidence: EvidenceRules = Field(default_factory=EvidenceRules)
    items: list[Item] = Field(min_length=1)
    source: str = Field(default="", exclude=True)

    @field_validator("block_on")
    @classmethod
    def _fail_closed(cls, value: list[BlockingOutcome]) -> list[BlockingOutcome]:
        absent = [o for o in ALWAYS_BLOCK if o not in value]
        if absent:
            raise ValueError(
                f"must include {', '.join(absent)}: the gate fails closed (only skipped is optional)"
            )
        return value

    @model_validator(mode="after")
    def _unique_items(self) -> Policy:
        seen: set[str] = set()
        for item in self.items:
            if item.name in seen:
                raise ValueError(f"item name {item.name!r} is used twice")
            seen.add(item.name)
        return self

    @property
    def max_age(self) -> timedelta:
        return timedelta(minutes=self.max_age_minutes)


class WaiverFile(_Strict):
    """A ``waivers.yaml``: ``waivers: [ {check, environment, justification, owner, approver, ...} ]``."""

    waivers: list[Waiver] = Field(default_factory=list)


# -- loading ----------------------------------------------------------------------------------------
_TYPE_TAGS = {"int", "str", "float", "bool", "none", "dict", "list", "datetime"}


def _key(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in _TYPE_TAGS and not re.match(r"^(function-|json-or-python|.*\[)", part):
            text += ("." if text else "") + key_text(part)
    return text or "(top level)"


def _config_error(path: Path, exc: ValidationError, prefix: tuple[int | str, ...] = (),
                  lines: dict[str, int] | None = None) -> ConfigError:
    first = exc.errors()[0]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        message = "unknown key"
    elif first.get("type") == "missing":
        message = "required key is missing"
    key = _key((*prefix, *first.get("loc", ())))
    message += line_of(lines or {}, key)
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(str(path), key, message)


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; raises :class:`ConfigError` naming the file and key."""
    data, lines = read_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "must be a mapping (environment, items, ...)")
    data.setdefault("name", path.stem)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise _config_error(path, exc, lines=lines) from None
    policy.source = str(path)
    return policy


def load_waivers(path: Path, max_days: float) -> list[Waiver]:
    """Read and validate a waivers file against the policy's maximum duration."""
    data, lines = read_yaml_with_lines(path)
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "must be a mapping with a `waivers:` list")
    try:
        parsed = WaiverFile.model_validate(data)
    except ValidationError as exc:
        raise _config_error(path, exc, lines=lines) from None
    _check_durations(path, parsed.waivers, max_days, "waivers")
    return parsed.waivers


def policy_waivers(policy: Policy) -> list[Waiver]:
    """The waivers written into the policy itself (``waivers.entries``), validated."""
    path = Path(policy.source)
    try:
        parsed = WaiverFile.model_validate({"waivers": policy.waivers.entries})
    except ValidationError as exc:
        error = _config_error(path, exc)
        raise ConfigError(str(path), "waivers.entries" + error.key.removeprefix("waivers"), error.problem) from None
    _check_durations(path, parsed.waivers, policy.waivers.max_days, "waivers.entries")
    return parsed.waivers


def gather_waivers(policy: Policy, extra: Path | None = None) -> tuple[list[Waiver], list[str]]:
    """Every waiver the policy's entries, its waivers file and ``extra`` give, and the problems.

    A problem (a malformed or unreadable waivers file, a waiver longer than ``max_days``, waivers
    where the policy allows none) is a reason to hold the release, naming the file and the key;
    the waivers of the files that are fine are still returned.
    """
    waivers: list[Waiver] = []
    problems: list[str] = []
    try:
        waivers += policy_waivers(policy)
    except ConfigError as exc:
        problems.append(f"malformed waiver: {exc}")
    files = [p for p in (waiver_file_of(policy), extra) if p is not None]
    for path in dict.fromkeys(files):
        try:
            waivers += load_waivers(path, policy.waivers.max_days)
        except ConfigError as exc:
            problems.append(f"malformed waiver file: {exc}")
    if waivers and not policy.waivers.allowed:
        problems.append(f"waivers not allowed: {policy.source}: waivers.allowed is false, "
                        f"but {len(waivers)} {'waivers were' if len(waivers) != 1 else 'waiver was'} given")
        waivers = []
    return waivers, problems


def _check_durations(path: Path, waivers: list[Waiver], max_days: float, key: str) -> None:
    for index, waiver in enumerate(waivers):
        days = (waiver.expires - waiver.created).total_seconds() / 86400
        if days > max_days:
            raise ConfigError(
                str(path), f"{key}[{index}].expires",
                f"waiver runs {days:.1f} days (created {waiver.created:%Y-%m-%dT%H:%MZ}), "
                f"longer than the policy's maximum of {max_days:g} days",
            )


def waiver_file_of(policy: Policy) -> Path | None:
    """The waivers file the policy names, resolved against the policy file's directory."""
    if not policy.waivers.file:
        return None
    named = Path(policy.waivers.file)
    return named if named.is_absolute() else Path(policy.source).parent / named
