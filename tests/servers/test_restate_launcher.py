"""Self-test of the Restate launcher: restate-server only ever runs under ``unshare -rn``.

Proves: the server sits in its own network namespace with nothing but a loopback and no route;
the host reaches admin and ingress through the 127.0.0.1 proxy; the demo service is registered and
answers through the ingress; the bearer-token proxy rejects missing/wrong tokens and supports a
rotation overlap; extra proxies (no token, any token, a token list, absent sockets -> 502) behave as
the check self-tests need; ``stop()`` leaves no process behind (server, demo service, proxy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opsverify_sandbox.servers.restate import (
    RestateServer,
    pids_in_netns,
    pids_with_arg,
    start_proxy,
    start_restate,
)
from opsverify_sandbox.servers.restate_demo_service import greeting_for

TOKEN = "initial-token-for-tests"
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def restate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestateServer]:
    with start_restate(tmp_path_factory.mktemp("restate"), auth_token=TOKEN) as server:
        yield server


def _get(url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(url, headers=headers, timeout=TIMEOUT_S)


def _in_namespace(server: RestateServer, *argv: str) -> str:
    """Run ``argv`` inside the server's namespace (never restate-server itself)."""
    pid = str(server.process.pid)
    cmd = ["nsenter", "--target", pid, "--user", "--net", "--preserve-credentials", *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
    return done.stdout


def _pids_with_cwd(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == directory:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_server_runs_in_its_own_network_namespace(restate: RestateServer) -> None:
    assert restate.netns != os.readlink("/proc/self/ns/net")
    assert Path(os.readlink(f"/proc/{restate.process.pid}/exe")).name == "restate-server"


def test_namespace_has_only_loopback(restate: RestateServer) -> None:
    lines = _in_namespace(restate, "ip", "-o", "link").splitlines()
    links = [line.split(":")[1].strip() for line in lines]
    assert links == ["lo"]


def test_namespace_has_no_route_out(restate: RestateServer) -> None:
    assert _in_namespace(restate, "ip", "route", "show").strip() == ""


def test_admin_health_is_200_with_empty_body(restate: RestateServer) -> None:
    response = _get(f"{restate.admin_url}/health", TOKEN)
    assert (response.status_code, response.content) == (200, b"")


def test_admin_version_is_1_7(restate: RestateServer) -> None:
    version = _get(f"{restate.admin_url}/version", TOKEN).json()
    assert version["version"].startswith("1.7.")


def test_version_advertises_the_host_ingress_url(restate: RestateServer) -> None:
    version = _get(f"{restate.admin_url}/version", TOKEN).json()
    assert version["ingress_endpoint"] == f"{restate.ingress_url}/"


def test_demo_deployment_is_registered(restate: RestateServer) -> None:
    deployments = _get(f"{restate.admin_url}/deployments", TOKEN).json()["deployments"]
    assert [(d["id"], d["uri"]) for d in deployments] == [(restate.deployment_id, restate.demo_uri)]


def test_greeter_service_is_listed(restate: RestateServer) -> None:
    services = _get(f"{restate.admin_url}/services", TOKEN).json()["services"]
    listed = [(s["name"], [h["name"] for h in s["handlers"]]) for s in services]
    assert listed == [("Greeter", ["greet"])]


def test_ingress_health_lists_greeter(restate: RestateServer) -> None:
    response = _get(f"{restate.ingress_url}/restate/health", TOKEN)
    assert response.json() == {"services": ["Greeter"]}


def test_greet_through_ingress_returns_greeting(restate: RestateServer) -> None:
    response = httpx.post(
        f"{restate.ingress_url}/Greeter/greet",
        json="Ada",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=TIMEOUT_S,
    )
    assert (response.status_code, response.json()) == (200, greeting_for("Ada"))


@pytest.mark.parametrize("port_name", ["admin_url", "ingress_url"])
@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["no-token", "wrong-token"])
def test_proxy_rejects_missing_or_wrong_token(
    restate: RestateServer, port_name: str, token: str | None
) -> None:
    path = "/health" if port_name == "admin_url" else "/restate/health"
    response = _get(f"{getattr(restate, port_name)}{path}", token)
    challenge = response.headers.get("www-authenticate", "")
    assert (response.status_code, challenge[:6]) == (401, "Bearer")


def test_token_rotation_overlap_then_cutover(restate: RestateServer) -> None:
    url = f"{restate.admin_url}/health"
    try:
        restate.set_token("rotated-token", keep_old=True)
        overlap = (_get(url, TOKEN).status_code, _get(url, "rotated-token").status_code)
        restate.set_token("rotated-token")
        cutover = (_get(url, TOKEN).status_code, _get(url, "rotated-token").status_code)
    finally:
        restate.set_token(TOKEN)
    assert (overlap, cutover) == ((200, 200), (401, 200))


def test_rss_is_modest(restate: RestateServer) -> None:
    # the start-up time is printed, never asserted: the machine is shared
    rss_mb = restate.rss_bytes() / 2**20
    print(f"restate startup {restate.startup_s:.2f} s, RSS {rss_mb:.0f} MiB")
    assert 0 < rss_mb < 512


def test_extra_proxy_without_token_forwards_everything(restate: RestateServer, tmp_path: Path) -> None:
    with start_proxy(tmp_path, admin_socket=restate.admin_socket, ingress_socket=restate.ingress_socket) as proxy:
        statuses = (_get(f"{proxy.admin_url}/health").status_code,
                    _get(f"{proxy.ingress_url}/restate/health", "anything").status_code)
    assert statuses == (200, 200)


def test_extra_proxy_accepting_any_token_still_wants_one(restate: RestateServer, tmp_path: Path) -> None:
    with start_proxy(tmp_path, admin_socket=restate.admin_socket, ingress_socket=restate.ingress_socket,
                     auth_token=TOKEN, accept_any_token=True) as proxy:
        url = f"{proxy.admin_url}/version"
        statuses = (_get(url).status_code, _get(url, "made-up").status_code, _get(url, TOKEN).status_code)
    assert statuses == (401, 200, 200)


def test_extra_proxy_set_tokens_replaces_the_accepted_list(restate: RestateServer, tmp_path: Path) -> None:
    with start_proxy(tmp_path, admin_socket=restate.admin_socket, ingress_socket=restate.ingress_socket,
                     auth_token=TOKEN) as proxy:
        url = f"{proxy.ingress_url}/restate/health"
        proxy.set_tokens("old-one", "new-one")
        both = (_get(url, "old-one").status_code, _get(url, "new-one").status_code, _get(url, TOKEN).status_code)
    assert both == (200, 200, 401)


def test_proxy_in_front_of_absent_sockets_answers_502(tmp_path: Path) -> None:
    with start_proxy(tmp_path, admin_socket=tmp_path / "admin.sock", ingress_socket=tmp_path / "ingress.sock") as proxy:
        response = _get(f"{proxy.admin_url}/health")
    assert response.status_code == 502
    assert response.json()["message"].startswith("restate admin unreachable: ")


def test_replaced_demo_serves_another_service_behind_the_registered_uri(tmp_path: Path) -> None:
    with start_restate(tmp_path / "restate", auth_token=None) as server:
        server.replace_demo("Billing")
        discovered = server.admin("POST", "/deployments", expect=(200,),
                                  json_body={"uri": server.demo_uri, "dry_run": True, "force": True})
        registered = [s["name"] for s in server.admin("GET", "/services")["services"]]
    assert ([s["name"] for s in discovered["services"]], registered) == (["Billing"], ["Greeter"])


def test_restart_in_the_same_workdir_waits_for_the_new_demo_service(tmp_path: Path) -> None:
    # demo.log is appended to: the first start's "Running on" line must not count for the second
    start_restate(tmp_path / "restate", auth_token=None).stop()
    shutil.rmtree(tmp_path / "restate" / "restate-data", ignore_errors=True)  # as the sandbox does
    with start_restate(tmp_path / "restate", auth_token=None) as again:
        greeting = again.call("Greeter", "greet", "Eve")
    banners = (tmp_path / "restate" / "demo.log").read_text().count("Running on")
    assert (greeting, banners) == (greeting_for("Eve"), 2)


def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    server = start_restate(tmp_path / "restate", auth_token=None)
    workdir, netns, config = server.workdir, server.netns, str(server.config_path)
    pids = [server.process.pid, server.proxy.pid, server.demo.pid if server.demo else 0]
    try:
        open_access = _get(f"{server.admin_url}/health").status_code
        greeting = server.call("Greeter", "greet", "Bob")
        in_namespace_before = sorted(pids_in_netns(netns))
    finally:
        server.stop()
    leftovers = {
        "netns": pids_in_netns(netns),
        "config": pids_with_arg(config),
        "cwd": _pids_with_cwd(workdir),
        "started": [pid for pid in pids if pid and os.path.exists(f"/proc/{pid}/stat")],
        "sockets": sorted(p.name for p in (workdir / "restate-data").rglob("*.sock")),
    }
    assert (open_access, greeting, len(in_namespace_before)) == (200, greeting_for("Bob"), 2)
    assert leftovers == {"netns": [], "config": [], "cwd": [], "started": [], "sockets": []}
