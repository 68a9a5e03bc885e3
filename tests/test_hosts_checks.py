"""Hosts checks through testinfra's ``local://`` backend, against real state this module creates.

A listening socket (held by this process), files with known modes, a running ``sleep`` process and
the package manager's own package are checked healthy and faulted (wrong mode/owner, no listener,
an unexpected listener, missing process, missing file, wrong version). Unreachable hosts (ssh to a
closed port, ``kubectl exec`` against a closed API port) error with one line.

Services: testinfra asks ``systemctl``/``service``, which only know the machine's own services. The
service test runs the checks inside a private mount namespace (``unshare -rm``) where
``/etc/init.d`` and ``/etc/rc5.d`` are replaced by directories holding two real SysV init scripts
this module writes (one for a process it runs, one stopped and not enabled). It is skipped where
systemd is PID 1 (testinfra then asks systemd, which cannot see those scripts) or where
unprivileged namespaces are refused.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsverify_sandbox.process import free_port
from opsverify_sandbox.servers.kubernetes import write_kubeconfig
from tests.harness import ROOT, SuiteRun, run_checks, write_env

REACH = "test_host_runs_commands"
RUNNING = "test_service_is_running"
ENABLED = "test_service_is_enabled_at_boot"
LISTENING = "test_socket_is_listening"
FILE = "test_file_matches_expectations"
PACKAGE = "test_package_is_installed_at_expected_version"
PROCESS = "test_process_is_running"


@dataclass
class HostState:
    """Real state on this machine, made by the fixture."""

    directory: Path
    listen_port: int
    closed_port: int
    sleep_args: str
    user: str
    group: str
    dpkg_version: str | None


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostState]:
    directory = tmp_path_factory.mktemp("hoststate")
    (directory / "app.conf").write_text("listen 8080\n")
    (directory / "app.conf").chmod(0o640)
    (directory / "app.key").write_text("not a real key\n")
    (directory / "app.key").chmod(0o600)
    (directory / "conf.d").mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    seconds = f"3{uuid.uuid4().int % 10**6:06d}.5"  # a unique command line to find the process by
    sleeper = subprocess.Popen(["sleep", seconds], start_new_session=True)
    version = None
    if shutil.which("dpkg-query"):
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "dpkg"], capture_output=True, text=True, timeout=10)
        version = out.stdout.strip() or None
    try:
        yield HostState(
            directory=directory,
            listen_port=listener.getsockname()[1],
            closed_port=free_port(),
            sleep_args=f"sleep {seconds}",
            user=pwd.getpwuid(os.getuid()).pw_name,
            group=grp.getgrgid(os.getgid()).gr_name,
            dpkg_version=version,
        )
    finally:
        sleeper.kill()
        sleeper.wait(5)
        listener.close()


@pytest.fixture(scope="module")
def run(state: HostState, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One run: a healthy local target, a faulty one (same host, wrong expectations), unreachable hosts."""
    tmp = tmp_path_factory.mktemp("hosts-run")
    d, s = state.directory, state
    packages: list[dict[str, Any]] = [{"name": "opsverify-no-such-package", "installed": False}]
    faulty_packages: list[dict[str, Any]] = [{"name": "opsverify-no-such-package"}]
    if s.dpkg_version:
        prefix = ".".join(s.dpkg_version.split(".")[:2])
        packages.append({"name": "dpkg", "version": prefix})
        faulty_packages.append({"name": "dpkg", "version": "0.0.1"})
    env = {"hosts": [
        {
            "name": "local",
            "host": "local://",
            "sockets": [
                {"name": f"tcp://127.0.0.1:{s.listen_port}"},
                {"name": f"tcp://127.0.0.1:{s.closed_port}", "listening": False},
            ],
            "files": [
                {"name": "conf", "path": str(d / "app.conf"), "type": "file", "mode": "0640", "owner": s.user,
                 "group": s.group},
                {"name": "key", "path": str(d / "app.key"), "mode": "600"},
                {"name": str(d / "conf.d"), "type": "directory"},
                {"name": "absent", "path": str(d / "gone.conf"), "present": False},
            ],
            "packages": packages,
            "processes": [{"name": "sleeper", "comm": "sleep", "args_contains": s.sleep_args, "max_count": 1}],
        },
        {
            "name": "local-faulty",
            "host": "local://",
            "sockets": [
                {"name": f"tcp://127.0.0.1:{s.closed_port}"},
                {"name": f"tcp://127.0.0.1:{s.listen_port}", "listening": False},
            ],
            "files": [
                {"name": "loose-key", "path": str(d / "app.key"), "mode": "0400"},
                {"name": "conf-owner", "path": str(d / "app.conf"), "owner": "opsverify-nobody", "type": "directory"},
                {"name": "missing", "path": str(d / "missing.conf")},
                {"name": "unexpected", "path": str(d / "app.conf"), "present": False},
            ],
            "packages": faulty_packages,
            "processes": [
                {"name": "ghost", "args_contains": f"opsverify-no-such-process-{uuid.uuid4().hex}"},
                {"name": "too-many", "comm": "sleep", "args_contains": s.sleep_args, "min_count": 0, "max_count": 0},
            ],
        },
        {"name": "nossh", "host": f"ssh://nobody@127.0.0.1:{s.closed_port}", "timeout_s": 5,
         "files": [{"name": "/etc/hostname"}], "processes": [{"name": "sshd"}]},
        {"name": "nopod", "timeout_s": 10,
         "host": f"kubectl://nopod?namespace=default&kubeconfig="
                 f"{write_kubeconfig(tmp / 'closed.kubeconfig', f'http://127.0.0.1:{s.closed_port}')}",
         "files": [{"name": "/etc/hostname"}]},
    ]}
    return run_checks(tmp, env, "-k", "not service", paths=["checks/test_hosts.py"])


