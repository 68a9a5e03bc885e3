"""The TCP connect the shared HTTP clients use: as few event-loop turns as the connect needs.

httpcore connects through ``anyio.connect_tcp``, which runs happy eyeballs in a task group with a
cancel scope even for an IP literal: seven turns of the loop between "connect started" and
"connected", against four for a plain non-blocking connect handed to anyio. Every turn spent inside the timed connect
is a turn in which the other probes' work runs, and is billed to the endpoint: with a few hundred
probes in flight that was 2-3 ms added to every loopback reading. :class:`DirectBackend` connects an
IP literal with one ``sock_connect`` and hands the connected socket to anyio (``SocketStream.from_socket``,
public API); a host name keeps anyio's happy eyeballs, which resolving and racing address families
need.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import typing

import anyio.abc
import httpcore
import httpx
from httpcore._backends.anyio import AnyIOStream  # httpcore's own stream over an anyio byte stream

SocketOption = typing.Union[tuple[int, int, int], tuple[int, int, typing.Union[bytes, bytearray]],
                            tuple[int, int, None, int]]


class DirectBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, with a direct connect for IP-literal hosts.

    Errors are httpcore's: ``ConnectTimeout`` for a connect that outlasts ``timeout``, ``ConnectError``
    for a refusal or any other socket error, each raised ``from`` the ``OSError`` so the cause chain
    (errno, TLS alert) stays readable.
    """

    def __init__(self) -> None:
        self._names = httpcore.AnyIOBackend()
        self.direct_connects = 0  # connects that took the direct path (read by the self-tests)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        family = _family_of(host)
        if family is None or local_address is not None:
            return await self._names.connect_tcp(host, port, timeout, local_address, socket_options)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)  # type: ignore[arg-type]
            async with asyncio.timeout(timeout):
                await asyncio.get_running_loop().sock_connect(sock, (host, port))
                stream = await anyio.abc.SocketStream.from_socket(sock)
        except TimeoutError as exc:
            sock.close()
            raise httpcore.ConnectTimeout(f"connect to {host}:{port} took longer than {timeout} s") from exc
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        except BaseException:
            sock.close()
            raise
        self.direct_connects += 1
        return AnyIOStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._names.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._names.sleep(seconds)


def _family_of(host: str) -> socket.AddressFamily | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def transport(context: ssl.SSLContext, limits: httpx.Limits, backend: DirectBackend) -> httpx.AsyncHTTPTransport:
    """An httpx transport of ``limits`` and TLS ``context`` whose pool connects through ``backend``.

    httpx does not take a network backend, so the pool it built is replaced by the same pool with
    the backend given (``_pool`` is the one attribute httpx's transport sends through).
    """
    built = httpx.AsyncHTTPTransport(verify=context, limits=limits, trust_env=False)
    built._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return built
