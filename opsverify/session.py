"""Run-wide state of one pytest process: environments, runbooks, the engine, and the check cases.

Example (inside the plugin)::

    session = OvSession.create(root, env_names, env_files, concurrency, phase=phase)
    cases = session.cases(section, configured, each)   # parametrization of one check
    session.prefetch(items)                  # start every probe of the selected items
    session.probe_result(spec, case)         # what a probe fixture returns
"""

from __future__ import annotations

import concurrent.futures
import difflib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest
from pydantic import BaseModel

from opsverify.bundled import RUNBOOKS
from opsverify.config.base import SECTIONS, Safety, Target
from opsverify.config.model import EnvironmentBase, load_environment
from opsverify.engine import Engine, ProbeKey, ProbeRequest
from opsverify.errors import ConfigError
from opsverify.lazy import load_for
from opsverify.net import http as http_net
from opsverify.net.tls import TlsSettings
from opsverify.probe_api import PROBES, ProbeSpec
from opsverify.runbooks import RunbookBook, load_runbooks
from opsverify.safety import Decision, decide, highest

SAFETY_MARKERS = {"mutating": Safety.mutating, "disruptive": Safety.disruptive}


@dataclass(frozen=True)
class Case:
    """One parametrization of a check: an environment, a target of a section, maybe a sub-item."""

    env: str
    section: str
    target: str
    item: str | None = None

    @property
    def id(self) -> str:
        return f"{self.env}-{self.target}" + (f"-{self.item}" if self.item else "")

    def __str__(self) -> str:
        return self.id


