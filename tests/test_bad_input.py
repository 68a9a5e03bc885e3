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