def test_healthy_state_passes(run: SuiteRun, state: HostState) -> None:
    assert run.summary is not None, run.stdout + run.stderr
    passed = [
        (REACH, None), (LISTENING, f"tcp://127.0.0.1:{state.listen_port}"),
        (LISTENING, f"tcp://127.0.0.1:{state.closed_port}"),
        (FILE, "conf"), (FILE, "key"), (FILE, str(state.directory / "conf.d")), (FILE, "absent"),
        (PACKAGE, "opsverify-no-such-package"), (PROCESS, "sleeper"),
    ]
    if state.dpkg_version:
        passed.append((PACKAGE, "dpkg"))
    for check, item in passed:
        assert run.outcome(check, "local", item=item) == "passed", (check, item, run.message(check, "local", item=item))


def test_socket_faults_fail(run: SuiteRun, state: HostState) -> None:
    closed, listening = f"tcp://127.0.0.1:{state.closed_port}", f"tcp://127.0.0.1:{state.listen_port}"
    assert run.outcome(LISTENING, "local-faulty", item=closed) == "failed"
    assert f"expected {closed} listening, got nothing listening" in run.message(LISTENING, "local-faulty", item=closed)
    assert "[runbook hosts#socket-listening]" in run.message(LISTENING, "local-faulty", item=closed)
    assert run.outcome(LISTENING, "local-faulty", item=listening) == "failed"
    assert "not listening, got listening" in run.message(LISTENING, "local-faulty", item=listening)


def test_file_faults_fail(run: SuiteRun, state: HostState) -> None:
    d = state.directory
    assert run.outcome(FILE, "local-faulty", item="loose-key") == "failed"
    assert f"expected {d / 'app.key'} mode 0400, got mode 0600 (want 0400)" in run.message(
        FILE, "local-faulty", item="loose-key")
    message = run.message(FILE, "local-faulty", item="conf-owner")
    assert "a file (want directory)" in message and f"owner {state.user} (want opsverify-nobody)" in message
    assert run.outcome(FILE, "local-faulty", item="missing") == "failed"
    assert f"expected {d / 'missing.conf'} present, got missing" in run.message(FILE, "local-faulty", item="missing")
    assert "absent, got present (file)" in run.message(FILE, "local-faulty", item="unexpected")


def test_package_faults_fail(run: SuiteRun, state: HostState) -> None:
    assert run.outcome(PACKAGE, "local-faulty", item="opsverify-no-such-package") == "failed"
    assert "expected package opsverify-no-such-package installed, got not installed" in run.message(
        PACKAGE, "local-faulty", item="opsverify-no-such-package")
    if not state.dpkg_version:
        pytest.skip("no dpkg on this machine: the version fault needs a package manager testinfra knows")
    assert run.outcome(PACKAGE, "local-faulty", item="dpkg") == "failed"
    assert f"at version 0.0.1, got version {state.dpkg_version}" in run.message(PACKAGE, "local-faulty", item="dpkg")


def test_process_faults_fail(run: SuiteRun, state: HostState) -> None:
    assert run.outcome(PROCESS, "local-faulty", item="ghost") == "failed"
    assert "expected at least 1 processes with args containing 'opsverify-no-such-process-" in run.message(
        PROCESS, "local-faulty", item="ghost")
    assert "got 0 processes" in run.message(PROCESS, "local-faulty", item="ghost")
    message = run.message(PROCESS, "local-faulty", item="too-many")
    assert "at most 0 processes" in message and "got 1 processes (pid " in message and state.sleep_args in message


def test_unreachable_hosts_error_with_one_line(run: SuiteRun, state: HostState) -> None:
    for check, item in ((REACH, None), (FILE, "/etc/hostname"), (PROCESS, "sshd")):
        message = run.cause(check, "nossh", item=item)
        assert run.outcome(check, "nossh", item=item) == "error"
        assert message == (f"Unreachable: ssh://nobody@127.0.0.1:{state.closed_port}: ssh: connect to host 127.0.0.1 "
                           f"port {state.closed_port}: Connection refused (exit 255)")
    message = run.message(FILE, "nopod", item="/etc/hostname")
    assert run.outcome(FILE, "nopod", item="/etc/hostname") == "error"
    assert message.startswith("Unreachable: kubectl://nopod?namespace=default") and "\n" not in message
    assert "Traceback" not in run.stdout


