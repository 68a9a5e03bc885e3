"""The servers the self-tests start get ports no other server of the run was handed.

A port ``free_port`` found free can be bound by another worker's server before the demo binds it;
the demo then exits with "address already in use", and every test of the module errored. Here the
race is made certain: the first port handed out is held by a bound socket (bound, not listening, so
nothing answers on it and the demo's exit is what the start sees).
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

import tests.platform_support as support
from opsverify_sandbox.process import SERVER_PORTS, free_port


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
