"""Launch a Kubernetes API **emulator** (PyPI ``kmock``) for the sandbox and the self-tests.

No real API server can be had on this project's machines, so the self-tests and the sandbox talk
to kmock's ``KubernetesEmulator``: an in-memory store of JSON objects behind Kubernetes-shaped
URLs, good enough for the official ``kubernetes`` client. It is NOT Kubernetes. The GitHub
workflow ``kubernetes-kind.yml`` runs the same self-tests against a real kind cluster.

:func:`start_kubernetes` runs the emulator as its own process (``python -m
opsverify_sandbox.servers.kubernetes``) on 127.0.0.1, optionally seeded from YAML files, and
writes a kubeconfig for it (context ``opsverify-emulator``, plain HTTP, a dummy token).

Example::

    with start_kubernetes(tmp_path / "k8s", seeds=[manifests]) as k8s:
        api = kubernetes.config.new_client_from_config(str(k8s.kubeconfig), context=k8s.context)
        kubernetes.client.AppsV1Api(api).read_namespaced_deployment("web", "shop", _request_timeout=5)

Facts that bite (kmock 0.8 with kubernetes client 37, verified by
``tests/servers/test_kubernetes_launcher.py``):

* Nothing is computed. Objects are stored exactly as sent: no ``uid``, ``creationTimestamp``,
  ``generation`` or ``resourceVersion`` is filled in, no defaults, no validation, no admission
  (so no Linkerd injection), and no controller ever writes a ``status``. Tests write the status
  a controller would have written (``PATCH .../status`` is a plain merge into the object).
* Resources must be known: listing a resource that was neither declared nor has an object is a
  404 ("Resource Not Found"). The launcher declares kmock's bundled list of built-in resources (a
  k3s 1.26 cluster) and every custom resource whose CRD is seeded; creating an object of any
  resource works without a declaration.
* Label selectors are ignored: ``list_namespaced_pod(ns, label_selector="app=web")`` returns
  every pod of the namespace. Probes must filter by labels themselves (they do).
* Namespaces do not work through the API: listing or creating them (``/api/v1/namespaces``)
  answers HTTP 500 (a ``ValueError`` in kmock's URL parser), and ``GET /api/v1/namespaces/<name>``
  is parsed as a namespace prefix and 404s ("Resource Not Found") even for a seeded Namespace.
  Namespaced objects do not need their namespace to exist. Probes treat a 404 namespace as "no
  namespace-level settings".
* The official client asks ``GET /version/`` (trailing slash); kmock only answers ``/version``
  and 404s the other ("Endpoint Not Found"). This launcher's server answers ``/version/`` with a
  ``gitVersion`` ending in ``-kmock`` so nobody mistakes it for a cluster.
* The kubernetes 37 client validates a dict body into its model and serialises it again, so a
  timestamp sent as ``...Z`` reads back as ``...+00:00`` (a real API server says ``Z``). Parse both.
* The ``Accept: ...;as=PartialObjectMetadata`` header is ignored: full objects come back.
* No authentication or authorisation at all (any token works; RBAC cannot be tested here).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from opsverify_sandbox.process import ManagedProcess, ServerProcess, free_port

HOST = "127.0.0.1"
CONTEXT = "opsverify-emulator"
VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0-kmock",
    "gitCommit": "kmock-emulator",
    "gitTreeState": "clean",
    "buildDate": "1970-01-01T00:00:00Z",
    "goVersion": "n/a",
    "compiler": "kmock",
    "platform": "emulator",
}


@dataclass
class KubernetesServer(ServerProcess):
    """A running kmock Kubernetes emulator on 127.0.0.1 and a kubeconfig pointing at it."""

    process: ManagedProcess
    port: int
    workdir: Path
    kubeconfig: Path
    context: str = CONTEXT
    seeds: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def write_kubeconfig(path: Path, server: str, context: str = CONTEXT) -> Path:
    """A kubeconfig with one cluster/user/context for ``server`` (a dummy bearer token)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": "kmock-accepts-any-token"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_seed(path: Path, objects: Iterable[dict[str, Any]]) -> Path:
    """Write objects as a multi-document YAML seed file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(list(objects), sort_keys=False))
    return path


def start_kubernetes(
    workdir: Path,
    *,
    port: int | None = None,
    seeds: Sequence[Path] = (),
    timeout_s: float = 20.0,
) -> KubernetesServer:
    """Start the emulator on ``port`` (default: a free one), seeded from YAML files; wait for /version/."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [sys.executable, "-m", "opsverify_sandbox.servers.kubernetes", "--port", str(port)]
    for seed in seeds:
        argv += ["--seed", str(seed)]
    proc = ManagedProcess.start(argv, log_path=workdir / "kmock.log", name="kmock-emulator")
    server = KubernetesServer(
        process=proc,
        port=port,
        workdir=workdir,
        kubeconfig=write_kubeconfig(workdir / "kubeconfig", f"http://{HOST}:{port}"),
        seeds=list(seeds),
    )

    def ready() -> bool:
        return httpx.get(f"{server.url}/version/", timeout=1.0, trust_env=False).status_code == 200

    proc.wait_until(ready, timeout_s, f"answering GET /version/ on {HOST}:{port}")
    return server


# -- the emulator process -----------------------------------------------------------------------------


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _declare_crd(emulator: Any, crd: dict[str, Any]) -> None:
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    for version in spec.get("versions", []):
        info = emulator.resources[f"{spec['group']}/{version['name']}/{names['plural']}"]
        info.kind = names.get("kind")
        info.singular = names.get("singular") or str(names.get("kind", "")).lower()
        info.namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        info.verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
        info.subresources = {"status"}


def _plural_for(emulator: Any, obj: dict[str, Any]) -> str:
    group, version = _split_api_version(obj["apiVersion"])
    for resource in emulator.resources:
        info = emulator.resources[resource]
        if resource.group == group and resource.version == version and info.kind == obj["kind"]:
            return str(resource.plural)
    raise SystemExit(f"seed: unknown kind {obj['apiVersion']} {obj['kind']} (seed its CRD first)")


def _seed(emulator: Any, paths: Sequence[str]) -> int:
    documents: list[dict[str, Any]] = []
    for path in paths:
        documents += [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    for doc in documents:
        if doc.get("kind") == "CustomResourceDefinition":
            _declare_crd(emulator, doc)
    for doc in documents:
        group, version = _split_api_version(doc["apiVersion"])
        plural = _plural_for(emulator, doc)
        meta = doc.get("metadata", {})
        key = f"{group}/{version}/{plural}" if group else f"{version}/{plural}"
        emulator.objects[key, meta.get("namespace"), meta["name"]] = doc
    return len(documents)


async def _serve(port: int, seeds: Sequence[str]) -> None:
    import kmock

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator, host=HOST, port=port):
        emulator.resources.load_bundled()
        emulator["get /version/"] << VERSION
        count = _seed(emulator, seeds)
        print(f"kmock Kubernetes emulator on http://{HOST}:{port} ({count} seeded objects)", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="kmock Kubernetes API emulator (not a real cluster)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", action="append", default=[], help="multi-document YAML of objects")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.seed))


if __name__ == "__main__":
    main()
