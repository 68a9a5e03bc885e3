"""Fuzzing the environment-file loader with generated files (hypothesis).

Every file starts from sections of ``environments/local.yaml`` (every system, real shapes) and gets
a few mutations: some are known to make the file wrong (a NaN threshold, a warning on the wrong
side, a bad port, ``true`` as a status, a duplicate key, an alias bomb, bytes that are not UTF-8 ...)
and must be refused; others (a random value anywhere, a key dropped or invented, the text cut or
scribbled on) may or may not leave a valid file. For every file the loader either accepts it — and
what the run does with an accepted file without touching the network (list its targets and secret
references, dump it redacted as JSON) works — or refuses it with a one-line reason starting with
the file name. Any other exception is a traceback a user would have seen, and fails the test.

Run it alone, with its figures: ``pytest tests/test_fuzz_environment_files.py -s -p no:cacheprovider``
(``OPSVERIFY_FUZZ_EXAMPLES=3000`` for a longer hunt).
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsverify.config.base import SECTIONS, dump_public
from opsverify.config.model import load_environment
from opsverify.config.secrets import REDACTOR
from opsverify.errors import ConfigError
from tests.harness import ROOT

EXAMPLES = int(os.environ.get("OPSVERIFY_FUZZ_EXAMPLES", "300"))  # more for a longer local hunt
SEED: dict[str, Any] = yaml.safe_load((ROOT / "environments" / "local.yaml").read_text())
SEED_SECTIONS = sorted(k for k in SEED if k in SECTIONS or k == "defaults")

# -- mutations that must make the file be refused: (section the target comes from, change) ---------------
Mutation = Callable[[dict[str, Any]], None]


def _first(section: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The first target of ``section`` in the document (put back from the seed if mutated away)."""

    def get(doc: dict[str, Any]) -> dict[str, Any]:
        targets = doc.get(section)
        if not (isinstance(targets, list) and targets and isinstance(targets[0], dict)):
            doc[section] = targets = copy.deepcopy(SEED[section][:1])
        first: dict[str, Any] = targets[0]
        return first

    return get


