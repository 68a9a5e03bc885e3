"""The sandbox's Kubernetes API: kmock's **emulator** (not a cluster) seeded with a healthy platform.

Port (fixed, as ``environments/local.yaml`` names it): 16443 (plain HTTP, any token).

No real API server can run on these machines, so ``opsverify sandbox up`` starts the kmock
Kubernetes emulator (:mod:`opsverify_sandbox.servers.kubernetes`) as its own process, seeded with
what a healthy cluster would report: namespace ``shop`` with a meshed Deployment ``web`` (2/2
ready, pods with ``linkerd-proxy``), a StatefulSet, a DaemonSet, a Ready cert-manager Certificate
valid 90 days, a Linkerd identity issuer Secret (a certificate made at start, valid 365 days), a
Secret rotated at start, an HPA inside its bounds and the cert-manager CRD. Nothing in it changes on
its own: it shows the checks and their output end to end, it proves nothing about a real cluster.

Everything it writes lives under ``<state>/kubernetes/``: ``kubeconfig``, ``seed.yaml``, the log.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.pki import CertificateAuthority
from opsverify_sandbox.servers.kubernetes import start_kubernetes, write_seed

PORT = 16443
NS = "shop"
PAUSE = "registry.k8s.io/pause:3.9"


def _time(now: datetime, **delta: float) -> str:
    return (now + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _workload(kind: str, name: str, replicas: int | None, containers: list[str],
              annotations: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
            "spec": {"containers": [{"name": c, "image": PAUSE} for c in containers]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": NS, "generation": 1},
            "spec": spec}


def _pod(now: datetime, name: str, app: str, containers: list[str]) -> dict[str, Any]:
    started = {"running": {"startedAt": _time(now, minutes=-1)}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
        "spec": {"containers": [{"name": c, "image": PAUSE} for c in containers]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": c, "image": PAUSE, "imageID": "", "ready": True, "restartCount": 0, "state": started}
            for c in containers]},
    }


def healthy_platform(now: datetime, issuer_pem: bytes) -> list[dict[str, Any]]:
    """The objects (with the statuses controllers would write) of a healthy sandbox platform."""
    ready = {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
    web = _workload("Deployment", "web", 2, ["app", "linkerd-proxy"], {"linkerd.io/inject": "enabled"})
    web["status"] = ready
    store = _workload("StatefulSet", "store", 1, ["app"])
    store["status"] = {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "currentReplicas": 1,
                       "updatedReplicas": 1}
    agent = _workload("DaemonSet", "agent", None, ["app"])
    agent["status"] = {"observedGeneration": 1, "desiredNumberScheduled": 1, "currentNumberScheduled": 1,
                       "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1, "numberMisscheduled": 0}
    return [
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
         "metadata": {"name": "certificates.cert-manager.io"},
         "spec": {"group": "cert-manager.io", "scope": "Namespaced",
                  "names": {"plural": "certificates", "singular": "certificate", "kind": "Certificate"},
                  "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}}]}},
        web, store, agent,
        _pod(now, "web-6c5d7-a1b2c", "web", ["app", "linkerd-proxy"]),
        _pod(now, "web-6c5d7-d3e4f", "web", ["app", "linkerd-proxy"]),
        _pod(now, "store-0", "store", ["app"]),
        _pod(now, "agent-g5h6i", "agent", ["app"]),
        {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
         "metadata": {"name": "web-tls", "namespace": NS},
         "spec": {"secretName": "web-tls", "dnsNames": ["web.shop.example.test"],
                  "issuerRef": {"name": "sandbox", "kind": "Issuer"}},
         "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
                    "notAfter": _time(now, days=90), "renewalTime": _time(now, days=60)}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "linkerd-identity-issuer", "namespace": "linkerd", "creationTimestamp": _time(now)},
         "data": {"crt.pem": base64.b64encode(issuer_pem).decode()}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "api-token", "namespace": NS, "creationTimestamp": _time(now, days=-30),
                      "annotations": {"opsverify.io/rotated-at": _time(now)}},
         "data": {"token": base64.b64encode(b"sandbox-placeholder").decode()}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "web", "namespace": NS, "creationTimestamp": _time(now, days=-1)},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                  "minReplicas": 2, "maxReplicas": 6},
         "status": {"currentReplicas": 2, "desiredReplicas": 2, "lastScaleTime": _time(now, hours=-3)}},
    ]


@service("kubernetes", order=60)
def start_kubernetes_emulator(directory: Path) -> Started:
    """Kubernetes API emulator (kmock) seeded with a healthy platform, on 16443."""
    workdir = directory / "kubernetes"
    now = datetime.now(UTC)
    issuer = CertificateAuthority.create("identity.linkerd.cluster.local", days=365)
    pem = issuer.cert.public_bytes(serialization.Encoding.PEM)  # the issuer's key is not kept
    seed = write_seed(workdir / "seed.yaml", healthy_platform(now, pem))
    server = start_kubernetes(workdir, port=PORT, seeds=[seed])
    return Started([server.process], {"api": PORT}, {"kubeconfig": str(server.kubeconfig), "emulator": "kmock"})
