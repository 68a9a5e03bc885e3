"""Client TLS contexts: built once per run and setting, never inside a probe's timed region.

Building an ``ssl.SSLContext`` loads a CA store (tens of milliseconds of CPU); done inside the wave of
probes it would delay every other probe on the loop. :func:`tls_context` builds each distinct setting
once per engine (the plugin builds the ones the selected targets need before the wave starts).

Example::

    context = tls_context(ctx, ca_bundle="certs/ca.pem", verify=True)
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsverify.errors import Unreachable


@dataclass(frozen=True)
class TlsSettings:
    """How a client verifies a server: a CA bundle (relative to the environment file) or none."""

    ca_bundle: str | None = None
    verify: bool = True
    base_dir: str | None = None

    @classmethod
    def of(cls, target: Any, env: Any) -> TlsSettings:
        """The settings a target declares (``ca_bundle``, ``verify_tls``), relative to its environment file."""
        return cls(getattr(target, "ca_bundle", None), getattr(target, "verify_tls", True), base_dir(env))

    @property
    def key(self) -> str:
        return f"tls:{self.ca_bundle}:{self.verify}:{self.base_dir}"


def base_dir(env: Any) -> str | None:
    """The directory of the environment file (relative paths in it are relative to that)."""
    source = getattr(env, "source", "")
    return str(Path(source).resolve().parent) if source else None


def ssl_context(ca_bundle: str | None, verify: bool, base: str | None = None) -> ssl.SSLContext:
    """A client TLS context: the system store, or ``ca_bundle``, or no verification."""
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA store to load: nothing is verified
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_bundle:
        path = Path(os.path.expandvars(ca_bundle))
        if not path.is_absolute() and base:
            path = Path(base) / path
        try:
            return ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise Unreachable(f"CA bundle {path} cannot be loaded: {exc}") from None
    return ssl.create_default_context()


def tls_context(ctx: Any, ca_bundle: str | None, verify: bool) -> ssl.SSLContext:
    """The shared client TLS context for these settings on ``ctx``'s engine (built on first use)."""
    return context_for(ctx.engine, TlsSettings(ca_bundle, verify, base_dir(ctx.env)))


def context_for(engine: Any, settings: TlsSettings) -> ssl.SSLContext:
    """The shared client TLS context for ``settings`` on ``engine``."""
    context: ssl.SSLContext = engine.resource(
        settings.key, lambda: ssl_context(settings.ca_bundle, settings.verify, settings.base_dir)
    )
    return context