def _defaults(doc: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(doc.get("defaults"), dict):
        doc["defaults"] = {}
    defaults: dict[str, Any] = doc["defaults"]
    return defaults


def _set(section: str, key: str, value: Any) -> Mutation:
    return lambda doc: _first(section)(doc).__setitem__(key, value)


BAD_URLS = ["http://127.0.0.1:99999/", "http://127.0.0.1:-5/", "http://", "http://[::1", "http://gate way/",
            "http://gate\x00way/", "http://127.0.0.1:0/", "https://a..b/", "http://" + "h" * 300 + "/"]
MUST_REJECT: dict[str, Mutation] = {
    **{f"http-url {u[:24]!r}": _set("http", "url", u) for u in BAD_URLS},
    "http-status-true": _set("http", "status", [True]),
    "http-status-bool": _set("http", "status", False),
    "http-status-10e20": _set("http", "status", 10**20),
    "http-status-600": _set("http", "status", [200, 600]),
    "http-latency-nan": _set("http", "max_latency_ms", math.nan),
    "http-latency-inf": _set("http", "max_latency_ms", math.inf),
    "http-latency-negative": _set("http", "max_latency_ms", -400),
    "http-latency-warn-above": _set("http", "max_latency_ms", {"warn": 900, "critical": 400}),
    "http-latency-warn-nan": _set("http", "max_latency_ms", {"warn": math.nan, "critical": 400}),
    "http-name-10000": _set("http", "name", "n" * 10000),
    "http-name-space": _set("http", "name", "two words"),
    "http-secret-env-empty": _set("http", "request_headers", {"authorization": {"env": ""}}),
    "http-secret-file-empty": _set("http", "request_headers", {"authorization": {"file": ""}}),
    "tls-host-space": _set("tls", "host", "a b"),
    "tls-host-empty": _set("tls", "host", ""),
    "tls-port-99999": _set("tls", "port", 99999),
    "tls-port-true": _set("tls", "port", True),
    "tls-min-days-nan": _set("tls", "min_days", math.nan),
    "tls-min-days-negative": _set("tls", "min_days", -30),
    "tls-min-days-warn-below": _set("tls", "min_days", {"warn": 7, "critical": 14}),
    "tcp-port-negative": _set("tcp", "port", -5),
    "tcp-host-nul": _set("tcp", "host", "a\x00b"),
    "dns-nameserver-name": _set("dns", "nameserver", "ns.example.com"),
    "vault-addr-port": _set("vault", "addr", "http://127.0.0.1:123456"),
    "vault-lease-ttl-warn-below": lambda doc: _first("vault")(doc).__setitem__(
        "leases", [{"name": "l", "prefix": "p/", "min_ttl": {"warn": "1m", "critical": "1h"}}]),
    "kafka-lag-negative": lambda doc: _first("kafka")(doc).__setitem__("groups", [{"name": "g", "max_lag": -1}]),
    "kafka-bootstrap-host": _set("kafka", "bootstrap", "kaf ka:9092"),
    "nats-url-port": _set("nats", "url", "nats://127.0.0.1:99999"),
    "redis-url-port": _set("redis", "url", "redis://127.0.0.1:70000/0"),
    "websocket-url-host": _set("websocket", "url", "ws://[::1/"),
    "prometheus-percent-150": lambda doc: _first("prometheus")(doc).__setitem__(
        "error_rate", [{"name": "e", "max_percent": 150}]),
    "hosts-paramiko-missing": _set("hosts", "host", "paramiko://deploy@web-1"),
    "defaults-timeout-nan": lambda doc: _defaults(doc).__setitem__("timeout_s", math.nan),
    "defaults-age-inf": lambda doc: _defaults(doc).__setitem__("max_credential_age_days", math.inf),
    "environment-name-long": lambda doc: doc.__setitem__("name", "e" * 200),
}
# text-level changes that must make the file be refused
# (as yaml.safe_dump writes a list of mappings: "- " at the key's indentation)
DEEP_JSON = "\n- name: deep\n  url: http://127.0.0.1:1/\n  json: {x: " + "[" * 400 + "]" * 400 + "}"
BOMB = ("\n- name: bomb\n  url: http://127.0.0.1:1/\n  json:\n    a: &a [x, x, x, x, x, x, x, x, x]"
        + "".join(f"\n    {k}: &{k} [{', '.join(['*' + p] * 9)}]" for p, k in zip("abcdefg", "bcdefgh")))


def _into_http(item: str) -> Callable[[str], str]:
    def insert(text: str) -> str:
        if text.startswith("http:"):
            return "http:" + item + text[len("http:"):]
        if "\nhttp:" in text:
            return text.replace("\nhttp:", "\nhttp:" + item, 1)
        return text + "http:" + item + "\n"

    return insert


MUST_REJECT_TEXT: dict[str, Callable[[str], str]] = {
    "duplicate-tier": lambda text: "tier: production\n" + text.replace("tier:", "# tier:") + "tier: dev\n",
    "duplicate-section": lambda text: text + "tcp: []\ntcp:\n- {name: again, host: 127.0.0.1, port: 1}\n",
    "deep-nesting": _into_http(DEEP_JSON),
    "alias-bomb": _into_http(BOMB),
    "self-alias": lambda text: text + "description: &d [*d]\n",
}
BAD_BYTES = [b"\xff\xfe\x00garbage", b"\xc3\x28", b"\xed\xa0\x80", b"caf\xe9"]

# -- mutations that may or may not leave a valid file ------------------------------------------------------
ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def fuzz_cases(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """(what was done, the file's bytes, the mutation that must make it be refused or None)."""
    sections = draw(st.lists(st.sampled_from(SEED_SECTIONS), min_size=1, max_size=4, unique=True))
    doc: dict[str, Any] = {"name": "fuzz", "tier": draw(st.sampled_from(["dev", "staging", "production"]))}
    for key in sections:
        doc[key] = copy.deepcopy(SEED[key])
    done: list[str] = []
    must: str | None = None
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        kind = draw(st.sampled_from(["value", "drop", "invent"]))
        paths = _paths(doc)
        path = draw(st.sampled_from(paths)) if paths else ("name",)
        parent = _parent(doc, path)
        if kind == "value":
            parent[path[-1]] = draw(ANY_VALUE)
        elif kind == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif kind == "invent" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(ANY_VALUE)
        done.append(f"{kind} {'.'.join(map(str, path))[:40]}")
    if draw(st.booleans()):
        must = draw(st.sampled_from(sorted(MUST_REJECT)))
        MUST_REJECT[must](doc)
        done.append(must)
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=200)
    scribble = draw(st.sampled_from(["none", "none", "cut", "insert", "text-must", "bytes-must"]))
    if scribble == "cut":
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
        must = None  # the cut may have removed what was wrong
    elif scribble == "insert":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.text(min_size=1, max_size=8)) + text[at:]
        must = None  # a "#" inserted before the wrong value makes it a comment
    elif scribble == "text-must":
        name = draw(st.sampled_from(sorted(MUST_REJECT_TEXT)))
        text = MUST_REJECT_TEXT[name](text)
        must = must or name
    done.append(scribble)
    raw = text.encode("utf-8", "surrogatepass")
    if scribble == "bytes-must":
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:at] + draw(st.sampled_from(BAD_BYTES)) + raw[at:]
        must = must or "not-utf8"
    return ", ".join(done), raw, must