@dataclass
class OvSession:
    """Everything the plugin keeps for one pytest process."""

    environments: dict[str, EnvironmentBase]
    runbooks: RunbookBook
    engine: Engine
    root: Path
    phase: str | None = None
    usage_problems: list[str] = field(default_factory=list)
    _prefetched: set[str] = field(default_factory=set)
    _prepared_modules: set[str] = field(default_factory=set)
    _prepared_tls: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    on_waiting: Callable[[list[ProbeKey]], None] | None = None  # told every waiting_interval_s
    waiting_interval_s: float = 2.0

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: Path,
        env_names: list[str],
        env_files: list[str],
        concurrency: int,
        phase: str | None = None,
    ) -> OvSession:
        """Load every requested environment; raises ``pytest.UsageError`` naming file and key."""
        envs: dict[str, EnvironmentBase] = {}
        directory = root / "environments"
        paths: list[Path] = []
        for name in env_names:
            path = _env_path(directory, name)
            if path is None:
                known = ", ".join(known_environments(directory)) or "none"
                raise pytest.UsageError(
                    f"unknown environment {name!r}: no {directory}/{name}.yaml "
                    f"(known environments: {known}; or pass --env-file PATH)"
                )
            paths.append(path)
        paths.extend(Path(p) for p in env_files)
        for path in paths:
            try:
                env = load_environment(path)
            except ConfigError as exc:
                raise pytest.UsageError(f"environment file {exc}") from None
            if env.name in envs:
                raise pytest.UsageError(
                    f"environment {env.name!r} is given twice ({envs[env.name].source} and {path})"
                )
            envs[env.name] = env
        try:
            book = load_runbooks(RUNBOOKS, root / "runbooks")  # the shipped checks' steps, and the project's
        except ConfigError as exc:
            raise pytest.UsageError(f"runbook {exc}") from None
        engine = Engine(concurrency=concurrency)
        session = cls(environments=envs, runbooks=book, engine=engine, root=root, phase=phase)
        engine.request_factory = session._request_for_key
        return session

    # -- parametrization -------------------------------------------------------------------------
    def cases(self, section: str, configured: list[str], each: str | None) -> list[Case]:
        """Every (environment, target[, item]) a check of ``section`` runs against.

        With ``each``, a ``configured`` field that the sub-items have is looked up on each sub-item
        instead of the target (``@pytest.mark.each("topics")`` + ``configured("partitions")``).
        """
        found: list[Case] = []
        for env in self.environments.values():
            for target in env.targets(section):
                subs = list(getattr(target, each, None) or []) if each else []
                on_item = [a for a in configured if any(_has_field(s, a) for s in subs)]
                on_target = [a for a in configured if a not in on_item]
                if any(not _is_set(getattr(target, attr, None)) for attr in on_target):
                    continue
                if each:
                    for sub in subs:
                        if any(not _is_set(getattr(sub, attr, None)) for attr in on_item):
                            continue
                        found.append(Case(env.name, section, target.name, _item_name(sub)))
                else:
                    found.append(Case(env.name, section, target.name))
        return found

    def marker_fields_problem(self, section: str, configured: list[str], each: str | None) -> str | None:
        """Why ``configured(...)`` / ``each(...)`` name fields the section's targets do not have, or
        ``None``. A typo there would skip the check everywhere as "not configured"."""
        spec = SECTIONS.get(section)
        if spec is None:
            return None
        fields = dict(spec.model.model_fields)
        known = set(fields) | _properties(spec.model)
        if each is not None:
            if each not in known:
                return f"each({each!r}): {section} targets have no field {each!r}{_did_you_mean(each, known)}"
            annotation = fields[each].annotation if each in fields else _return_type(spec.model, each)
            if not _is_list(annotation):
                return f"each({each!r}): {section} targets' field {each!r} is not a list"
            item = _list_item_model(annotation)
            if item is not None:
                known |= set(item.model_fields) | _properties(item)
        for name in configured:
            if name not in known:
                whose = f"{section} targets" + (f" or their {each}" if each else "")
                return f"configured({name!r}): {whose} have no field {name!r}{_did_you_mean(name, known)}"
        return None

    def target_of(self, case: Case) -> Target:
        return self.environments[case.env].target(case.section, case.target)

    def item_of(self, case: Case, each: str | None) -> Any:
        if case.item is None or each is None:
            return None
        target = self.target_of(case)
        for sub in getattr(target, each, None) or []:
            if _item_name(sub) == case.item:
                return sub
        raise KeyError(f"{case.id}: no {each} item {case.item!r}")

    # -- rotation phase --------------------------------------------------------------------------
    def phase_for(self, case: Case) -> str | None:
        """The rotation phase the checks of ``case`` verify: ``--phase``, else the environment file's
        ``rotation:`` block (``None``: no rotation declared for this target)."""
        if self.phase is not None:
            return self.phase
        rotation = self.environments[case.env].rotation
        return rotation.phase_for(case.section, case.target) if rotation is not None else None

    def phase_summary(self) -> str | None:
        """Which phase this run verified, for the reports (``overlap (--phase)``,
        ``staging: overlap (nats/wasmcloud) — CHG-2291``), or ``None`` when no rotation is declared."""
        if self.phase is not None:
            return f"{self.phase} (--phase)"
        parts = []
        for env in self.environments.values():
            rotation = env.rotation
            by_phase: dict[str, list[str]] = {}
            for target, phase in (rotation.phases() if rotation is not None else {}).items():
                by_phase.setdefault(phase, []).append("every target" if target == "*" else target)
            for key in SECTIONS:  # a section's own per-target rotation block (e.g. auth: rotation.phase)
                for t in env.targets(key):
                    own = getattr(getattr(t, "rotation", None), "phase", None)
                    if own is not None and (rotation is None or rotation.phase_for(key, t.name) is None):
                        by_phase.setdefault(getattr(own, "value", str(own)), []).append(f"{key}/{t.name}")
            if not by_phase:
                continue
            shown = ", ".join(f"{phase} ({'; '.join(targets)})" for phase, targets in by_phase.items())
            change = rotation.change if rotation is not None else ""
            parts.append(f"{env.name}: {shown}" + (f" — {change}" if change else ""))
        return " · ".join(parts) or None

    # -- safety ----------------------------------------------------------------------------------
    def safety_of(self, item: pytest.Item, case: Case) -> Safety:
        """The check's safety class for ``case`` (:meth:`safety_decision`)."""
        return self.safety_decision(item, case).safety

    def safety_decision(self, item: pytest.Item, case: Case) -> Decision:
        """The check's safety class from its markers, what its probes will send to this target
        (and sub-item) and the target's ``safety:`` (which only raises it); see :mod:`opsverify.safety`."""
        marked = Safety.read_only
        for marker, safety in SAFETY_MARKERS.items():
            if item.get_closest_marker(marker) is not None:
                marked = highest([marked, safety])
        target = self.target_of(case)
        sub = None
        if case.item is not None:
            for attr in _list_fields(target):
                for candidate in getattr(target, attr, None) or []:
                    if _item_name(candidate) == case.item and sub is None:
                        sub = candidate
        sends = [PROBES[name].sends(target, sub) for name in getattr(item, "fixturenames", ()) if name in PROBES]
        return decide(marked, sends, getattr(target, "safety", None))

    # -- probes ----------------------------------------------------------------------------------
    def probe_key(self, spec: ProbeSpec, case: Case) -> ProbeKey:
        return ProbeKey(spec.name, case.env, case.target, case.item if spec.per_item else None)

    def _request_for_key(self, key: ProbeKey) -> ProbeRequest:
        spec = PROBES[key.probe]
        env = self.environments[key.env]
        target = env.target(spec.section, key.target)
        item = None
        if key.item is not None:
            for attr in [spec.each] if spec.each else _list_fields(target):
                for sub in getattr(target, attr, None) or []:
                    if _item_name(sub) == key.item and item is None:
                        item = sub
        return ProbeRequest(fn=spec.fn, env=env, target=target, item=item, timeout=target.timeout)

    def probe_result(self, spec: ProbeSpec, case: Case) -> Any:
        """Wait for (starting if needed) the probe ``spec`` of ``case``; raise its error."""
        key = self.probe_key(spec, case)
        if not self.engine.is_submitted(key):
            self.prepare([key])  # a probe the prefetch did not start (it prepared those)
        return self.engine.result(key, self._request_for_key(key))

    def start_probe(self, spec: ProbeSpec, case: Case) -> concurrent.futures.Future[Any]:
        """Start (or join) the probe ``spec`` of ``case`` without waiting for it."""
        key = self.probe_key(spec, case)
        if not self.engine.is_submitted(key):
            self.prepare([key])  # a probe the prefetch did not start (it prepared those)
        return self.engine.submit(key, self._request_for_key(key))

    def item_probe_keys(self, item: pytest.Item) -> list[ProbeKey]:
        case = case_of(item)
        if case is None:
            return []
        return [self.probe_key(PROBES[name], case) for name in getattr(item, "fixturenames", ()) if name in PROBES]

    def probe_span(self, item: pytest.Item) -> tuple[float, float] | None:
        """Wall-clock start and end of the probes ``item`` awaited (earliest start, latest end), or
        ``None`` when none of them ran (skipped, unconfigured)."""
        spans = [self.engine.timings[key] for key in self.item_probe_keys(item) if key in self.engine.timings]
        if not spans:
            return None
        return min(start for start, _ in spans), max(end for _, end in spans)

    def prefetch(self, items: Iterable[pytest.Item], wait: bool = True) -> int:
        """Start the probes of every item that will run (not skipped); returns how many were new.

        With ``wait``, block until they have all settled: the checks then run on finished results,
        so pytest's own CPU work never competes with (and never inflates the latency measured by)
        the probes in flight. The wall time is the same: it is the slowest probe either way.
        """
        started = 0
        futures: dict[concurrent.futures.Future[Any], ProbeKey] = {}
        keys: list[ProbeKey] = []
        for item in items:
            if item.nodeid in self._prefetched:
                continue
            self._prefetched.add(item.nodeid)
            if _statically_skipped(item):
                continue
            keys.extend(k for k in self.item_probe_keys(item) if not self.engine.is_submitted(k))
        self.prepare(keys)
        for key in keys:
            if not self.engine.is_submitted(key):
                futures[self.engine.submit(key, self._request_for_key(key))] = key
                started += 1
        while wait and futures:
            done, _ = concurrent.futures.wait(futures, timeout=self.waiting_interval_s)
            for future in done:
                del futures[future]
            if futures and self.on_waiting is not None:
                self.on_waiting(list(futures.values()))
        return started


    def prepare(self, keys: Iterable[ProbeKey]) -> None:
        """Ready what the probes of ``keys`` need before any of them runs (on this thread, not the loop).

        The client libraries of their systems are imported, and the TLS contexts and HTTP clients of
        their targets built, with one request through httpx on loopback: nothing heavy then runs on the
        engine's loop while probes are in flight.
        """
        needs = http_net.Preparation()
        modules: set[str] = set()
        for key in keys:
            spec = PROBES[key.probe]
            modules.add(spec.fn.__module__)
            request = self._request_for_key(key)
            needs.add(TlsSettings.of(request.target, request.env))
        new = modules - self._prepared_modules
        if not new and not needs.settings.keys() - self._prepared_tls:
            return
        self._prepared_modules |= new
        self._prepared_tls |= set(needs.settings)
        load_for(new)
        self.engine.call(http_net.prepare(self.engine, needs), timeout=30)


