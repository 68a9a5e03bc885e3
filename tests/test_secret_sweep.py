"""The secret sweep: no form of any secret a probe sent appears in anything a run writes or prints.

Secrets holding reserved characters (``+/=&%"\\`` and spaces) travel in every channel a probe has:
a WebSocket ``?token=`` query, a ``Bearer`` header, a header read from a file, HTTP Basic auth, and a
login form body. The servers are real and on loopback: the recording server's ``/_echo`` answers
with everything it was sent (so the secrets come back JSON-escaped and percent-encoded), and the
checks fail on that answer, so tracebacks with locals exist (``-v --tb=long -l``). Then every
output is searched for every encoding of every secret: the console, ``summary.json``,
``summary.md``, ``junit.xml``, ``gate.json``, the Allure results, ``metrics.prom`` and the run
history.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from opsverify_sandbox.process import ManagedProcess, free_port
from tests.conftest import Recorder
from tests.harness import SuiteRun, run_checks

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [str(ROOT / "checks")]
BASIC_USER = "opsverify"
SECRETS = {
    "SWEEP_BEARER": 'Be+ar/er=&%"\\ tok-1a2b',
    "SWEEP_BASIC": 'Pa:ss+/w=&%"\\ 3c4d',
    "SWEEP_WS": 'WsTok+/=&%"\\ 5e6f',
    "SWEEP_CLIENT": 'Cl+ient/=&%"\\ 7a8b',
    "SWEEP_API": 'Ap+i/K=ey&%"\\ 9c0d',
    "SWEEP_HMAC": 'Hm+ac/=&%"\\ 3a4b-shared',
}
FILE_SECRET = 'Fi+le/K=ey&%"\\ 1e2f'
POLICY = """name: sweep
environment: sweep
markers: [smoke]
max_age_minutes: 30
block_on: [failed, error, missing]
items:
  - name: Everything
    checks: ["test_*"]
