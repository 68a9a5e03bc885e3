"""Every exception opsverify raises, in one place.

Hierarchy::

    OpsverifyError                 base; str() is a one-line, secret-free cause
    ├── ConfigError                an environment / policy / runbook file is wrong  → usage error (exit 4)
    ├── YamlRejected               inside the YAML loader, before the file name is known → a ConfigError
    ├── JsonPathError (also LookupError)  a JSON path is not valid syntax, or not in the document
    ├── SandboxError               a local sandbox service could not be started or stopped
    ├── HistoryError               the run history file cannot be opened, read or written
    ├── ReportWriteError           a report (the status page) cannot be written where it was asked
    ├── CouldNotVerify             the check could not see the system              → outcome "error"
    │   ├── Unreachable            refused, reset, DNS failure, no route, TLS handshake failure
    │   │   └── ClientCertRefused  the server's TLS alert refused the checker's own client certificate
    │   ├── ProbeTimeout           no answer within the probe's timeout
    │   ├── CheckerOverloaded      the checker itself was too busy to take a reading it can vouch for
    │   ├── SecretMissing          a secret reference points at nothing
    │   ├── ClientCertUnusable     the checker's own client certificate / key cannot be loaded
    │   ├── UnexpectedResponse     the system answered, but not in a shape we can read
    │   ├── ProbeCrashed           a probe raised something we did not expect (a bug or an odd library)
    │   ├── UnsafeSend             the checker refused to send what the environment's safety classes forbid
    │   ├── WindowErrored          an analysis window's samples errored too often in a row (or all of them)
    │   ├── LoginFailed            the synthetic client could not log in (auth probes)
    │   ├── RevocationUntestable   a precondition of the token revocation test does not hold
    │   ├── BrokerDenied           the Pact broker refused the checker's credentials
    │   ├── VersionUnknown         the version to ask the Pact broker about is not known
    │   ├── BucketMissing          the object storage bucket does not exist
    │   ├── StorageDenied          the object storage refused the checker's credentials
    │   ├── PostgresLoginRejected  PostgreSQL refused the target's login
    │   ├── RedisAuthRejected      Redis refused the target's credentials
    │   ├── VaultSealed            the Vault / OpenBao server is sealed or not initialised
    │   ├── VaultDenied            the Vault / OpenBao server refused the checker's token on a path
    │   ├── NatsAuthRejected       NATS refused the credential (inside the NATS probes: data or Unreachable)
    │   ├── NatsPublishDenied      NATS refused a request's publish or reply inbox (inside the NATS probes)
    │   └── ExtraMissing           the client library of the system is not installed: names the extra
    └── CheckFailed (also AssertionError)  the system is NOT as expected         → outcome "failed"

System-specific kinds of :class:`CouldNotVerify` live here too (their probes raise them), so that
every exception class of the library is in this module.

Library exceptions are translated at the boundary (``raise Unreachable(...) from exc``), so that
checks and reports only ever see these types.
"""

from __future__ import annotations

from typing import Any


class OpsverifyError(Exception):
    """Base of all opsverify errors. ``str(err)`` is one line, free of secrets."""


class ConfigError(OpsverifyError):
    """A file the user wrote is wrong: names the file, the key path and the problem."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        text = f"{where}: {problem}"
        super().__init__(text.replace("\r", "\\r").replace("\n", "\\n"))  # one line, whatever the file held


class YamlRejected(OpsverifyError):
    """Raised inside the YAML loader; becomes a ConfigError once the file name is known."""

    def __init__(self, key: str, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem
        self.mark = mark


class JsonPathError(LookupError, OpsverifyError):
    """The path does not exist in the document, or is not valid syntax."""


class SandboxError(OpsverifyError):
    """A local sandbox / self-test service could not be started, reached or stopped."""


class HistoryError(OpsverifyError):
    """The SQLite run history (``--history``) cannot be opened, read or written."""


class ReportWriteError(OpsverifyError):
    """A report file (the status page) cannot be written to the directory it was asked for."""


class CouldNotVerify(OpsverifyError):
    """The check could not observe the system; its outcome is ``error``, not ``failed``.

    ``where`` is the address the checker could not see (``10.0.4.12:8200``, a URL), ``phase`` what it
    was doing then (``connecting to 10.0.4.12:8200``, ``INFO replication``); both ``None`` when not
    known. The probe engine fills in those a probe left out from the probe's target and its
    ``ctx.phase``; ``summary.json`` carries them in the record's ``error``. ``remedy`` (a class
    attribute) says how to let the checker see again when the kind of error alone says it
    (:mod:`opsverify.visibility` words the others from the class and the cause).

    Example::

        raise Unreachable("cannot connect to 10.0.4.12:8200: connection refused",
                          where="10.0.4.12:8200", phase="connecting")
    """

    remedy: str = ""

    def __init__(self, *args: object, where: str | None = None, phase: str | None = None) -> None:
        super().__init__(*args)
        self.where = where
        self.phase = phase

    def fields(self) -> dict[str, str | None]:
        """The structured part of the error, as ``summary.json`` writes it: type, where, phase."""
        return {"type": type(self).__name__, "where": self.where, "phase": self.phase}


class Unreachable(CouldNotVerify):
    """Connection refused or reset, DNS failure, no route, TLS handshake failure."""


class ClientCertRefused(Unreachable):
    """The server refused the checker's own client certificate (its TLS alert names why)."""

    remedy = ("check the checker's own client certificate and key (client_cert, client_key): that one is "
              "presented, that it has not expired, and that it was issued by a CA the server trusts for clients")


