"""A streaming replica of a running sandbox PostgreSQL, made with ``pg_basebackup -R``.

``pg_basebackup -R -X stream`` copies the primary's data directory over the replication protocol
(as the ``postgres`` superuser, whose generated password the primary's handle holds; with
``--checkpoint=fast``: the default spread checkpoint makes it wait minutes on an idle server) and writes
``standby.signal`` and ``primary_conninfo``; the copy then starts as a hot standby on its own port
and follows the primary. The primary's ``pg_hba.conf`` from initdb already allows replication
connections from 127.0.0.1 and its defaults (``wal_level=replica``, ``max_wal_senders=10``) suffice.

Example::

    with start_postgres(tmp / "primary") as primary:
        replica = start_replica(primary, tmp / "replica")
        replica.dsn                     # the same login role, read-only, on replica.port
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.postgres import (
    HOST,
    SUPERUSER,
    PostgresServer,
    _prepare_run_dir,
    _run_as,
    _socket_dir,
    _superuser_answers,
    server_os_user,
)


def start_replica(primary: PostgresServer, workdir: Path, *, timeout_s: float = 60.0) -> PostgresServer:
    """A hot standby of ``primary`` on a free port, streaming from it (stop it before the primary)."""
    workdir.mkdir(parents=True, exist_ok=True)
    account = server_os_user()
    run_dir, owned = _prepare_run_dir(workdir, account)
    bin_dir = primary.bin_dir
    try:
        password_file = run_dir / "pgpass"
        password_file.write_text(f"{HOST}:{primary.port}:*:{SUPERUSER}:{primary.superuser_password}\n")
        password_file.chmod(0o600)
        account.chown(password_file)
        argv = [
            "env", f"PGPASSFILE={password_file}",
            str(bin_dir / "pg_basebackup"),
            "-h", HOST, "-p", str(primary.port), "-U", SUPERUSER,
            "-D", str(run_dir / "data"), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
        ]  # fmt: skip
        _run_as(account, argv, run_dir, timeout_s=timeout_s)
        port = free_port()
        sock_dir = _socket_dir(run_dir, port)
        account.chown(sock_dir)
        argv = [
            str(bin_dir / "postgres"),
            "-D", str(run_dir / "data"),
            "-h", HOST, "-p", str(port), "-k", str(sock_dir),
            "-c", "fsync=off", "-c", "shared_buffers=32MB", "-c", "hot_standby=on",
        ]  # fmt: skip
        proc = ManagedProcess.start(
            account.wrap(argv), log_path=workdir / "postgres.log", name="postgres-replica",
            cwd=run_dir, env={"LC_ALL": "C"}, preexec=account.preexec(),
        )
    except BaseException:
        if owned:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    server = replace(
        primary, process=proc, port=port, workdir=workdir, run_dir=run_dir, owns_run_dir=owned,
        sock_dir=sock_dir if sock_dir != run_dir / "sock" else None,
    )
    try:
        proc.wait_until(lambda: _superuser_answers(server), timeout_s, "accepting logins as a standby")
    except BaseException:
        server.stop()
        raise
    return server
