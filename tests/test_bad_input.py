"""Files people write that must be refused: a one-line usage error naming the file, the key path and
(where YAML gives one) the line — never a traceback, never silently accepted.

The corpus below holds the shapes a fuzz run of the environment-file loader found accepted or
crashing; each is loaded in-process (the loader is what the plugin, ``opsverify credentials`` and
the gate call), and the worst of them also run end to end through pytest and the commands.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opsverify.config.model import load_environment
from opsverify.errors import ConfigError
from tests.harness import ROOT, run_pytest

BASE = [f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}", "--no-reports"]
HTTP = "http:\n  - name: gw\n    url: http://127.0.0.1:1/\n"

BOMB = "name: bomb\nhttp:\n  - name: gw\n    url: http://127.0.0.1:1/\n    json:\n      a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"      {k}: &{k} [{', '.join(['*' + p] * 9)}]\n" for p, k in zip("abcdefg", "bcdefgh")
)
DEEP = "name: deep\n" + HTTP + "    json: {x: " + "[" * 500 + "]" * 500 + "}\n"
SELF_ALIAS = "name: loop\n" + HTTP + "    json: &a {x: *a}\n"


def rejection(tmp_path: Path, content: str | bytes, name: str = "env.yaml") -> str:
    """The one-line reason ``load_environment`` gives for ``content`` (fails if it is accepted)."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    text = str(caught.value)
    assert "\n" not in text, text
    assert text.startswith(f"{path}: "), text
    return text.removeprefix(f"{path}: ")


# -- YAML itself ---------------------------------------------------------------------------------------
YAML_CASES = [
    ("not-utf8", b"\xff\xfe\x00garbage", "not UTF-8 text (byte 0xff on line 1)"),
    ("latin-1", "name: x\ndescription: caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 on line 2)"),
    ("nul-character", "name: x\ndescription: \x00\n", "not valid YAML (line 2: character #x0000 is not allowed"),
    ("nested-500-deep", DEEP, "nested more than 32 levels deep (line 5)"),
    ("self-referencing-alias", SELF_ALIAS, "http[0].json.x: a YAML alias refers to a collection that contains it"),
    ("self-merging-alias", "name: x\ndefaults: &d\n  <<: *d\n", "defaults: a YAML alias refers to a collection"),
    ("alias-bomb", BOMB, "expands to more than 100,000 values (YAML aliases?)"),
    ("aliases-nest-too-deep", "name: x\n" + HTTP + "    json:\n      a: &a " + "[" * 25 + "]" * 25
     + "\n      b: [[[[[[*a]]]]]]\n", "http[0].json.b[0][0][0][0][0][0]"),
    ("duplicate-status", "name: x\n" + HTTP.replace("url:", "status: 200\n    url:") + "    status: 500\n",
     "http[0].status: duplicate key (line 6; first on line 4)"),
    ("duplicate-section", "name: x\ntcp:\n  - {name: a, host: h, port: 1}\ntcp:\n  - {name: b, host: h, port: 2}\n",
     "tcp: duplicate key (line 4; first on line 2)"),
    ("duplicate-tier", "name: x\ntier: production\ntier: dev\n", "tier: duplicate key (line 3; first on line 2)"),
    ("duplicate-in-flow", "name: x\ntls:\n  - {name: a, host: h, port: 443, port: 8443}\n",
     "tls[0].port: duplicate key (line 3; first on line 3)"),
    ("number-key", "name: x\n1: one\n", "key 1 is not text (quote it) (line 2)"),
    ("yes-key", "name: x\nhttp:\n  - {name: a, url: 'http://h/', headers: {yes: v}}\n", "http[0].headers: key yes is not text"),
    ("two-documents", "name: x\n---\nname: y\n", "not valid YAML (line 2, column 1: expected a single document in the stream, but found another document)"),
    ("python-tag", "name: !!python/object:os.system x\n", "not valid YAML"),
    ("key-with-newlines", "name: x\n\"\\n\\n  \": null\n", "'\\n\\n  ': unknown key"),
]


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_yaml_that_must_be_refused(tmp_path, content, expected):
    assert expected in rejection(tmp_path, content)


