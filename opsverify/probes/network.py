"""TCP connect and DNS resolution probes.

For these two, "could not connect" and "does not resolve" are the symptom itself, so the probes
return them as data (``TcpResult.error``, ``DnsResult.error``) and the checks fail on them.

Example::

    tcp = await connect(ctx)      # TcpResult(connected=True, latency_ms=0.4, error=None)
    dns = await resolve(ctx)      # DnsResult(addresses={"127.0.0.1"}, error=None)
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field

from opsverify.config.network import DnsTarget, TcpTarget
from opsverify.engine import ProbeContext
from opsverify.errors import Unreachable
from opsverify.lazy import needs

needs("dns.asyncresolver", "dns.exception", "dns.resolver")  # imported inside functions; loaded before the wave


@dataclass
class TcpResult:
    connected: bool
    latency_ms: float
    error: str | None = None


@dataclass
class DnsResult:
    addresses: set[str] = field(default_factory=set)
    error: str | None = None


async def connect(ctx: ProbeContext[TcpTarget]) -> TcpResult:
    """Open (and close) one TCP connection to the target."""
    target = ctx.target
    ctx.phase = f"connecting to {target.host}:{target.port}"
    started = time.monotonic()
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), ctx.timeout
        )
    except (asyncio.TimeoutError, TimeoutError):
        return TcpResult(False, ctx.timeout * 1000, f"no answer within {ctx.timeout:g} s")
    except socket.gaierror as exc:
        raise Unreachable(f"cannot resolve {target.host}: {exc.strerror or exc}") from None
    except ConnectionRefusedError:
        return TcpResult(False, (time.monotonic() - started) * 1000, "connection refused")
    except OSError as exc:
        return TcpResult(False, (time.monotonic() - started) * 1000, exc.strerror or str(exc))
    latency = (time.monotonic() - started) * 1000
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1)
    except Exception:  # noqa: BLE001 - closing is best effort
        pass
    return TcpResult(True, latency)


async def resolve(ctx: ProbeContext[DnsTarget]) -> DnsResult:
    """Resolve the name with the system resolver, or with the target's ``nameserver``."""
    target = ctx.target
    ctx.phase = f"resolving {target.hostname}"
    if target.nameserver:
        return await _resolve_with(target, ctx.timeout)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.hostname, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return DnsResult(error=f"name does not resolve ({exc.strerror})")
        raise Unreachable(f"DNS lookup of {target.hostname} failed: {exc.strerror or exc}") from None
    return DnsResult(addresses={str(info[4][0]) for info in infos})


async def _resolve_with(target: DnsTarget, timeout: float) -> DnsResult:
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    host, _, port = (target.nameserver or "").rpartition(":")
    if not host:
        host, port = port, "53"
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = timeout
    addresses: set[str] = set()
    missing = 0
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(target.hostname, rdtype)
        except dns.resolver.NXDOMAIN:
            return DnsResult(error=f"name does not exist (NXDOMAIN from {target.nameserver})")
        except dns.resolver.NoAnswer:
            missing += 1
            continue
        except dns.exception.Timeout:
            raise Unreachable(f"nameserver {target.nameserver} did not answer within {timeout:g} s") from None
        except dns.resolver.NoNameservers as exc:
            raise Unreachable(f"nameserver {target.nameserver} failed: {exc}") from None
        addresses.update(rr.to_text() for rr in answer)
    if missing == 2:
        return DnsResult(error=f"no A or AAAA records (from {target.nameserver})")
    return DnsResult(addresses=addresses)
