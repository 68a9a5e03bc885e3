"""A real HTTP/1.1 server for the measurement self-tests and benchmarks: ``/delay/<ms>/...`` answers
after that many milliseconds, every other path at once; one connection per request.

``python -m tests.delay_server --port P`` (``--port 0`` prints the port it bound). Built on bare asyncio
streams so that the server's own cost per request stays far below what the tests measure.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1]
        if path.startswith(b"/delay/"):
            await asyncio.sleep(int(path.split(b"/")[2]) / 1000)
        writer.write(ANSWER)
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int, handler: Handler | None = None) -> None:
    """Serve ``handler`` (default: the delay server's) on 127.0.0.1:``port``; print the port bound."""
    server = await asyncio.start_server(handler or _answer, "127.0.0.1", port, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
