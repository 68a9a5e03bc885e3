"""Client TLS contexts: built once per run and setting, never inside a probe's timed region.

Building an ``ssl.SSLContext`` loads a CA store (tens of milliseconds of CPU); done inside the wave of
probes it would delay every other probe on the loop. :func:`tls_context` builds each distinct setting
once per engine (the plugin builds the ones the selected targets need before the wave starts).

Mutual TLS: a setting with ``client_cert`` and ``client_key`` (a secret reference) presents that
certificate. ``ssl`` loads keys from files only: a key held in an environment variable is written to
a private temporary file (mode 0600 in a 0700 directory), loaded, and removed at once.

Example::

    context = tls_context(ctx, ca_bundle="certs/ca.pem", verify=True)
    settings = TlsSettings.of(target, env)          # with the target's client_cert / client_key
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsverify.errors import ClientCertUnusable, Unreachable


@dataclass(frozen=True)
class TlsSettings:
    """How a client verifies a server (a CA bundle or none) and which certificate it presents (mutual TLS)."""

    ca_bundle: str | None = None
    verify: bool = True
    base_dir: str | None = None
    client_cert: str | None = None
    client_key: Any = field(default=None, compare=False, hash=False)  # a SecretRef (never shown)

    @classmethod
    def of(cls, target: Any, env: Any) -> TlsSettings:
        """The settings a target declares (``ca_bundle``, ``verify_tls``, ``client_cert``/``client_key``),
        relative to its environment file."""
        return cls(getattr(target, "ca_bundle", None), getattr(target, "verify_tls", True), base_dir(env),
                   getattr(target, "client_cert", None), getattr(target, "client_key", None))

    @property
    def key(self) -> str:
        client = f":{self.client_cert}:{self.client_key.label}" if self.client_cert and self.client_key else ""
        return f"tls:{self.ca_bundle}:{self.verify}:{self.base_dir}{client}"


def base_dir(env: Any) -> str | None:
    """The directory of the environment file (relative paths in it are relative to that)."""
    source = getattr(env, "source", "")
    return str(Path(source).resolve().parent) if source else None


def resolve(path: str, base: str | None) -> Path:
    """``path`` with ``${VAR}`` and ``~`` expanded, relative to ``base`` (the environment file's directory)."""
    resolved = Path(os.path.expanduser(os.path.expandvars(path)))
    return resolved if resolved.is_absolute() or not base else Path(base) / resolved


def ssl_context(ca_bundle: str | None, verify: bool, base: str | None = None,
                client_cert: str | None = None, client_key: Any = None) -> ssl.SSLContext:
    """A client TLS context: the system store, or ``ca_bundle``, or no verification; with a client certificate."""
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA store to load: nothing is verified
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_bundle:
        path = resolve(ca_bundle, base)
        try:
            ctx = ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise Unreachable(f"CA bundle {path} cannot be loaded: {exc}") from None
    else:
        ctx = ssl.create_default_context()
    if client_cert and client_key is not None:
        load_client_certificate(ctx, client_cert, client_key, base)
    return ctx


def load_client_certificate(ctx: ssl.SSLContext, client_cert: str, client_key: Any, base: str | None) -> None:
    """Present ``client_cert`` with the key ``client_key`` (a secret reference) from ``ctx``.

    Raises :class:`~opsverify.errors.SecretMissing` when the key's reference does not resolve and
    :class:`~opsverify.errors.ClientCertUnusable` when the pair cannot be loaded.
    """
    cert = resolve(client_cert, base)
    if not cert.is_file():
        raise ClientCertUnusable(f"client certificate {cert} does not exist: point client_cert at the PEM file")
    with key_file(client_key) as key:
        try:
            ctx.load_cert_chain(str(cert), key)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
            raise ClientCertUnusable(
                f"client certificate {cert} with the key from {client_key.label} cannot be loaded ({reason}): "
                "check that both are PEM and that the key belongs to the certificate"
            ) from None


class key_file:  # noqa: N801 - used as a context manager, reads as one
    """The path of a file holding the key of ``reference``: its own file, or a private temporary copy."""

    def __init__(self, reference: Any) -> None:
        self.reference = reference
        self.tmpdir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> str:
        if getattr(self.reference, "file", None):
            self.reference.reveal()  # raises SecretMissing naming the file when it cannot be read
            return str(self.reference.path)
        pem = self.reference.reveal()
        self.tmpdir = tempfile.TemporaryDirectory(prefix="opsverify-key-")
        path = Path(self.tmpdir.name) / "key.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(pem if pem.endswith("\n") else pem + "\n")
        return str(path)

    def __exit__(self, *exc: object) -> None:
        if self.tmpdir is not None:
            self.tmpdir.cleanup()


def tls_context(ctx: Any, ca_bundle: str | None, verify: bool) -> ssl.SSLContext:
    """The shared client TLS context for these settings on ``ctx``'s engine (built on first use)."""
    return context_for(ctx.engine, TlsSettings(ca_bundle, verify, base_dir(ctx.env)))


def context_for(engine: Any, settings: TlsSettings) -> ssl.SSLContext:
    """The shared client TLS context for ``settings`` on ``engine``."""
    context: ssl.SSLContext = engine.resource(
        settings.key,
        lambda: ssl_context(settings.ca_bundle, settings.verify, settings.base_dir,
                            settings.client_cert, settings.client_key),
    )
    return context
