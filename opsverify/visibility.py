"""The words of an ``error`` outcome: what could not be seen, where, and how to let the checker see it.

An error is not a symptom of the system: nobody saw it sealed, lagging or expired, so the runbook
action for that symptom (unseal, restore, rotate) is never offered. What is offered is how to restore
visibility: reachability of the address from where the checker runs, the checker's own credentials
and access, its time budget, the secret references it reads. Every error names the target label
(``staging-vault``) and the target's configured address, whatever the probe's message already says.

Example::

    error_text(Unreachable("cannot connect to 10.0.4.12:8200: connection refused"), "staging-vault", target)
    # "Unreachable: cannot connect to 10.0.4.12:8200: connection refused — could not see staging-vault
    #  (https://vault.staging.example.com:8200): check that the service is up and that the checker can
    #  reach that address (DNS, routes, firewall, TLS trust)"
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opsverify.errors import (
    CheckerOverloaded,
    ProbeCrashed,
    ProbeTimeout,
    SecretMissing,
    UnexpectedResponse,
    Unreachable,
    WindowErrored,
    one_line,
)

# Fields that hold where a target lives, in the order they are asked for.
ADDRESS_FIELDS = ("where", "addr", "url", "base_url", "verify_url", "endpoint", "admin_url", "ingress_url",
                  "tunnel_health_url", "bootstrap", "hostname", "kubeconfig", "context")

_CREDENTIALS = re.compile(
    r"\b(401|403|unauthori[sz]ed|forbidden|permission|denied|authori[sz]ation violation|"
    r"authentication|password|invalid token|bad token|not allowed)\b",
    re.IGNORECASE,
)

REACH = "check that the service is up and that the checker can reach that address (DNS, routes, firewall, TLS trust)"
TIME = ("check the network path from the checker to that address (a firewall dropping packets, an overloaded "
        "peer), or give the probe more time (timeout_s)")
ACCESS = ("check the checker's own credentials and access there (its token, user or role, and what that "
          "identity may read)")
SECRET = "make the secret reference resolve where the checker runs (set the variable or file it names)"
SHAPE = ("check that the address points at the right service, and that the checker's identity may read "
         "what it asks for")
CRASH = "a fault in the checker, not a verdict on the system: rerun with --tb=long and report it"


def address_of(target: Any) -> str:
    """Where ``target`` lives, as its environment file says (user-info taken out of URLs), or ``""``."""
    host = getattr(target, "host", None)
    if isinstance(host, str) and host and getattr(target, "where", None) is None:
        port = getattr(target, "port", None)
        return f"{host}:{port}" if port else host
    for name in ADDRESS_FIELDS:
        value = getattr(target, name, None)
        if isinstance(value, (list, tuple)) and value:
            value = ",".join(str(v) for v in value)
        if value:
            return _without_userinfo(str(value))
    return ""


def _without_userinfo(text: str) -> str:
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def remedy(exc: BaseException) -> str:
    """How to restore the checker's view after ``exc`` (never a remedy for a symptom nobody saw)."""
    text = str(exc)
    own = getattr(type(exc), "remedy", "")
    if own:
        return str(own)
    if isinstance(exc, SecretMissing):
        return SECRET
    if isinstance(exc, ProbeCrashed):
        return CRASH
    if _CREDENTIALS.search(text):
        return ACCESS
    if isinstance(exc, ProbeTimeout):
        return TIME
    if isinstance(exc, Unreachable):
        return REACH
    if isinstance(exc, UnexpectedResponse):
        return SHAPE
    return f"{REACH}; {ACCESS}"


def error_text(exc: BaseException, label: str | None, target: Any = None) -> str:
    """One line for an ``error`` outcome: the cause, the target label and address, the way back to seeing.

    The overloaded-checker and window errors already say what to do (and are about the checker or
    the samples, not the target), so they get only the label when they lack it.
    """
    line = one_line(exc)
    if not label:
        return line
    address = address_of(target) if target is not None else ""
    where = f"{label} ({address})" if address and address not in line else label
    if isinstance(exc, (CheckerOverloaded, WindowErrored)):
        return line if label in line else f"{line} — {where}"
    return f"{line} — could not see {where}: {remedy(exc)}"


def case_error_text(exc: BaseException, case: Any, session: Any) -> str:
    """:func:`error_text` for the check run ``case`` (a ``Case`` or ``None``) of ``session``."""
    if case is None:
        return one_line(exc)
    try:
        target = session.target_of(case)
    except (KeyError, LookupError, AttributeError):
        target = None
    return error_text(exc, case.id, target)
