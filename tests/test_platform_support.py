"""The servers the self-tests start get ports no other server of the run was handed, and a start is
ready only when the server itself listens.

A port ``free_port`` found free can be bound by another worker's server before the demo binds it;
the demo then exits with "address already in use", and every test of the module errored. Here the
race is made certain: the first port handed out is held by a bound socket (bound, not listening, so
nothing answers on it and the demo's exit is what the start sees).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx
import pytest

import tests.platform_support as support
from opsverify.errors import SandboxError
from opsverify_sandbox.process import SERVER_PORTS, ManagedProcess, free_port


def test_a_demo_whose_port_was_taken_before_it_bound_starts_again_on_fresh_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    handed = iter([taken.getsockname()[1]])
    monkeypatch.setattr(support, "free_port", lambda: next(handed, None) or free_port())
    try:
        demo = support.start_demo(tmp_path, {"healthy": ""})
        try:
            port = demo.demo.ports["healthy"]
            assert port != taken.getsockname()[1]
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        finally:
            demo.demo.stop()
    finally:
        taken.close()


def test_free_port_never_hands_out_the_same_port_twice_before_it_could_be_bound() -> None:
    """A server with many listeners picks every port before binding any: 500 draws from 12,768 ports
    would repeat one almost surely (the birthday bound) if each draw only checked the port was free."""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_parallel_test_workers_draw_their_ports_from_separate_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
        drawn[worker] = {free_port() for _ in range(50)}
    assert {p % 2 for p in drawn["gw0"]} == {SERVER_PORTS[0] % 2}
    assert {p % 2 for p in drawn["gw1"]} == {(SERVER_PORTS[0] + 1) % 2}


def _python_process(tmp_path: Path, code: str) -> ManagedProcess:
    return ManagedProcess.start([sys.executable, "-c", code], log_path=tmp_path / "server.log", name="server")


def test_a_port_another_process_holds_is_not_the_started_server_being_ready(tmp_path: Path) -> None:
    """The wait used to pass as soon as anything answered on the port: a server that had not bound
    it yet (or never would) counted as started, and its test then spoke to a stranger."""
    stranger = socket.socket()
    stranger.bind(("127.0.0.1", free_port()))
    stranger.listen()
    port = stranger.getsockname()[1]
    proc = _python_process(tmp_path, "import time; time.sleep(60)")
    try:
        with pytest.raises(SandboxError) as caught:
            proc.wait_for_port("127.0.0.1", port, timeout_s=1)
        assert f"server was not listening on 127.0.0.1:{port} (another process holds that port) within 1 s" \
            in str(caught.value)
    finally:
        proc.stop()
        stranger.close()


def test_a_server_listening_on_its_port_is_ready_and_so_is_one_whose_child_listens(tmp_path: Path) -> None:
    for code in (
        "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)",
        # a launcher whose child (same process group) holds the socket, as wrappers and forking servers do
        "import subprocess, sys; subprocess.run([sys.executable, '-c', \"import socket, time; "
        "s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)\"])",
    ):
        port = free_port()
        proc = _python_process(tmp_path, code.format(port=port))
        try:
            proc.wait_for_port("127.0.0.1", port, timeout_s=10)
            assert proc.listens_on(port)
        finally:
            proc.stop()
        assert not proc.listens_on(port)
