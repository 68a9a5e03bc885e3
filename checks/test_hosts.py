"""Hosts are configured as the runbooks expect: services, listening sockets, files, packages, processes."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.smoke, pytest.mark.predeploy]


@pytest.mark.runbook("hosts#reachable")
@pytest.mark.severity("critical")
def test_host_runs_commands(host_connection, target, expect):
    expect.fact("hostname", host_connection.hostname)
    expect.that(
        host_connection.failure is None and bool(host_connection.hostname),
        expected=f"{host_connection.spec} to answer `uname -n`",
        actual=f"the command failed there ({host_connection.failure})" if host_connection.failure else "an empty answer",
        action="the host was reached but does not run commands: check the login shell, PATH and permissions of "
               "the account the checker uses there (or the container image, for kubectl/docker hosts)",
    )


@pytest.mark.each("services")
@pytest.mark.configured("running")
@pytest.mark.runbook("hosts#service-running")
@pytest.mark.severity("critical")
def test_service_is_running(host_service, target_item, expect):
    want = "running" if target_item.running else "stopped"
    seen = "running" if host_service.running else "not running"
    expect.that(
        host_service.running == target_item.running,
        expected=f"service {target_item.name} {want}",
        actual=f"{seen} ({host_service.implementation})",
    )


@pytest.mark.each("services")
@pytest.mark.configured("enabled")
@pytest.mark.runbook("hosts#service-enabled")
def test_service_is_enabled_at_boot(host_service, target_item, expect):
    want = "enabled" if target_item.enabled else "disabled"
    seen = "enabled" if host_service.enabled else "not enabled"
    expect.that(
        host_service.enabled == target_item.enabled,
        expected=f"service {target_item.name} {want} at boot",
        actual=f"{seen} ({host_service.implementation})",
    )


@pytest.mark.each("sockets")
@pytest.mark.runbook("hosts#socket-listening")
@pytest.mark.severity("critical")
def test_socket_is_listening(host_socket, target_item, expect):
    want = "listening" if target_item.listening else "not listening"
    expect.that(
        host_socket.listening == target_item.listening,
        expected=f"{target_item.name} {want}",
        actual="listening" if host_socket.listening else "nothing listening",
    )


@pytest.mark.each("files")
@pytest.mark.runbook("hosts#file")
def test_file_matches_expectations(host_file, target_item, expect):
    f, want = host_file, target_item
    if not want.present:
        expect.that(not f.exists, expected=f"{f.path} absent", actual=f"present ({f.kind})")
        return
    expect.that(f.exists, expected=f"{f.path} present", actual="missing")
    problems = []
    if want.type and f.kind != want.type:
        problems.append(f"a {f.kind} (want {want.type})")
    if want.mode_bits is not None and f.mode != want.mode_bits:
        problems.append(f"mode {f.mode_text} (want {want.mode_bits:04o})")
    if want.owner and f.owner != want.owner:
        problems.append(f"owner {f.owner} (want {want.owner})")
    if want.group and f.group != want.group:
        problems.append(f"group {f.group} (want {want.group})")
    declared = ", ".join(
        part for part in (
            want.type, want.mode and f"mode {want.mode_bits:04o}", want.owner and f"owner {want.owner}",
            want.group and f"group {want.group}",
        ) if part
    )
    expect.that(not problems, expected=f"{f.path} " + (declared or "present"), actual="; ".join(problems))


@pytest.mark.each("packages")
@pytest.mark.runbook("hosts#package")
def test_package_is_installed_at_expected_version(host_package, target_item, expect):
    p, want = host_package, target_item
    if not want.installed:
        expect.that(not p.installed, expected=f"package {p.name} not installed", actual=f"installed ({p.version})")
        return
    expect.that(p.installed, expected=f"package {p.name} installed", actual="not installed")
    if want.version:
        expect.fact("version", p.version)
        expect.that(
            p.version_matches(want.version),
            expected=f"package {p.name} at version {want.version}",
            actual=f"version {p.version}",
        )


@pytest.mark.each("processes")
@pytest.mark.runbook("hosts#process")
def test_process_is_running(host_processes, target_item, expect):
    want = target_item
    how = ", ".join(
        f"{k} {v!r}" for k, v in (("comm", want.match_comm), ("args containing", want.args_contains), ("user", want.user))
        if v
    )
    bounds = f"at least {want.min_count}" + (f" and at most {want.max_count}" if want.max_count is not None else "")
    ok = host_processes.count >= want.min_count and (want.max_count is None or host_processes.count <= want.max_count)
    seen = f"{host_processes.count} processes" + (f" ({'; '.join(host_processes.samples)})" if host_processes.samples else "")
    expect.that(ok, expected=f"{bounds} processes with {how}", actual=seen)
