"""The Kafka clients of a probe: librdkafka's configuration for the target (TLS, SASL), the admin
client, the probe's time :class:`Budget`, and the translation of librdkafka's errors into opsverify's.
"""

from __future__ import annotations

import os
import re
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsverify.config.kafka import KafkaTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ClientCertUnusable, ProbeTimeout, Unreachable
from opsverify.lazy import lazy_module
from opsverify.net.tls import resolve

if TYPE_CHECKING:
    import confluent_kafka as ck
    # confluent_kafka.admin has no __all__: mypy --strict needs an ignore where its names are used
    import confluent_kafka.admin as ck_admin
    from confluent_kafka import KafkaError, KafkaException
else:
    ck = lazy_module("confluent_kafka")
    ck_admin = lazy_module("confluent_kafka.admin")


#: Kept back from the probe's timeout so the probe's own message wins over the engine's backstop.
MARGIN_S = 0.05


@cache
def _fatal_codes() -> frozenset[int]:
    """librdkafka error codes that mean "this client will not get in", reported at once."""
    return frozenset({ck.KafkaError._AUTHENTICATION, ck.KafkaError._SSL, ck.KafkaError._ALL_BROKERS_DOWN})


@cache
def _connection_codes() -> frozenset[int]:
    """librdkafka error codes of a connection that could not be made."""
    return frozenset({ck.KafkaError._TRANSPORT, ck.KafkaError._RESOLVE, ck.KafkaError._SSL,
                      ck.KafkaError._AUTHENTICATION})


# -- clients --------------------------------------------------------------------------------------
class KafkaAdmin:
    """A shared ``AdminClient`` plus every error its ``error_cb`` reported (thread-safe)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._errors: list[KafkaError] = []
        self._lock = threading.Lock()
        self._config = config  # holds revealed credentials: never printed
        try:
            self.client = ck_admin.AdminClient({**config, "error_cb": self._on_error})  # type: ignore[dict-item]
        except ck.KafkaException as exc:
            raise Unreachable(f"cannot set up a Kafka client: {_kafka_text(exc)}") from None

    def _on_error(self, error: KafkaError) -> None:
        with self._lock:
            self._errors.append(error)
            del self._errors[:-50]

    def fresh(self) -> KafkaAdmin:
        """A new client of the same config, for one request: it starts again from the bootstrap."""
        return KafkaAdmin(self._config)

    def mark(self) -> int:
        with self._lock:
            return len(self._errors)

    def errors_since(self, mark: int) -> list[KafkaError]:
        """Drain the client's callbacks, then the errors reported since ``mark``."""
        self.client.poll(0)
        with self._lock:
            return list(self._errors[min(mark, len(self._errors)):])


def _base_dir(ctx: ProbeContext[KafkaTarget]) -> Path | None:
    source = getattr(ctx.env, "source", "")
    return Path(source).resolve().parent if source else None


def client_config(ctx: ProbeContext[KafkaTarget]) -> dict[str, Any]:
    """The librdkafka config of the target: bootstrap, security, credentials (revealed here)."""
    target = ctx.target
    config: dict[str, Any] = {
        "bootstrap.servers": target.bootstrap,
        "client.id": "opsverify",
        "security.protocol": target.protocol,
        "log_level": 0,  # librdkafka would log every failed connect to stderr
    }
    if target.sasl is not None:
        config["sasl.mechanism"] = target.sasl.mechanism
        config["sasl.username"] = target.sasl.username.reveal().strip()
        config["sasl.password"] = target.sasl.password.reveal().strip()
    if target.ca_bundle:
        path = Path(os.path.expandvars(os.path.expanduser(target.ca_bundle)))
        base = _base_dir(ctx)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise Unreachable(f"CA bundle {path} cannot be read")
        config["ssl.ca.location"] = str(path)
    if target.client_cert and target.client_key is not None:
        base = _base_dir(ctx)
        cert = resolve(target.client_cert, str(base) if base is not None else None)
        if not cert.is_file():
            raise ClientCertUnusable(f"client certificate {cert} does not exist: point client_cert at the PEM file")
        config["ssl.certificate.location"] = str(cert)
        config["ssl.key.pem"] = target.client_key.reveal()  # librdkafka takes the key as PEM text
    return config