def _use_like_a_run(env: Any) -> None:
    """What a run does with an accepted file before and after probing, network aside."""
    for key in SECTIONS:
        for target in env.targets(key):
            assert target.timeout > 0
            env.target(key, target.name)
    env.secret_refs()
    json.dumps(REDACTOR.redact_obj(dump_public(env)))


def test_fuzzed_environment_files_are_accepted_or_refused_in_one_line(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("fuzz")
    path = directory / "fuzz.yaml"
    stats: Counter[str] = Counter()
    wrongly_accepted: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(case=fuzz_cases())
    def one_file(case: tuple[str, bytes, str | None]) -> None:
        what, raw, must = case
        path.write_bytes(raw)
        stats["files"] += 1
        try:
            env = load_environment(path)
        except ConfigError as exc:
            text = str(exc)
            assert "\n" not in text and text.startswith(f"{path}: "), f"{what}: not one line naming the file: {text!r}"
            assert len(text) < 1000, f"{what}: {len(text)} characters"
            stats["usage errors"] += 1
            stats["refused, must"] += must is not None
            return
        _use_like_a_run(env)
        stats["accepted"] += 1
        if must is not None:
            wrongly_accepted.append(f"{must} ({what})")
        assert must is None, f"accepted although {must}: {what}"

    one_file()
    print(f"\nfuzzed environment files: {dict(stats)}; tracebacks: 0; accepted that must be refused: "
          f"{len(wrongly_accepted)}")
    assert stats["files"] >= EXAMPLES * 0.9
    assert stats["usage errors"] and stats["accepted"]


@pytest.mark.parametrize("name", sorted(MUST_REJECT))
def test_each_must_refuse_mutation_is_refused_alone(tmp_path: Path, name: str) -> None:
    """The fuzz oracle itself: every mutation it counts on makes a valid file invalid."""
    doc: dict[str, Any] = {"name": "fuzz"}
    MUST_REJECT[name](doc)
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=200))
    with pytest.raises(ConfigError):
        load_environment(path)
    section = next((k for k in doc if k in SECTIONS), None)
    if section is not None:  # and the target it started from was valid
        path.write_text(yaml.safe_dump({"name": "fuzz", section: SEED[section][:1]}, sort_keys=False))
        load_environment(path)
