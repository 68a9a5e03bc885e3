"""Whether the brokers a Kafka cluster advertises accept connections at the addresses it gives.

A client bootstraps from any listed server, then talks to each broker at the address the metadata
advertises (``advertised.listeners``). A wrong advertised address (a host name only resolvable
inside the cluster, a stale port after a move) leaves the bootstrap answering while every produce
and fetch fails: the metadata answered, and answered wrong.

Runs in the metadata probe's worker thread, within its deadline (``time.monotonic()`` clock).

Example::

    unreachable = refused_brokers({111: "10.0.0.5:9092"}, deadline)   # {111: "connection refused"}
"""

from __future__ import annotations

import socket
import time

CONNECT_S = 2.0  # at most this long per broker


def refused_brokers(brokers: dict[int, str], deadline: float) -> dict[int, str]:
    """Broker id -> why a TCP connection to its advertised ``host:port`` failed (only the failing ones)."""
    failed: dict[int, str] = {}
    for broker_id, address in sorted(brokers.items()):
        host, _, port = address.rpartition(":")
        left = deadline - time.monotonic()
        if left <= 0.01:
            break  # out of time: what was not tried is not reported as refused
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=min(CONNECT_S, left)):
                pass
        except socket.gaierror as exc:
            failed[broker_id] = f"its host does not resolve ({exc.strerror or exc})"
        except TimeoutError:
            failed[broker_id] = f"no TCP answer within {min(CONNECT_S, left):.3g} s"
        except (OSError, ValueError) as exc:
            text = getattr(exc, "strerror", None) or str(exc)
            failed[broker_id] = "connection refused" if isinstance(exc, ConnectionRefusedError) else text
    return failed