def _admin(ctx: ProbeContext[KafkaTarget]) -> KafkaAdmin:
    target = ctx.target
    config = client_config(ctx)  # reveals secrets first: a missing one errors before any I/O
    name = f"kafka-admin:{ctx.key.env}:{target.name}"
    admin: KafkaAdmin = ctx.resource(name, lambda: KafkaAdmin(config))
    return admin


class Budget:
    """The probe's deadline (``ctx.remaining()``) as the client calls in worker threads use it."""

    def __init__(self, ctx: ProbeContext[KafkaTarget]) -> None:
        self.ctx = ctx
        self.timeout = ctx.timeout
        self.where = _where(ctx.target)

    @property
    def deadline(self) -> float:
        """When the calls must be done (``time.monotonic()`` clock), a margin before the probe's deadline."""
        return self.ctx.deadline - MARGIN_S

    def left(self, doing: str) -> float:
        """Seconds left (at least a few ms); raises :class:`ProbeTimeout` naming ``doing`` when none."""
        remaining = self.ctx.remaining(MARGIN_S)
        if remaining <= 0.005:
            raise self.expired(doing)
        return remaining

    def expired(self, doing: str) -> ProbeTimeout:
        """The error for ``doing`` not finishing within the probe's timeout."""
        return ProbeTimeout(f"Kafka at {self.where}: {doing} took longer than {self.timeout:g} s")


def _where(target: KafkaTarget) -> str:
    servers = target.servers
    return servers[0] + (f" (+{len(servers) - 1} more)" if len(servers) > 1 else "")


# -- error text -----------------------------------------------------------------------------------
_AFTER = re.compile(r"\s*\(after \d+ms in state [A-Z_]+\)(?:\s*\(_[A-Z_]+\))?")
#: librdkafka names a broker learned from metadata ``host:port/<id>`` (a bootstrap one ``.../bootstrap``).
_LEARNED_BROKER = re.compile(r"^\S+/\d+: ")
_BROKER_PREFIX = re.compile(r"^[a-z_]+://|^\S+/(?:bootstrap|\d+):\s*")


def _clean(text: str) -> str:
    text = _AFTER.sub("", text)
    text = _BROKER_PREFIX.sub("", text)
    text = _BROKER_PREFIX.sub("", text)
    return " ".join(text.split())[:240]


def _kafka_error(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, ck.KafkaException) and exc.args and isinstance(exc.args[0], ck.KafkaError):
        return exc.args[0]
    return None


def _kafka_text(exc: BaseException) -> str:
    error = _kafka_error(exc)
    if error is not None:
        return f"{_clean(error.str())} ({error.name()})"
    return " ".join(str(exc).split())[:240] or type(exc).__name__


def only_learned_brokers_failed(errors: list[KafkaError]) -> bool:
    """Whether connections failed, all of them to brokers learned from metadata (none to a bootstrap).

    librdkafka drops its bootstrap brokers once the first metadata named the cluster's own; when
    those advertised addresses refuse, the client is left with no broker although the bootstrap
    address answers.
    """
    transport = [e for e in errors if e.code() in _connection_codes()]
    return bool(transport) and all(_LEARNED_BROKER.match(e.str()) for e in transport)


def _fatal_cause(errors: list[KafkaError]) -> str | None:
    """The reason no broker will answer, when the ``error_cb`` reports one."""
    if not any(e.code() in _fatal_codes() for e in errors):
        return None
    for code, label in (
        (ck.KafkaError._AUTHENTICATION, "authentication failed"),
        (ck.KafkaError._SSL, "TLS handshake failed"),
        (ck.KafkaError._RESOLVE, "DNS lookup failed"),
    ):
        found = [e for e in errors if e.code() == code]
        if found:
            return f"{label}: {_clean(found[-1].str())}"
    transport = [e for e in errors if e.code() in _connection_codes()]
    if only_learned_brokers_failed(errors):
        # the bootstrap answered (that is how the failing brokers were learned): the metadata
        # probe asks again and reports the refusals itself
        return None
    if transport:
        text = _clean(transport[-1].str())
        if "connection refused" in text.lower():
            return "connection refused"
        return text
    return "all brokers are down"


def _raise_if_timeout(exc: KafkaException, budget: Budget, doing: str) -> None:
    error = _kafka_error(exc)
    if error is not None and error.code() in (ck.KafkaError._TIMED_OUT, ck.KafkaError._TRANSPORT):
        raise ProbeTimeout(
            f"Kafka at {budget.where}: {doing} got no answer within {budget.timeout:g} s ({error.name()})"
        ) from None