def test_anchors_aliases_and_merge_keys_within_bounds_still_work(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text(
        "name: merge\nhttp:\n  - &gw {name: a, url: 'http://127.0.0.1:1/', status: 200, max_latency_ms: 400}\n"
        "  - {<<: *gw, name: b, status: 204}\n  - {<<: [*gw], name: c}\n"
    )
    env = load_environment(path)
    assert [(t.name, t.status) for t in env.targets("http")] == [("a", 200), ("b", 204), ("c", 200)]


@pytest.mark.parametrize(("content", "expected"), [
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    (DEEP, "nested more than 32 levels deep"),
    (SELF_ALIAS, "a YAML alias refers to a collection that contains it"),
    (BOMB, "expands to more than 100,000 values"),
    ("name: x\ntier: production\ntier: dev\n", "tier: duplicate key"),
], ids=["not-utf8", "deep", "self-alias", "alias-bomb", "duplicate-tier"])
def test_a_bad_file_stops_the_run_with_a_usage_error_not_a_traceback(tmp_path, content, expected):
    path = tmp_path / "env.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    proc = run_pytest([*BASE, f"--env-file={path}", "checks/test_http.py"], timeout=60)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"ERROR: environment file {path}: " in proc.stderr and expected in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "INTERNALERROR" not in proc.stdout + proc.stderr


def _opsverify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsverify", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize(("content", "expected"), [
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    ("environment: staging\nenvironment: dev\nitems: [{name: a, checks: [x]}]\n", "environment: duplicate key"),
    ("environment: staging\nitems: &i [{name: a, checks: *i}]\n", "a YAML alias refers to a collection"),
], ids=["not-utf8", "duplicate-key", "self-alias"])
def test_a_bad_gate_policy_cannot_decide_naming_the_file(tmp_path, content, expected):
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(content if isinstance(content, bytes) else content.encode())
    proc = _opsverify("gate", "--policy", str(policy), "--results", str(tmp_path / "summary.json"),
                      "--output", str(tmp_path / "gate.json"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"opsverify gate: bad policy: {policy}: " in proc.stderr and expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_file_given_to_opsverify_credentials_is_a_usage_error(tmp_path):
    path = tmp_path / "env.yaml"
    path.write_text(SELF_ALIAS)
    proc = _opsverify("credentials", "--env-file", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"environment file {path}: http[0].json.x: a YAML alias refers to a collection" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- values: thresholds that can never fail, numbers that are not numbers, addresses that do not parse --
def target(section: str, **fields: str) -> str:
    body = ", ".join(f"{k}: {v}" for k, v in fields.items())
    return f"name: x\n{section}:\n  - {{name: a, {body}}}\n"


URL = "'http://127.0.0.1:1/'"
VALUE_CASES = [
    ("latency-nan", target("http", url=URL, max_latency_ms=".nan"), "http[0].max_latency_ms.critical", "finite number"),
    ("latency-inf", target("http", url=URL, max_latency_ms=".inf"), "http[0].max_latency_ms.critical", "finite number"),
    ("latency-warn-nan", target("http", url=URL, max_latency_ms="{warn: .nan, critical: 400}"),
     "http[0].max_latency_ms.warn", "finite number"),
    ("latency-negative", target("http", url=URL, max_latency_ms="-1"), "http[0].max_latency_ms", "critical -1 ms is outside"),
    ("latency-warn-above-critical", target("http", url=URL, max_latency_ms="{warn: 500, critical: 400}"),
     "http[0].max_latency_ms", "warn 500 ms is above critical 400 ms"),
    ("min-days-nan", target("tls", host="h", min_days=".nan"), "tls[0].min_days.critical", "finite number"),
    ("min-days-negative", target("tls", host="h", min_days="-30"), "tls[0].min_days", "critical -30 days is outside 0 days"),
    ("min-days-warn-below-critical", target("tls", host="h", min_days="{warn: 7, critical: 14}"),
     "tls[0].min_days", "warn 7 days is below critical 14 days"),
    ("default-min-days-inf", "name: x\ndefaults: {tls_min_days: .inf}\n", "defaults.tls_min_days.critical", "finite"),
    ("default-age-inf", "name: x\ndefaults: {max_credential_age_days: .inf}\n", "defaults.max_credential_age_days", "finite"),
    ("timeout-nan", "name: x\ndefaults: {timeout_s: .nan}\n", "defaults.timeout_s", "finite number"),
    ("lag-negative", "name: x\nkafka:\n  - {name: k, bootstrap: 'h:9092', groups: [{name: g, max_lag: -1}]}\n",
     "kafka[0].groups[0].max_lag", "outside"),
    ("percent-over-100", "name: x\nprometheus:\n  - {name: p, url: 'http://h:9090', error_rate: [{name: e, max_percent: 150}]}\n",
     "prometheus[0].error_rate[0].max_percent", "critical 150 % is outside 0 %..100 %"),
    ("cache-warn-below-critical", "name: x\nprometheus:\n  - {name: p, url: 'http://h:9090', cache_hit_ratio: "
     "[{name: c, min_percent: {warn: 10, critical: 40}}]}\n", "prometheus[0].cache_hit_ratio[0].min_percent", "below critical"),
    ("ttl-warn-below-critical", "name: x\nvault:\n  - {name: v, addr: 'http://h:8200', leases: "
     "[{name: l, prefix: p/, min_ttl: {warn: 1m, critical: 1h}}]}\n", "vault[0].leases[0].min_ttl", "warn 1 min is below critical 1 h"),
    ("age-negative-duration", "name: x\nbackups:\n  - {name: b, path: /b/*, max_age: -1}\n", "backups[0].max_age", "outside"),
    ("threshold-true", target("tls", host="h", min_days="true"), "tls[0].min_days", "a threshold is a number or {warn: W, critical: C}, not true/false"),
    ("status-true", target("http", url=URL, status="[true]"), "http[0].status", "true is not a number here"),
    ("port-false", target("tcp", host="h", port="false"), "tcp[0].port", "false is not a number here"),
    ("status-10e20", target("http", url=URL, status="100000000000000000000"), "http[0].status", "integers must fit in 64 bits"),
    ("webhook-status-1000", "name: x\nwebhooks:\n  - {name: w, url: 'http://h/', secret: {env: S}, accepted_status: [1000]}\n",
     "webhooks[0].accepted_status[0]", "less than or equal to 599"),
    ("telemetry-status-99", "name: x\ntelemetry:\n  - {name: t, endpoint: 'http://h:4318', key: {env: K}, rejected_statuses: [99]}\n",
     "telemetry[0].rejected_statuses[0]", "greater than or equal to 100"),
    ("url-port-99999", target("http", url="'http://h:99999/'"), "http[0].url", "Port out of range"),
    ("url-port-negative", target("http", url="'http://h:-5/'"), "http[0].url", "is not a valid URL"),
    ("url-port-0", target("http", url="'http://h:0/'"), "http[0].url", "port 0 is not a port"),
    ("url-no-host", target("http", url="'http://'"), "http[0].url", "names no host"),
    ("url-unclosed-ipv6", target("http", url="'http://[::1'"), "http[0].url", "Invalid IPv6 URL"),
    ("url-space-in-host", target("http", url="'http://gate way/'"), "http[0].url", "contains a space"),
    ("url-nul-in-host", target("http", url='"http://gate\\0way/"'), "http[0].url", "control character"),
    ("url-bad-host-char", target("http", url="'http://gate<way>/'"), "http[0].url", "is not a host name"),
    ("websocket-port", target("websocket", url="'ws://h:70000/'"), "websocket[0].url", "Port out of range"),
    ("nats-port", target("nats", url="'nats://h:99999'"), "nats[0].url", "Port out of range"),
    ("redis-port", target("redis", url="'redis://h:70000/0'"), "redis[0].url", "Port out of range"),
    ("vault-host", target("vault", addr="'http://va ult:8200'"), "vault[0].addr", "contains a space"),
    ("restate-port", target("restate", admin_url="'http://h:123456'"), "restate[0].admin_url", "Port out of range"),
    ("kafka-host", target("kafka", bootstrap="'ka fka:9092'"), "kafka[0].bootstrap", "is not a host name"),
    ("tls-host-space", target("tls", host="'a b'"), "tls[0].host", "is not a host name or IP address"),
    ("tcp-host-nul", target("tcp", host='"a\\0b"', port="1"), "tcp[0].host", "is not a host name"),
    ("dns-nameserver-name", target("dns", hostname="h", nameserver="ns.example.com"), "dns[0].nameserver",
     "is not an IP address"),
    ("postgres-host-space", target("postgres", host="'d b'", database="d", user="u"), "postgres[0].host", "not a host"),
    ("name-10000-chars", f"name: x\nhttp:\n  - {{name: {'a' * 10000}, url: {URL}}}\n", "http[0].name", "at most 64 characters"),
    ("environment-name-long", f"name: {'e' * 100}\n", "name", "at most 64 characters"),
    ("text-over-64k", target("http", url=URL, body_contains="'" + "x" * 70000 + "'"), "http[0].body_contains",
     "at most 65536 characters"),
    ("secret-env-empty", target("http", url=URL, request_headers="{authorization: {env: ''}}"),
     "http[0].request_headers.authorization.env", "should match pattern"),
    ("secret-env-blank-name", target("redis", url="'redis://h:6379/0'", password="{env: 'NOT A NAME'}"),
     "redis[0].password.env", "should match pattern"),
    ("secret-file-empty", target("redis", url="'redis://h:6379/0'", password="{file: ''}"), "redis[0].password.file",
     "at least 1 character"),
    ("secret-file-nul", target("redis", url="'redis://h:6379/0'", password='{file: "a\\0b"}'), "redis[0].password.file",
     "no blanks or NUL"),
    ("hosts-backend-not-installed", target("hosts", host="'paramiko://deploy@web-1'"), "hosts[0].host",
     "needs the Python package paramiko, which is not installed here (pip install paramiko)"),
]


@pytest.mark.parametrize(("content", "key", "expected"), [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES])
def test_values_that_must_be_refused(tmp_path, content, key, expected):
    reason = rejection(tmp_path, content)
    assert reason.startswith(key + ":") or reason.startswith(key + " ("), reason
    assert expected in reason


def test_sound_values_are_still_accepted(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(
        "name: ok\ndefaults: {tls_min_days: {warn: 30, critical: 14}, http_latency_ms: {warn: 300, critical: 400}}\n"
        "http:\n  - {name: v6, url: 'http://[::1]:8080/x', status: [200, 204], json: {ok: true, big: 100000000000000000000},"
        " follow_redirects: true, max_latency_ms: {warn: 400, critical: 400}}\n"
        "tls:\n  - {name: t, host: gateway.example.com., min_days: 0}\n"
        "dns:\n  - {name: d, hostname: localhost, nameserver: '10.0.0.2:53'}\n"
        "postgres:\n  - {name: p, host: /run/postgresql, database: d, user: u}\n"
        "prometheus:\n  - {name: p, url: 'http://h:9090', queries: [{name: q, query: 'delta(x[5m])', min: -5}]}\n"
    )
    env = load_environment(path)
    assert env.targets("http")[0].expected_statuses == [200, 204]


def test_every_threshold_field_says_how_it_is_judged():
    """A ``Threshold`` field without a direction would accept a warning on the wrong side."""
    from typing import get_args

    from pydantic import BaseModel

    from opsverify.config.model import environment_model
    from opsverify.config.thresholds import Judged, Threshold, judged_by

    def mentions_threshold(annotation: object) -> bool:
        return annotation is Threshold or any(mentions_threshold(a) for a in get_args(annotation))

    unjudged: list[str] = []
    seen: set[type] = set()
    stack: list[type[BaseModel]] = [environment_model()]
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            rule = judged_by(info.annotation) or next(
                (m.func for m in info.metadata if isinstance(getattr(m, "func", None), Judged)), None)
            if mentions_threshold(info.annotation) and rule is None:
                unjudged.append(f"{model.__name__}.{name}")
            todo = [info.annotation]
            while todo:
                annotation = todo.pop()
                if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation is not Threshold:
                    stack.append(annotation)
                todo.extend(get_args(annotation))
    assert len(seen) > 50
    assert unjudged == []


def test_a_refused_value_names_its_line_too(tmp_path):
    text = "name: x\nhttp:\n  - name: a\n    url: http://127.0.0.1:1/\n    status:\n      - 200\n      - true\n"
    assert rejection(tmp_path, text) == "http[0].status (target 'a'): true is not a number here (line 5)"
    missing = "name: x\ntls:\n  - {name: a, host: h}\n  - name: b\n    port: 443\n"
    assert rejection(tmp_path, missing).startswith("tls[1].host (target 'b'): Field required (line 4)")
