"""The sandbox's Vault: a single-node OpenBao with raft storage, initialised and unsealed at start.

Port (fixed, as ``environments/local.yaml`` names it): API 18200 (raft cluster port 18201).

Everything it generates lives under ``<state>/vault/`` (mode 0600 for secrets):

* ``init.json`` - the 5 unseal key shares and the root token (threshold 3). A later ``sandbox up``
  reuses the raft data and unseals with these keys instead of initialising again.
* ``checker-token`` - the token the checks use, with the least-privilege ``opsverify-checker``
  policy below (renewable, 32 days; replaced when less than 20 days are left).
* ``app-token`` - an application token (``default`` policy) listed under ``tokens:``.
* ``audit-file.log`` - the file audit device's log.

It also mounts KV v2 at ``secret/`` with one secret ``app/db`` (written once: its age is real).
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

from opsverify.errors import SandboxError
from opsverify_sandbox.files import write_private
from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.servers.vault import VaultServer, start_vault_raft

PORT = 18200
CLUSTER_PORT = 18201
SHARES, THRESHOLD = 5, 3
TOKEN_TTL = "768h"
RENEW_BELOW_S = 20 * 86400

CHECKER_POLICY = """\
# What opsverify's Vault checks read, and nothing else.
path "auth/token/lookup-self"            { capabilities = ["read"] }
path "auth/token/lookup-accessor"        { capabilities = ["update"] }
path "sys/audit"                         { capabilities = ["read", "sudo"] }
path "sys/storage/raft/configuration"    { capabilities = ["read"] }
path "sys/storage/raft/autopilot/state"  { capabilities = ["read"] }
path "sys/leases/lookup"                 { capabilities = ["update"] }
path "sys/leases/lookup/*"               { capabilities = ["list", "sudo"] }
path "secret/metadata/*"                 { capabilities = ["read"] }
"""


def _start(workdir: Path) -> VaultServer:
    keys_file = workdir / "init.json"
    if keys_file.exists() and any((workdir / "raft").glob("*")):
        stored: dict[str, Any] = json.loads(keys_file.read_text())
        server = start_vault_raft(workdir, initialise=False, port=PORT, cluster_port=CLUSTER_PORT)
        server.root_token = stored["root_token"]
        server.unseal_keys = list(stored["keys"])
        server.shares, server.threshold = stored["shares"], stored["threshold"]
        try:
            if not server.seal_status()["initialized"]:
                raise SandboxError(f"raft data in {workdir / 'raft'} is not initialised; remove {workdir} and retry")
            server.unseal()
        except BaseException:
            server.stop()
            raise
        return server
    # Raft data without its keys cannot be unsealed by anyone: start over.
    shutil.rmtree(workdir / "raft", ignore_errors=True)
    server = start_vault_raft(
        workdir, shares=SHARES, threshold=THRESHOLD, port=PORT, cluster_port=CLUSTER_PORT
    )
    write_private(
        keys_file,
        json.dumps({"keys": server.unseal_keys, "root_token": server.root_token,
                    "shares": SHARES, "threshold": THRESHOLD}, indent=2) + "\n",
    )
    return server


def _ensure_token(server: VaultServer, path: Path, policies: list[str], name: str) -> None:
    """Keep a valid token with enough TTL in ``path``; replace (and revoke) it otherwise."""
    if path.exists():
        old = path.read_text().strip()
        looked = server.request("GET", "auth/token/lookup-self", token=old, expect=())
        if looked.status_code == 200 and looked.json()["data"].get("ttl", 0) >= RENEW_BELOW_S:
            return
        if looked.status_code == 200:
            server.request("POST", "auth/token/revoke-self", token=old, expect=())
    auth = server.create_token(ttl=TOKEN_TTL, renewable=True, policies=policies, display_name=name)
    write_private(path, auth["client_token"] + "\n")


def _provision(server: VaultServer, workdir: Path) -> None:
    if "file/" not in server.data("GET", "sys/audit"):
        server.enable_file_audit("file")
    mounts = server.request("GET", "sys/mounts").json()
    if "secret/" not in mounts.get("data", mounts):
        server.enable_kv_v2("secret")
    if server.request("GET", "secret/metadata/app/db", expect=()).status_code == 404:
        server.write_kv("app/db", {"password": secrets.token_urlsafe(18)})
    server.request("PUT", "sys/policies/acl/opsverify-checker", json={"policy": CHECKER_POLICY})
    _ensure_token(server, workdir / "checker-token", ["opsverify-checker"], "opsverify-checker")
    _ensure_token(server, workdir / "app-token", ["default"], "sandbox-app")


@service("vault", order=40)
def start_vault(directory: Path) -> Started:
    """OpenBao (Vault API) with raft storage: unsealed, audited, KV v2, checker and app tokens."""
    workdir = directory / "vault"
    server = _start(workdir)
    try:
        _provision(server, workdir)
    except BaseException:
        server.stop()
        raise
    return Started([server.process], {"api": PORT, "cluster": CLUSTER_PORT},
                   {"addr": server.addr, "mode": "raft", "shares": SHARES, "threshold": THRESHOLD})
