"""A real HTTP/1.1 server whose health changes over time, for the wait and window self-tests.

``python -m tests.flaky_server --port P``; paths:

- ``/healthy-after/<ms>``: 503 until that many milliseconds after the first request to this path, then 200;
- ``/always/<status>``: that status, always;
- ``/slow-burst/<n>/<ms>``: 200, but during the n-th burst of requests each answer takes that many
  milliseconds. A burst is what arrives while others are in flight or less than ``--burst-gap-ms``
  (default 700) after the last answer: the samples of one probe run, with a window's interval between.
  Every path (query string included) keeps its own first request and bursts: tests share one server.

Bare asyncio streams, one connection per request (as ``tests.delay_server``).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from tests.delay_server import serve

FIRST: dict[bytes, float] = {}
BURSTS: dict[bytes, dict[str, float]] = {}


def _answer(status: int, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    return head.encode() + body


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gap_s: float) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1]
        parts = path.split(b"?")[0].strip(b"/").split(b"/")
        now = time.monotonic()
        status, delay = 200, 0.0
        bursts = BURSTS.setdefault(path, {"count": 0, "in_flight": 0, "last_end": 0.0})
        if parts[0] == b"healthy-after":
            first = FIRST.setdefault(path, now)
            status = 200 if now - first >= int(parts[1]) / 1000 else 503
        elif parts[0] == b"always":
            status = int(parts[1])
        elif parts[0] == b"slow-burst":
            if bursts["in_flight"] == 0 and now - bursts["last_end"] > gap_s:
                bursts["count"] += 1
            delay = int(parts[2]) / 1000 if bursts["count"] == int(parts[1]) else 0.0
        bursts["in_flight"] += 1
        try:
            await asyncio.sleep(delay)
            writer.write(_answer(status, b"ok" if status == 200 else b"not yet"))
            await writer.drain()
        finally:
            bursts["in_flight"] -= 1
            bursts["last_end"] = time.monotonic()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError, ValueError):
        pass
    finally:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--burst-gap-ms", type=float, default=700)
    args = parser.parse_args()
    asyncio.run(serve(args.port, lambda r, w: _serve(r, w, args.burst_gap_ms / 1000)))


if __name__ == "__main__":
    main()