# -- services, in a private mount namespace -------------------------------------------------------------
INIT_SCRIPT = """#!/bin/sh
# opsverify self-test service: "running" while the process in {pidfile} lives (LSB status codes)
case "$1" in
  status) kill -0 "$(cat {pidfile} 2>/dev/null)" 2>/dev/null && exit 0; exit 3 ;;
  *) exit 0 ;;
esac
"""


def _run_in_mount_namespace(tmp: Path, env: dict[str, Any], binds: dict[str, Path], *args: str) -> SuiteRun:
    """Like :func:`tests.harness.run_checks`, inside ``unshare -rm`` with ``binds`` mounted over system paths."""
    reports = tmp / "reports"
    mounts = " && ".join(f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}" for dst, src in binds.items())
    argv = ["unshare", "-rm", "sh", "-c", f'{mounts} && exec "$@"', "sh",
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={ROOT}",
            f"-c={ROOT / 'pyproject.toml'}", f"--reports-dir={reports}", f"--env-file={write_env(tmp, env)}",
            "checks/test_hosts.py", *args]
    full_env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    proc = subprocess.run(argv, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=180, check=False)
    return SuiteRun.of(proc, reports)


def test_services_running_and_enabled(tmp_path: Path) -> None:
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd is PID 1 here: testinfra asks systemd, which cannot see this test's SysV scripts")
    if not shutil.which("service") or not shutil.which("unshare"):
        pytest.skip("needs the `service` command and `unshare`")
    init_d, rc5_d = tmp_path / "init.d", tmp_path / "rc5.d"
    init_d.mkdir()
    rc5_d.mkdir()
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        (tmp_path / "up.pid").write_text(str(sleeper.pid))
        (tmp_path / "down.pid").write_text("999999999")
        for name, pidfile in (("ovselftest-up", tmp_path / "up.pid"), ("ovselftest-down", tmp_path / "down.pid")):
            script = init_d / name
            script.write_text(INIT_SCRIPT.format(pidfile=shlex.quote(str(pidfile))))
            script.chmod(0o755)
        (rc5_d / "S01ovselftest-up").symlink_to("../init.d/ovselftest-up")  # enabled; "down" is not
        probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, text=True, timeout=10)
        if probe.returncode != 0:
            pytest.skip(f"unprivileged mount namespaces refused here: {probe.stderr.strip()}")
        env = {"hosts": [
            {"name": "svc", "host": "local://", "services": [
                {"name": "ovselftest-up"}, {"name": "ovselftest-down"}, {"name": "ovselftest-none", "enabled": None}]},
            {"name": "svc-stopped", "host": "local://", "services": [
                {"name": "ovselftest-down", "running": False, "enabled": False}]},
        ]}
        run = _run_in_mount_namespace(tmp_path, env, {"/etc/init.d": init_d, "/etc/rc5.d": rc5_d}, "-k", "service")
    finally:
        sleeper.kill()
        sleeper.wait(5)
    assert run.summary is not None, run.stdout + run.stderr
    for check in (RUNNING, ENABLED):
        assert run.outcome(check, "svc", item="ovselftest-up") == "passed", run.message(check, "svc", item="ovselftest-up")
        assert run.outcome(check, "svc-stopped", item="ovselftest-down") == "passed"
        assert run.outcome(check, "svc", item="ovselftest-down") == "failed"
    assert "expected service ovselftest-down running, got not running" in run.message(RUNNING, "svc", item="ovselftest-down")
    assert "[runbook hosts#service-running]" in run.message(RUNNING, "svc", item="ovselftest-down")
    assert "expected service ovselftest-down enabled at boot, got not enabled" in run.message(
        ENABLED, "svc", item="ovselftest-down")
    assert run.outcome(RUNNING, "svc", item="ovselftest-none") == "failed"
    # enabled: null -> that aspect is not checked at all
    assert not [r for r in run.records if r["check"] == ENABLED and r["item"] == "ovselftest-none"]


def test_bad_host_entries_are_usage_errors(run_suite: Any) -> None:
    bad = run_suite({"hosts": [{"name": "h", "host": "local://", "files": [{"name": "/etc/x", "mode": 420}]}]})
    assert bad.ret == 4
    assert 'hosts[0].files[0].mode (target \'/etc/x\'): mode must be a quoted octal string like "0640" (got 420)' in (
        bad.stderr + bad.stdout)
    bad = run_suite({"hosts": [{"name": "h", "host": "web-1.example.test"}]})
    assert bad.ret == 4 and "hosts[0].host (target 'h'): a testinfra host spec like local://" in bad.stderr + bad.stdout