class ProbeTimeout(CouldNotVerify):
    """The system did not answer within the probe's timeout."""


class CheckerOverloaded(CouldNotVerify):
    """The checker's own event loop lagged so much that it could not take a reading it trusts.

    Never a verdict on the service: the message says how late the loop ran and how to give the
    checker room (fewer probes at once, a less busy machine).
    """


class SecretMissing(CouldNotVerify):
    """A secret reference (environment variable or file) does not resolve."""


class ClientCertUnusable(CouldNotVerify):
    """The checker's own mutual-TLS client certificate or key cannot be loaded (missing, not PEM, not a pair)."""


class UnexpectedResponse(CouldNotVerify):
    """The system answered in a shape the probe cannot interpret."""


class ProbeCrashed(CouldNotVerify):
    """A probe raised an exception opsverify did not translate: reported as an error, one line."""


class UnsafeSend(CouldNotVerify):
    """A probe was about to send something its environment does not allow (a non-GET request, a
    publish, a delivery, a burst): nothing was sent, the check errors with what it would have sent."""

    remedy = ("nothing was sent and the service was not looked at; the check was let run because its probe "
              "declared less than it sends (a bug in opsverify: report it); allow the class only where such "
              "sends are wanted")


class WindowErrored(CouldNotVerify):
    """An analysis window (``--samples``) saw its consecutive-error limit reached, or no sample saw the
    system at all: nothing can be said about it over the window."""


# -- kinds of CouldNotVerify of one system (raised by its probes) -----------------------------------


class LoginFailed(CouldNotVerify):
    """The synthetic client could not log in, so nothing behind the login can be verified."""

    remedy = ("check the synthetic client's credentials and that its account is enabled: the login "
              "check of this target says what the login endpoint answered")


class RevocationUntestable(CouldNotVerify):
    """A precondition of the revocation test failed (fresh token refused, admin token refused)."""

    remedy = "check the credentials the revocation test logs in and revokes with (client and admin)"


class BrokerDenied(CouldNotVerify):
    """The broker refused the checker's credentials (401/403): nothing behind them can be read."""


class VersionUnknown(CouldNotVerify):
    """The version to ask about is not known (its environment variable is not set)."""


class BucketMissing(CouldNotVerify):
    """The bucket does not exist: its configuration and objects cannot be read."""


class StorageDenied(CouldNotVerify):
    """The checker's credentials were refused for a call a check needs."""


class PostgresLoginRejected(CouldNotVerify):
    """The server refused the target's login, so a probe that reads tables could not look."""

    remedy = ("check the checker's database user, password reference and pg_hba rule for this address "
              "(the login check of this target says what the server answered)")


class RedisAuthRejected(CouldNotVerify):
    """The server refused the target's credentials, so a probe that reads data could not look."""


class VaultSealed(CouldNotVerify):
    """The server is sealed or not initialised: nothing behind the seal can be read."""

    remedy = "nothing behind the seal can be read: its seal and initialisation checks say what was seen and what to do"


class VaultDenied(CouldNotVerify):
    """The checker's token was refused on a path a check needs (a policy gap, or the token is dead)."""

    remedy = ("give the checker's token a live lease and a policy that may read the path named "
              "(vault token lookup; vault token capabilities PATH)")


class NatsAuthRejected(CouldNotVerify):
    """The NATS server refused the credential. Internal to the NATS probes: the connect probe turns it
    into data (the credential is refused), the others into :class:`Unreachable`."""


class NatsPublishDenied(CouldNotVerify):
    """The NATS server refused a request's publish (or its reply inbox) while we waited. Internal to the
    NATS probes, which turn it into the round trip's problem."""


class ExtraMissing(CouldNotVerify, ImportError):
    """A client library a probe imports is not installed; the message names the extra that installs it
    (``pip install 'opsverify[kafka]'``). Also an ``ImportError``, for code that expects one."""


class CheckFailed(AssertionError, OpsverifyError):
    """The system is not as the runbook expects: target, expected, actual and action.

    ``message`` is the one line people read (``staging-vault: expected unsealed, got sealed — Unseal
    ... [runbook vault#sealed]``); ``target`` (the target label), ``expected``, ``actual`` and ``step``
    (the runbook step id) are its parts, for machines: ``summary.json`` carries them in the record's
    ``failure``. A part not known to whoever raised it is ``None``.

    Example::

        raise CheckFailed("staging-vault: expected unsealed, got sealed", target="staging-vault",
                          expected="unsealed", actual="sealed")
    """

    def __init__(self, message: str, *, expected: str | None = None, actual: str | None = None,
                 target: str | None = None, step: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.actual = actual
        self.target = target
        self.step = step

    def fields(self) -> dict[str, str | None]:
        """The structured part of the failure, as ``summary.json`` writes it."""
        return {"target": self.target, "expected": self.expected, "actual": self.actual, "step": self.step}


def one_line(exc: BaseException) -> str:
    """A single-line description of any exception, for ``error`` outcomes."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