"""


def forms(secret: str) -> dict[str, str]:
    """Every encoding a probe (or a report writer) may put a secret in."""
    raw = secret.encode()
    found = {
        "raw": secret,
        "quote": quote(secret, safe=""),
        "quote-path": quote(secret),
        "quote_plus": quote_plus(secret),
        "quote-lower": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret, safe="")),
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "json": json.dumps(secret)[1:-1],
        "json-unicode": json.dumps(secret, ensure_ascii=False)[1:-1],
        "repr": repr(secret)[1:-1],
        "bytes-repr": repr(raw)[2:-1],
        "xml": html.escape(secret),
        "bearer-base64": base64.b64encode(f"Bearer {secret}".encode()).decode(),
        "start": secret[:8],  # what a cut (saferepr's "...") would leave of it
        "end": secret[-8:],
    }
    return {name: value for name, value in found.items() if len(value) >= 6}


def all_forms() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, secret in [*SECRETS.items(), ("file", FILE_SECRET)]:
        found |= {f"{name}/{form}": value for form, value in forms(secret).items()}
    pair = f"{BASIC_USER}:{SECRETS['SWEEP_BASIC']}"
    found |= {f"basic-pair/{form}": value for form, value in forms(pair).items() if form != "start"}  # the user
    return found


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    tmp = tmp_path_factory.mktemp("echo")
    port = free_port()
    proc = ManagedProcess.start([sys.executable, "-m", "tests.recorder", "--port", str(port)],
                                log_path=tmp / "recorder.log", name="recorder", cwd=ROOT)
    proc.wait_for_port("127.0.0.1", port)
    try:
        yield Recorder(port, proc)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def sweep(echo: Recorder, tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("sweep")
    key_file = tmp / "api-key"
    key_file.write_text(FILE_SECRET + "\n")
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    echoed = echo.url("/_echo")
    env = {
        "tier": "dev",
        "defaults": {"timeout_s": 3},
        "http": [
            {"name": "bearer", "url": f"{echoed}/bearer", "body_contains": "never-there",
             "request_headers": {"authorization": {"env": "SWEEP_BEARER", "prefix": "Bearer "},
                                 "x-api-key": {"file": str(key_file)}}},
            {"name": "basic", "url": f"{echoed}/basic", "json": {"headers.Authorization": "never"},
             "request_headers": {"authorization": {"env": "SWEEP_BASIC", "basic_user": BASIC_USER}}},
        ],
        "websocket": [{"name": "ws", "url": f"ws://127.0.0.1:{echo.port}/_echo/ws?x=1", "reply_contains": "pong",
                       "token": {"env": "SWEEP_WS"}}],
        "auth": [{"name": "login", "base_url": echo.url(""),
                  "client": {"client_id": "opsverify", "client_secret": {"env": "SWEEP_CLIENT"},
                             "token_path": "/_echo/token"},
                  "refresh_path": "/_echo/refresh", "jwks": {"path": "/_echo/jwks"},
                  "jwt": {"algorithms": ["HS256"], "hmac_secret": {"env": "SWEEP_HMAC"}},
                  "api_key": {"path": "/_echo/me", "key": {"env": "SWEEP_API"}, "header": "authorization",
                              "prefix": "Bearer "}}],
    }
    history = tmp / "history.sqlite"
    run = run_checks(tmp, env, "-v", "--tb=long", "-l", f"--gate={policy}", f"--history={history}",
                     paths=CHECKS, env_vars=SECRETS, env_name="sweep", timeout=300)
    outputs = {"stdout": run.stdout, "stderr": run.stderr}
    for path in sorted(run.reports.rglob("*")):
        if path.is_file():
            outputs[str(path.relative_to(run.reports))] = path.read_bytes().decode("utf-8", errors="replace")
    assert history.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    outputs["history"] = history.read_bytes().decode("utf-8", errors="replace")
    return run, outputs


def test_the_run_sent_every_secret_and_failed_with_tracebacks(sweep: tuple[SuiteRun, dict[str, str]],
                                                             echo: Recorder) -> None:
    run, outputs = sweep
    assert run.outcome("test_endpoint_body_contains_expected_text", "bearer") == "failed"
    assert run.outcome("test_endpoint_json_fields_have_expected_values", "basic") == "failed"
    assert "--tb=long" in " ".join(run.summary["run"]["args"]) if "args" in run.summary["run"] else True
    assert {"summary.json", "summary.md", "junit.xml", "gate.json", "metrics.prom", "history"} <= set(outputs)
    assert any(name.startswith("allure-results/") for name in outputs)
    assert "••••••" in outputs["stdout"]  # the echoed secrets came back and were masked
    sent = " ".join(echo.stats()["requests"])
    assert quote_plus(SECRETS["SWEEP_WS"]) in sent  # the token went out percent-encoded in the query
    assert "POST /_echo/token" in sent


def test_no_form_of_any_secret_appears_in_any_output(sweep: tuple[SuiteRun, dict[str, str]]) -> None:
    _, outputs = sweep
    leaks = [f"{form} in {name}" for name, text in outputs.items() for form, value in all_forms().items()
             if value in text]
    assert leaks == [], "\n".join(leaks)


@pytest.mark.parametrize("form", sorted(forms(SECRETS["SWEEP_WS"])))
def test_the_redactor_masks_each_form(form: str) -> None:
    from opsverify.config.secrets import MASK, Redactor

    redactor = Redactor()
    redactor.add(SECRETS["SWEEP_WS"])
    shown = forms(SECRETS["SWEEP_WS"])[form]
    text = f"before ({shown}) after"
    if form in ("start", "end"):
        text = f"before ({shown}...) after" if form == "start" else f"before (...{shown}) after"
    masked = redactor.redact(text)
    assert shown not in masked and MASK in masked, masked


def test_the_redactor_masks_a_secret_inside_longer_base64_and_leaves_plain_text_alone() -> None:
    from opsverify.config.secrets import MASK, Redactor

    redactor = Redactor()
    redactor.add(SECRETS["SWEEP_API"])
    for prefix in (b"", b"x", b"xy", b"xyz"):
        encoded = base64.b64encode(prefix + SECRETS["SWEEP_API"].encode() + b" trailing").decode()
        masked = redactor.redact(encoded)
        assert MASK in masked and len(masked.replace(MASK, "")) <= 4 + len(prefix) + 12, (prefix, masked)
    assert redactor.redact("ordinary text ... and … more") == "ordinary text ... and … more"
