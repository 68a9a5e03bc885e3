"""Fixtures of the self-tests: run the checks, and real local servers to run them against."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsverify import local_state
from opsverify_sandbox.pki import CertificateAuthority
from opsverify_sandbox.process import ManagedProcess, free_port
from tests.harness import ROOT, SuiteRun, run_checks


def pytest_configure(config: pytest.Config) -> None:
    """The server binaries are the project's (pytest's rootdir's ``.opsverify/tools``) whatever
    directory a test's processes run in: ``$OPSVERIFY_TOOLS`` is set to them unless it is set."""
    os.environ.setdefault(local_state.TOOLS_DIR_VARIABLE, str(local_state.tools_dir(config.rootpath)))


@pytest.fixture
def run_suite(tmp_path: Path) -> Callable[..., SuiteRun]:
    """``run_suite(env_dict, *pytest_args, env_vars=..., paths=[...], netns=False)`` -> SuiteRun."""
    counter = iter(range(1000))

    def run(env: dict[str, Any] | None, *args: str, **kw: Any) -> SuiteRun:
        directory = tmp_path / f"run{next(counter)}"
        directory.mkdir()
        return run_checks(directory, env, *args, **kw)

    return run


@dataclass
class DemoServers:
    """The demo service on several listeners, each a real fault (or none)."""

    http: int
    https: dict[str, int]
    blackhole: int
    closed: int
    ca: Path
    other_ca: Path
    proc: ManagedProcess

    def url(self, path: str = "/healthz") -> str:
        return f"http://127.0.0.1:{self.http}{path}"

    def tls(self, name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "host": "127.0.0.1", "server_name": "localhost",
                "port": self.https[name], "ca_bundle": str(self.ca), **extra}


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServers]:
    """One demo-service process: plain HTTP, HTTPS listeners with good and bad certificates,
    one that only speaks up to TLS 1.2, and a port that accepts and never answers."""
    tmp = tmp_path_factory.mktemp("demo")
    ca = CertificateAuthority.create("selftest CA")
    ca_path = ca.write(tmp / "ca.pem")
    stranger = CertificateAuthority.create("untrusted CA")
    other_ca = stranger.write(tmp / "other-ca.pem")
    certs = {
        "good": ca.issue(["localhost", "127.0.0.1"], days=90),
        "expired": ca.issue(["localhost"], days=-2),
        "expiring": ca.issue(["localhost"], days=5),
        "warning": ca.issue(["localhost"], days=20),
        # 20.02 days: its days left read 20.0 (to 0.1 d) for the next 100 minutes
        "edge": ca.issue(["localhost"], days=20.02),
        "wronghost": ca.issue(["other.example.test"], days=90),
        "untrusted": stranger.issue(["localhost"], days=90),
        "tls12": ca.issue(["localhost"], days=90),
    }
    http = free_port()
    https = {name: free_port() for name in certs}
    blackhole, closed = free_port(), free_port()
    argv = [sys.executable, "-m", "opsverify_sandbox.demo", "--http", str(http), "--blackhole", str(blackhole)]
    for name, issued in certs.items():
        cert, key = issued.write(tmp / f"{name}.pem", tmp / f"{name}.key")
        argv += ["--https", f"{https[name]}:{cert}:{key}" + (":TLSv1.2" if name == "tls12" else "")]
    proc = ManagedProcess.start(argv, log_path=tmp / "demo.log", name="demo")
    proc.wait_for_port("127.0.0.1", http)
    for port in https.values():
        proc.wait_for_port("127.0.0.1", port)
    yield DemoServers(http, https, blackhole, closed, ca_path, other_ca, proc)
    proc.stop()


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A port that accepts TCP connections (into the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A port nothing listens on: connections to it are refused."""
    return free_port()


@dataclass
class Recorder:
    """A real HTTP server that records requests (count, paths, peak concurrency)."""

    port: int
    proc: ManagedProcess

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stats(self) -> dict[str, Any]:
        import httpx

        return dict(httpx.get(self.url("/_stats"), timeout=5).json())

    def reset(self) -> None:
        import httpx

        httpx.post(self.url("/_reset"), timeout=5)


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    """A recording server whose every answer takes 200 ms."""
    tmp = tmp_path_factory.mktemp("recorder")
    port = free_port()
    proc = ManagedProcess.start(
        [sys.executable, "-m", "tests.recorder", "--port", str(port), "--delay-ms", "200"],
        log_path=tmp / "recorder.log", name="recorder", cwd=Path(__file__).resolve().parents[1],
    )
    proc.wait_for_port("127.0.0.1", port)
    yield Recorder(port, proc)
    proc.stop()


@pytest.fixture
def fresh_recorder(recorder: Recorder) -> Recorder:
    recorder.reset()
    return recorder


class Flaky:
    """The flaky server: every ``url`` gets a fresh path, so tests sharing it never share its state."""

    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}?run={uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flaky]:
    """A real HTTP server that turns healthy after a while, never does, or is slow for one burst."""
    tmp = tmp_path_factory.mktemp("flaky")
    port = free_port()
    proc = ManagedProcess.start([sys.executable, "-m", "tests.flaky_server", "--port", str(port)],
                                log_path=tmp / "flaky.log", name="flaky", cwd=ROOT)
    proc.wait_for_port("127.0.0.1", port)
    yield Flaky(port)
    proc.stop()
