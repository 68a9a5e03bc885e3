"""The shared HTTP clients connect an IP literal in as few turns of the event loop as a connect needs.

Every turn of the loop inside a timed connect runs other probes' work and is billed to the endpoint,
so the turns are counted here (a count, not a duration): against real loopback servers, a direct
connect takes four where httpcore's happy-eyeballs path takes seven, errors keep httpcore's types and
their ``OSError`` cause, and host names still go through anyio's resolver.
"""

from __future__ import annotations

import asyncio
import bisect
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpcore
import pytest

from opsverify.engine import Engine, ProbeKey, ProbeRequest
from opsverify.net.http.connect import DirectBackend
from opsverify.net.http.transport import clients, request
from opsverify.net.tls import TlsSettings

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await writer.drain()
    finally:
        writer.close()


def _threaded_server() -> tuple[int, Callable[[], None]]:
    """A blocking loopback HTTP server on its own thread: it takes no turns of the loop under test."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096) or b"\r\n\r\n"
                conn.sendall(OK)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(5)
        listener.close()

    return listener.getsockname()[1], stop


async def _turns_to_connect(backend: httpcore.AsyncNetworkBackend, port: int) -> int:
    """The loop turns one connect to 127.0.0.1:``port`` spans, counted by a task that runs once a turn."""
    turns = 0

    async def count() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count())
    await asyncio.sleep(0)
    try:
        before = turns
        stream = await backend.connect_tcp("127.0.0.1", port, timeout=5)
        spent = turns - before
        await stream.aclose()
        return spent
    finally:
        counter.cancel()


def test_a_direct_connect_spans_four_turns_of_the_loop_where_happy_eyeballs_spans_seven() -> None:
    async def main() -> tuple[int, int]:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            direct = await _turns_to_connect(DirectBackend(), port)
            anyio_path = await _turns_to_connect(httpcore.AnyIOBackend(), port)
        return direct, anyio_path

    direct, anyio_path = asyncio.run(main())
    assert direct <= 4 < anyio_path, (direct, anyio_path)


def _in_engine(probe: Callable[[Any], Awaitable[Any]]) -> Any:
    """What ``probe`` returns, run as a probe of a real engine (its loop, lag monitor and clients)."""
    engine = Engine(concurrency=2)
    try:
        key = ProbeKey("direct-connect", "local", "loopback")
        return engine.result(key, ProbeRequest(fn=probe, env=None, target=None, item=None, timeout=5))
    finally:
        engine.shutdown()


def test_the_shared_clients_connect_ip_literals_directly_and_names_through_the_resolver() -> None:
    async def probe(ctx: Any) -> list[tuple[int, int]]:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        seen = []
        async with server:
            for host in ("127.0.0.1", "localhost", "127.0.0.1"):
                answer = await request(ctx, "GET", f"http://{host}:{port}/", tls=TlsSettings(verify=False))
                seen.append((answer.status, clients(ctx.engine).backend.direct_connects))
        return seen

    seen = _in_engine(probe)
    assert seen == [(200, 1), (200, 1), (200, 2)]


def test_a_timed_exchange_spans_no_turns_of_the_loop_beyond_connect_and_the_last_byte() -> None:
    """Through the real request path: the connect spans at most four turns, and the transfer of a body
    that came with the headers none; httpcore closing the response after the last byte (two turns)
    is not the peer's time and is left out of the exchange."""
    port, stop = _threaded_server()

    async def probe(ctx: Any) -> list[tuple[int, int]]:
        stamps: list[float] = []

        async def count() -> None:
            while True:
                stamps.append(time.monotonic())
                await asyncio.sleep(0)

        def turns(begin: float, end: float) -> int:
            return bisect.bisect(stamps, end) - bisect.bisect(stamps, begin)

        counter = asyncio.create_task(count())
        spans = []
        try:
            for _ in range(3):
                timing = (await request(ctx, "GET", f"http://127.0.0.1:{port}/", tls=TlsSettings(verify=False))).timing
                spans.append((turns(timing.start, timing.start + timing.connect_ms / 1000),
                              turns(timing.end - timing.transfer_ms / 1000, timing.end)))
        finally:
            counter.cancel()
        return spans

    try:
        spans = _in_engine(probe)
    finally:
        stop()
    assert all(connect <= 4 and transfer == 0 for connect, transfer in spans), spans


@pytest.mark.skipif(not socket.has_ipv6, reason="this Python has no IPv6")
def test_an_ipv6_literal_connects_directly() -> None:
    async def main() -> int:
        try:
            server = await asyncio.start_server(_answer, "::1", 0)
        except OSError:
            pytest.skip("no ::1 on this machine")
        port = server.sockets[0].getsockname()[1]
        backend = DirectBackend()
        async with server:
            stream = await backend.connect_tcp("::1", port, timeout=5)
            await stream.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            head = await stream.read(100, timeout=5)
            await stream.aclose()
        assert head.startswith(b"HTTP/1.1 200")
        return backend.direct_connects

    assert asyncio.run(main()) == 1


def test_a_refused_connect_is_httpcores_connect_error_caused_by_the_refusal() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: the kernel refuses

        async def main() -> None:
            await DirectBackend().connect_tcp("127.0.0.1", port, timeout=5)

        with pytest.raises(httpcore.ConnectError) as raised:
            asyncio.run(main())
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


def test_a_connect_the_peer_never_completes_is_httpcores_connect_timeout() -> None:
    """A listener whose accept queue is full drops further SYNs: the connect hangs until its timeout."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued = []
        try:
            for _ in range(8):  # fill the accept queue (its length is backlog + 1 on Linux)
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                queued.append(sock)

            async def main() -> None:
                await DirectBackend().connect_tcp("127.0.0.1", port, timeout=0.3)

            with pytest.raises(httpcore.ConnectTimeout) as raised:
                asyncio.run(main())
        finally:
            for sock in queued:
                sock.close()
    assert "127.0.0.1" in str(raised.value)