def case_of(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get("ov_case")
    return value if isinstance(value, Case) else None


def _statically_skipped(item: pytest.Item) -> bool:
    if item.get_closest_marker("skip") is not None:
        return True
    for marker in item.iter_markers("skipif"):
        if marker.args and isinstance(marker.args[0], bool) and marker.args[0]:
            return True
        if marker.kwargs.get("condition") is True:
            return True
    return False


def _is_set(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (list, dict, str)) and not value:
        return False
    return True


def _has_field(obj: Any, name: str) -> bool:
    return name in getattr(type(obj), "model_fields", {})


def _did_you_mean(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _properties(model: type[BaseModel]) -> set[str]:
    return {name for name in dir(model) if isinstance(getattr(model, name, None), property)}


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a list field's elements (``list[KafkaTopic] | None`` -> KafkaTopic)."""
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        found = _list_item_model(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    """``list[X]`` or ``list[X] | None``."""
    return get_origin(annotation) is list or any(get_origin(arg) is list for arg in get_args(annotation))


def _return_type(model: type[BaseModel], name: str) -> Any:
    prop = getattr(model, name)
    try:
        return get_type_hints(prop.fget).get("return")
    except (NameError, TypeError):
        return None


def _item_name(sub: Any) -> str:
    if isinstance(sub, str):
        return sub
    name = getattr(sub, "name", None)
    if isinstance(name, str):
        return name
    if isinstance(sub, dict) and "name" in sub:
        return str(sub["name"])
    return str(sub)


def _list_fields(target: Target) -> list[str]:
    return [name for name in type(target).model_fields if isinstance(getattr(target, name), list)]


def _env_path(directory: Path, name: str) -> Path | None:
    for suffix in (".yaml", ".yml"):
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def known_environments(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted({p.stem for p in directory.iterdir() if p.suffix in {".yaml", ".yml"}})


def section_of(fixturenames: Iterable[str]) -> str | None:
    """The section a check belongs to, from the probe fixtures it uses (``None``: not a check)."""
    sections = {PROBES[name].section for name in fixturenames if name in PROBES}
    if len(sections) > 1:
        raise pytest.UsageError(
            f"a check uses probes of several sections ({', '.join(sorted(sections))}); split it"
        )
    return next(iter(sections), None)


def system_of(section: str) -> str:
    spec = SECTIONS.get(section)
    return spec.system if spec else section
