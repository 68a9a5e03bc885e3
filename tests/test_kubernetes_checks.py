"""Kubernetes checks against a Kubernetes API: healthy objects pass, each fault fails, no API errors.

By default the API is the kmock **emulator** (:mod:`opsverify_sandbox.servers.kubernetes`), NOT a
real cluster: it stores JSON objects and runs no controllers, so this module writes the pods and
statuses that Kubernetes' controllers would have written (``EMULATED`` below). Faults no real
cluster can be held in (a generation the controller has not observed, an HPA above its maximum, a
Secret created long ago) exist only on the emulator and are skipped on a real cluster.

Set ``OPSVERIFY_TEST_KUBECONFIG`` (and optionally ``OPSVERIFY_TEST_CONTEXT``) to run the same tests
against a real cluster where ``tests/k8s/*.yaml`` was applied and rolled out (the kind workflow
``.github/workflows/kubernetes-kind.yml`` does this). The fixture then creates only the run-time
objects (certificate statuses, the Linkerd issuer Secrets with freshly generated certificates, aged
Secrets). ``OPSVERIFY_TEST_CHECKS_KUBECONFIG`` lets the checks themselves use another identity,
e.g. the read-only ServiceAccount of ``deploy/rbac/opsverify-readonly.yaml``.
"""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from kubernetes import client, config

from opsverify_sandbox.pki import CertificateAuthority
from opsverify_sandbox.process import free_port
from opsverify_sandbox.servers.kubernetes import start_kubernetes, write_kubeconfig
from tests.harness import SuiteRun, run_checks

NS = "opsverify-selftest"
T = 10  # _request_timeout of the fixture's own API calls
MANIFESTS = Path(__file__).parent / "k8s"
REAL_KUBECONFIG = os.environ.get("OPSVERIFY_TEST_KUBECONFIG")
REAL = bool(REAL_KUBECONFIG)
emulator_only = pytest.mark.skipif(REAL, reason="this fault cannot be held in a real cluster (emulator only)")

API = "test_kubernetes_api_answers"
READY = "test_workload_is_ready"
BACKOFF = "test_workload_pods_are_not_in_backoff"
RESTARTS = "test_workload_pod_restarts_are_below_threshold"
INJECTED = "test_workload_has_linkerd_proxy_injected"
CERT_READY = "test_certificate_is_ready"
CERT_EXPIRY = "test_certificate_is_not_close_to_expiry"
ISSUER = "test_linkerd_identity_issuer_is_not_close_to_expiry"
SECRET_AGE = "test_secret_is_younger_than_max_age"
HPA_BOUNDS = "test_hpa_replicas_are_within_bounds"
HPA_PINNED = "test_hpa_is_not_pinned_at_max"
CRDS = "test_required_crds_are_installed"


def _now(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _container(name: str, ready: bool, restarts: int, state: dict[str, Any], image: str = "registry.k8s.io/pause:3.9") -> dict[str, Any]:
    return {"name": name, "image": image, "imageID": "", "ready": ready, "restartCount": restarts, "state": state}


def _running(name: str) -> dict[str, Any]:
    return _container(name, True, 0, {"running": {"startedAt": _now(minutes=-30)}})


def _pod(name: str, app: str, containers: list[str], statuses: list[dict[str, Any]], phase: str = "Running") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
            "spec": {"containers": [{"name": c, "image": "registry.k8s.io/pause:3.9"} for c in containers]},
            "status": {"phase": phase, "containerStatuses": statuses}}


def emulated_state() -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """What the controllers and kubelet of a real cluster would have written (emulator only):
    the pods of each workload, and each workload's / HPA's status (with metadata.generation)."""
    waiting_crash = {"waiting": {"reason": "CrashLoopBackOff",
                                 "message": "back-off 40s restarting failed container=app pod=crashloop-7d9f8-x2x9q"}}
    waiting_pull = {"waiting": {"reason": "ImagePullBackOff",
                                "message": 'Back-off pulling image "registry.invalid/opsverify/does-not-exist:1"'}}
    pods = [
        _pod("web-5f7c9-abcde", "web", ["app", "linkerd-proxy"], [_running("app"), _running("linkerd-proxy")]),
        _pod("web-5f7c9-fghij", "web", ["app", "linkerd-proxy"], [_running("app"), _running("linkerd-proxy")]),
        _pod("unmeshed-6b8d4-klmno", "unmeshed", ["app"], [_running("app")]),
        _pod("crashloop-7d9f8-x2x9q", "crashloop", ["app"],
             [_container("app", False, 4, waiting_crash, image="busybox:1.36")]),
        _pod("badimage-59c6d-pqrst", "badimage", ["app"],
             [_container("app", False, 0, waiting_pull, image="registry.invalid/opsverify/does-not-exist:1")],
             phase="Pending"),
        _pod("store-0", "store", ["app"], [_running("app")]),
        _pod("agent-uvw12", "agent", ["app"], [_running("app")]),
        _pod("stale-5d6e7-yz123", "stale", ["app"], [_running("app")]),
    ]
    ready = {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    unready = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1}
    hpa_conditions = [
        {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "lastTransitionTime": _now(minutes=-5)},
        {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "lastTransitionTime": _now(hours=-2)},
        {"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas", "lastTransitionTime": _now(minutes=-5)},
    ]
    statuses = {
        ("Deployment", "web"): {**ready, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
        ("Deployment", "unmeshed"): ready,
        ("Deployment", "crashloop"): unready,
        ("Deployment", "badimage"): unready,
        ("Deployment", "stale"): {**ready, "observedGeneration": 2},
        ("Deployment", "idle"): {"observedGeneration": 1, "replicas": 0},
        ("StatefulSet", "store"): {**ready, "currentReplicas": 1},
        ("DaemonSet", "agent"): {"observedGeneration": 1, "desiredNumberScheduled": 1, "currentNumberScheduled": 1,
                                 "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1,
                                 "numberMisscheduled": 0},
        ("HorizontalPodAutoscaler", "web"): {"currentReplicas": 2, "desiredReplicas": 2,
                                             "lastScaleTime": _now(minutes=-5), "conditions": hpa_conditions},
        ("HorizontalPodAutoscaler", "overflow"): {"currentReplicas": 5, "desiredReplicas": 3,
                                                  "lastScaleTime": _now(hours=-1)},
    }
    return pods, statuses


EMULATOR_ONLY_OBJECTS: list[dict[str, Any]] = [
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stale", "namespace": NS, "generation": 3},
     "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "stale"}},
              "template": {"metadata": {"labels": {"app": "stale"}},
                           "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}}},
    {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "overflow", "namespace": NS},
     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "crashloop"},
              "minReplicas": 1, "maxReplicas": 3}},
]


# -- talking to the cluster (the official client, for both the emulator and a real cluster) --------------
# Responses are not deserialised (_preload_content=False): the client 37 models reject many real
# partial objects (e.g. a DaemonSet status without numberMisscheduled).
def _create(api: client.ApiClient, obj: dict[str, Any], replace: bool = False) -> None:
    kind, meta = obj["kind"], obj["metadata"]
    ns, name = meta.get("namespace"), meta["name"]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    custom, scaling = client.CustomObjectsApi(api), client.AutoscalingV2Api(api)
    creators = {
        "Namespace": lambda: core.create_namespace(obj, _request_timeout=T, _preload_content=False),
        "CustomResourceDefinition": lambda: client.ApiextensionsV1Api(api).create_custom_resource_definition(
            obj, _request_timeout=T, _preload_content=False),
        "Secret": lambda: core.create_namespaced_secret(ns, obj, _request_timeout=T, _preload_content=False),
        "Pod": lambda: core.create_namespaced_pod(ns, obj, _request_timeout=T, _preload_content=False),
        "Deployment": lambda: apps.create_namespaced_deployment(ns, obj, _request_timeout=T, _preload_content=False),
        "StatefulSet": lambda: apps.create_namespaced_stateful_set(ns, obj, _request_timeout=T, _preload_content=False),
        "DaemonSet": lambda: apps.create_namespaced_daemon_set(ns, obj, _request_timeout=T, _preload_content=False),
        "HorizontalPodAutoscaler": lambda: scaling.create_namespaced_horizontal_pod_autoscaler(
            ns, obj, _request_timeout=T, _preload_content=False),
        "Certificate": lambda: custom.create_namespaced_custom_object(
            "cert-manager.io", "v1", ns, "certificates", obj, _request_timeout=T, _preload_content=False),
    }
    if replace and kind == "Secret":
        try:
            core.delete_namespaced_secret(name, ns, _request_timeout=T)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
    try:
        creators[kind]()
    except client.ApiException as exc:
        if exc.status != 409:  # already applied (kubectl apply in the kind workflow)
            raise


def _patch_status(api: client.ApiClient, kind: str, name: str, body: dict[str, Any]) -> None:
    apps, scaling = client.AppsV1Api(api), client.AutoscalingV2Api(api)
    patchers = {
        "Deployment": apps.patch_namespaced_deployment_status,
        "StatefulSet": apps.patch_namespaced_stateful_set_status,
        "DaemonSet": apps.patch_namespaced_daemon_set_status,
        "HorizontalPodAutoscaler": scaling.patch_namespaced_horizontal_pod_autoscaler_status,
    }
    if kind == "Certificate":
        client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            "cert-manager.io", "v1", NS, "certificates", name, body, _request_timeout=T, _preload_content=False)
    else:
        patchers[kind](name, NS, body, _request_timeout=T, _preload_content=False)


def _pem(ca: CertificateAuthority) -> tuple[str, str]:
    cert = ca.cert.public_bytes(serialization.Encoding.PEM)
    key = ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    return base64.b64encode(cert).decode(), base64.b64encode(key).decode()


def _secret(name: str, *, annotations: dict[str, str] | None = None, data: dict[str, str] | None = None,
            created: str | None = None, type_: str = "Opaque") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "annotations": annotations or {}}
    if created and not REAL:
        meta["creationTimestamp"] = created  # the emulator stores what it is given; a cluster sets it
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": meta,
            "data": data or {"token": base64.b64encode(b"not-a-real-secret").decode()}}


def runtime_objects() -> list[dict[str, Any]]:
    """Objects with times relative to now: Linkerd issuer Secrets (certificates made here) and aged Secrets."""
    good_cert, good_key = _pem(CertificateAuthority.create("identity.linkerd.cluster.local", days=300))
    soon_cert, soon_key = _pem(CertificateAuthority.create("identity.linkerd.cluster.local", days=3))
    rotated = "opsverify.io/rotated-at"
    objects = [
        _secret("issuer-good", data={"crt.pem": good_cert, "key.pem": good_key}),
        _secret("issuer-expiring", data={"tls.crt": soon_cert, "tls.key": soon_key}, type_="kubernetes.io/tls"),
        _secret("rotated-recently", annotations={rotated: _now(days=-10)}),
        _secret("rotated-long-ago", annotations={rotated: _now(days=-200)}),
        _secret("bad-annotation", annotations={rotated: "last tuesday"}),
        _secret("created-recently", created=_now(days=-2)),
    ]
    if not REAL:
        objects.append(_secret("created-long-ago", created=_now(days=-400)))
    return objects


CERT_STATUSES = {
    "good-tls": lambda: {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
                         "notAfter": _now(days=90), "renewalTime": _now(days=60)},
    "soon-tls": lambda: {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
                         "notAfter": _now(days=20)},
    "expiring-tls": lambda: {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
                             "notAfter": _now(days=5)},
    "failing-tls": lambda: {"conditions": [{
        "type": "Ready", "status": "False", "reason": "DoesNotExist",
        "message": 'Referenced "Issuer" not found: issuer.cert-manager.io "letsencrypt" not found'}]},
}


@dataclass
class Cluster:
    kubeconfig: str
    context: str | None
    checks_kubeconfig: str
    checks_context: str | None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The emulator seeded like the kind fixtures (default), or the real cluster named by the environment."""
    server = None
    if REAL:
        kubeconfig, context = str(REAL_KUBECONFIG), os.environ.get("OPSVERIFY_TEST_CONTEXT") or None
    else:
        server = start_kubernetes(tmp_path_factory.mktemp("kmock"))
        kubeconfig, context = str(server.kubeconfig), server.context
    api = config.new_client_from_config(kubeconfig, context=context)
    try:
        if not REAL:
            manifests = [d for f in sorted(MANIFESTS.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
            pods, statuses = emulated_state()
            for obj in manifests + EMULATOR_ONLY_OBJECTS + pods:
                if obj["kind"] != "Namespace":  # kmock cannot create namespaces (and needs none)
                    _create(api, obj)
            for (kind, name), status in statuses.items():
                generation = 3 if name == "stale" else 1
                _patch_status(api, kind, name, {"metadata": {"generation": generation}, "status": status})
        for name, status in CERT_STATUSES.items():
            _patch_status(api, "Certificate", name, {"status": status()})
        for obj in runtime_objects():
            _create(api, obj, replace=True)
        checks_kubeconfig = os.environ.get("OPSVERIFY_TEST_CHECKS_KUBECONFIG")
        yield Cluster(
            kubeconfig=kubeconfig,
            context=context,
            checks_kubeconfig=checks_kubeconfig or kubeconfig,
            # another kubeconfig: its own context (default: its current-context)
            checks_context=(os.environ.get("OPSVERIFY_TEST_CHECKS_CONTEXT") or None) if checks_kubeconfig else context,
        )
    finally:
        api.close()
        if server is not None:
            server.stop()


@dataclass
class Ports:
    closed: int      # nothing listens
    blackhole: int   # accepts connections (kernel backlog), never answers
    plain_http: int  # answers plain HTTP: a TLS client fails its handshake


@pytest.fixture(scope="module")
def ports() -> Iterator[Ports]:
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    http = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield Ports(closed=free_port(), blackhole=hole.getsockname()[1], plain_http=http.server_address[1])
    http.shutdown()
    http.server_close()
    hole.close()


def _target(cluster: Cluster, name: str, **fields: Any) -> dict[str, Any]:
    target = {"name": name, "kubeconfig": cluster.checks_kubeconfig, "namespace": NS, **fields}
    if cluster.checks_context:
        target["context"] = cluster.checks_context
    return target


@pytest.fixture(scope="module")
def run(cluster: Cluster, ports: Ports, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One run of every Kubernetes check against healthy and faulty objects, plus unreachable clusters."""
    tmp = tmp_path_factory.mktemp("k8s-run")
    workloads: list[dict[str, Any]] = [
        {"name": "web", "linkerd": True, "min_replicas": 2},  # exactly at its limit
        {"name": "unmeshed", "linkerd": True},
        {"name": "idle"},  # scaled to zero, default min_replicas 1
        {"name": "crashloop", "max_restarts": 1},
        {"name": "badimage"},
        {"name": "store", "kind": "StatefulSet"},
        {"name": "agent", "kind": "DaemonSet"},
        {"name": "ghost"},
    ]
    secrets: list[dict[str, Any]] = [
        {"name": "rotated-recently"}, {"name": "rotated-long-ago"}, {"name": "bad-annotation"},
        {"name": "created-recently"}, {"name": "missing-secret"},
    ]
    hpas: list[dict[str, Any]] = [{"name": "web", "max_minutes_at_max": 60}]
    if not REAL:
        workloads.append({"name": "stale"})
        secrets.append({"name": "created-long-ago"})
        hpas.append({"name": "overflow"})
    unreachable_workloads = [{"name": "web"}, {"name": "store", "kind": "StatefulSet"}]
    env = {"kubernetes": [
        _target(
            cluster, "cluster",
            workloads=workloads,
            certificates=[{"name": n, "min_days": {"warn": 30, "critical": 14}}
                          for n in ("good-tls", "soon-tls", "expiring-tls", "failing-tls", "missing-tls")],
            linkerd_identity={"namespace": NS, "secret": "issuer-good"},
            secrets=secrets,
            hpas=hpas,
            crds=["certificates.cert-manager.io"],
            timeout_s=10,
        ),
        _target(cluster, "issuer-expiring", linkerd_identity={"namespace": NS, "secret": "issuer-expiring"},
                crds=["certificates.cert-manager.io", "servers.policy.linkerd.io"],
                hpas=[{"name": "web", "max_minutes_at_max": 0}], timeout_s=10,
                workloads=[{"name": "idle", "min_replicas": 0}, {"name": "web", "min_replicas": 3}]),
        _target(cluster, "issuer-missing", linkerd_identity={"namespace": NS, "secret": "no-such-issuer"},
                timeout_s=10),
        {"name": "refused", "workloads": unreachable_workloads,
         "kubeconfig": str(write_kubeconfig(tmp / "refused.kubeconfig", f"http://127.0.0.1:{ports.closed}"))},
        {"name": "stalled", "workloads": unreachable_workloads, "timeout_s": 1,
         "kubeconfig": str(write_kubeconfig(tmp / "stalled.kubeconfig", f"http://127.0.0.1:{ports.blackhole}"))},
        {"name": "nokubeconfig", "workloads": unreachable_workloads, "kubeconfig": str(tmp / "absent.kubeconfig")},
        {"name": "not-tls", "workloads": unreachable_workloads,
         "kubeconfig": str(write_kubeconfig(tmp / "nottls.kubeconfig", f"https://127.0.0.1:{ports.plain_http}"))},
        {"name": "no-context", "workloads": unreachable_workloads, "kubeconfig": cluster.checks_kubeconfig,
         "context": "opsverify-no-such-context"},
    ]}
    started = time.monotonic()
    result = run_checks(tmp, env, "-k", "kubernetes", paths=["checks/test_kubernetes.py"])
    result.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return result


def test_healthy_objects_pass_every_check(run: SuiteRun) -> None:
    assert run.summary is not None, run.stdout + run.stderr
    healthy = [
        (API, "cluster", None), (CRDS, "cluster", None), (ISSUER, "cluster", None),
        *[(check, "cluster", w) for w in ("web", "store", "agent") for check in (READY, BACKOFF, RESTARTS)],
        (INJECTED, "cluster", "web"),
        (CERT_READY, "cluster", "good-tls"), (CERT_EXPIRY, "cluster", "good-tls"),
        (SECRET_AGE, "cluster", "rotated-recently"), (SECRET_AGE, "cluster", "created-recently"),
        (HPA_BOUNDS, "cluster", "web"), (HPA_PINNED, "cluster", "web"),
    ]
    for check, target, item in healthy:
        assert run.outcome(check, target, item=item) == "passed", (check, item, run.message(check, target, item=item))
    # a warning level passes and records the warning
    soon = run.record(CERT_EXPIRY, "cluster", item="soon-tls")
    assert soon["outcome"] == "passed" and "past the warning level 30 d" in soon["warnings"][0]


def test_broken_workloads_fail_with_what_is_wrong(run: SuiteRun) -> None:
    assert run.outcome(READY, "cluster", item="crashloop") == "failed"
    assert "got 0/1 ready" in run.message(READY, "cluster", item="crashloop")
    message = run.message(BACKOFF, "cluster", item="crashloop")
    assert run.outcome(BACKOFF, "cluster", item="crashloop") == "failed"
    assert "/app CrashLoopBackOff" in message and "[runbook kubernetes#pods-backoff]" in message
    message = run.message(BACKOFF, "cluster", item="badimage")
    assert run.outcome(BACKOFF, "cluster", item="badimage") == "failed"
    assert "ImagePullBackOff" in message or "ErrImagePull" in message
    assert run.outcome(RESTARTS, "cluster", item="crashloop") == "failed"
    assert "restarts of the most restarted container of Deployment opsverify-selftest/crashloop" in run.message(
        RESTARTS, "cluster", item="crashloop")
    # the other workloads' pods are not counted (kmock ignores label selectors; the probe filters)
    assert run.outcome(BACKOFF, "cluster", item="web") == "passed"
    for check in (READY, BACKOFF, RESTARTS):
        assert run.outcome(check, "cluster", item="ghost") == "failed"
        assert "expected Deployment opsverify-selftest/ghost to exist, got not found" in run.message(
            check, "cluster", item="ghost")


def test_missing_linkerd_proxy_fails(run: SuiteRun) -> None:
    message = run.message(INJECTED, "cluster", item="unmeshed")
    assert run.outcome(INJECTED, "cluster", item="unmeshed") == "failed"
    assert "no linkerd.io/inject on the pod template or namespace" in message
    assert "1/1 pods without a linkerd-proxy container" in message
    assert "[runbook kubernetes#linkerd-injection]" in message
    # only workloads marked linkerd: true are checked for the proxy
    assert not [r for r in run.records if r["check"] == INJECTED and r["item"] == "store"]


def test_certificate_faults_fail(run: SuiteRun) -> None:
    assert run.outcome(CERT_EXPIRY, "cluster", item="expiring-tls") == "failed"
    assert "expected days until Certificate opsverify-selftest/expiring-tls expires" in run.message(
        CERT_EXPIRY, "cluster", item="expiring-tls")
    assert ">= 14 d, got 5 d" in run.message(CERT_EXPIRY, "cluster", item="expiring-tls")
    assert run.outcome(CERT_READY, "cluster", item="expiring-tls") == "passed"
    message = run.message(CERT_READY, "cluster", item="failing-tls")
    assert run.outcome(CERT_READY, "cluster", item="failing-tls") == "failed"
    assert 'got Ready=False (DoesNotExist: Referenced "Issuer" not found' in message
    assert "no notAfter (never issued)" in run.message(CERT_EXPIRY, "cluster", item="failing-tls")
    assert run.outcome(CERT_READY, "cluster", item="missing-tls") == "failed"


def test_linkerd_issuer_expiry_fails_and_missing_issuer_fails(run: SuiteRun) -> None:
    passed = run.record(ISSUER, "cluster")
    assert passed["outcome"] == "passed" and passed["measured"][0]["value"] > 290
    message = run.message(ISSUER, "issuer-expiring")
    assert run.outcome(ISSUER, "issuer-expiring") == "failed"
    assert "Linkerd identity issuer certificate (CN=identity.linkerd.cluster.local" in message
    assert "tls.crt" in message and "[runbook kubernetes#linkerd-issuer-expiry]" in message
    assert run.outcome(ISSUER, "issuer-missing") == "failed"
    assert "Secret opsverify-selftest/no-such-issuer holding the Linkerd identity issuer certificate, got not found" in (
        run.message(ISSUER, "issuer-missing"))


def test_old_or_unreadable_secrets_fail(run: SuiteRun) -> None:
    message = run.message(SECRET_AGE, "cluster", item="rotated-long-ago")
    assert run.outcome(SECRET_AGE, "cluster", item="rotated-long-ago") == "failed"
    assert "since its annotation opsverify.io/rotated-at" in message and "<= 90 d, got 200 d" in message
    assert run.outcome(SECRET_AGE, "cluster", item="bad-annotation") == "failed"
    assert "'last tuesday' is not an RFC 3339 time" in run.message(SECRET_AGE, "cluster", item="bad-annotation")
    assert run.outcome(SECRET_AGE, "cluster", item="missing-secret") == "failed"
    # no secret value reaches any output
    assert "bm90LWEtcmVhbC1zZWNyZXQ" not in run.stdout and "not-a-real-secret" not in run.stdout


def test_hpa_pinned_at_max_fails_and_missing_crd_fails(run: SuiteRun) -> None:
    message = run.message(HPA_PINNED, "issuer-expiring", item="web")
    assert run.outcome(HPA_PINNED, "issuer-expiring", item="web") == "failed"
    assert "has been at maxReplicas 2" in message and "<= 0 min" in message
    assert run.outcome(CRDS, "issuer-expiring") == "failed"
    assert "got missing servers.policy.linkerd.io" in run.message(CRDS, "issuer-expiring")


@emulator_only
def test_emulator_only_faults_fail(run: SuiteRun) -> None:
    assert run.outcome(READY, "cluster", item="stale") == "failed"
    assert "controller has observed generation 2 of 3" in run.message(READY, "cluster", item="stale")
    assert run.outcome(HPA_BOUNDS, "cluster", item="overflow") == "failed"
    assert "between 1 and 3 replicas, got 5 replicas" in run.message(HPA_BOUNDS, "cluster", item="overflow")
    message = run.message(SECRET_AGE, "cluster", item="created-long-ago")
    assert run.outcome(SECRET_AGE, "cluster", item="created-long-ago") == "failed"
    assert "since its creation time" in message and "got 400 d" in message
    # the same HPA pinned for longer than allowed carries the scaling-limited hint
    assert "metrics ask for more (ScalingLimited: TooManyReplicas)" in run.message(HPA_PINNED, "issuer-expiring", item="web")


def test_unreachable_cluster_errors_every_check_with_one_line(run: SuiteRun, ports: Ports) -> None:
    for item in ("web", "store"):
        for check in (READY, BACKOFF, RESTARTS):
            assert run.outcome(check, "refused", item=item) == "error"
            assert run.cause(check, "refused", item=item) == (
                f"Unreachable: cannot connect to API server http://127.0.0.1:{ports.closed}: connection refused")
            assert run.outcome(check, "stalled", item=item) == "error"
            assert "ProbeTimeout" in run.message(check, "stalled", item=item)
            assert run.outcome(check, "nokubeconfig", item=item) == "error"
            assert run.message(check, "nokubeconfig", item=item).startswith("SecretMissing: kubeconfig ")
            assert run.cause(check, "nokubeconfig", item=item).endswith("absent.kubeconfig not found")
    assert run.cause(API, "stalled") == (
        f"ProbeTimeout: API server http://127.0.0.1:{ports.blackhole} sent no answer within 1 s (asking for /version/)")
    # the dependents carry the same error, or (when the machine is slow) the engine's own bound, naming the phase
    assert run.cause(READY, "stalled", item="web") in (
        run.cause(API, "stalled"), "ProbeTimeout: no answer within 1 s (waiting for the API server's /version/)")
    assert "\n" not in run.message(READY, "stalled", item="web")
    message = run.message(READY, "not-tls", item="web")
    assert message.startswith(f"Unreachable: cannot connect to API server https://127.0.0.1:{ports.plain_http}: TLS failure (")
    assert "WRONG_VERSION_NUMBER" in message
    message = run.message(READY, "no-context", item="web")
    assert run.outcome(READY, "no-context", item="web") == "error"
    assert message.startswith("SecretMissing: kubeconfig ") and "opsverify-no-such-context" in message
    assert "Traceback" not in run.stdout
    assert run.elapsed < 60  # type: ignore[attr-defined]  # generous: busy CI machines



def test_bad_kubernetes_entries_are_usage_errors(run_suite: Any) -> None:
    bad = run_suite({"kubernetes": [{"name": "k", "workloads": [{"name": "web"}, {"name": "web", "namespace": "b"}]}]})
    assert bad.ret == 4
    assert "workloads[1]: 'web' is listed twice" in bad.stderr + bad.stdout
    bad = run_suite({"kubernetes": [{"name": "k", "in_cluster": True, "kubeconfig": "/x"}]})
    assert bad.ret == 4 and "in_cluster: true uses the pod's service account" in bad.stderr + bad.stdout


def test_workload_scaled_to_zero_fails_unless_zero_is_allowed(run: SuiteRun) -> None:
    """0/0 ready is no evidence of a running service: it fails unless ``min_replicas: 0`` says it may be idle."""
    message = run.message(READY, "cluster", item="idle")
    assert run.outcome(READY, "cluster", item="idle") == "failed", message
    assert ("got 0 desired replicas, fewer than min_replicas 1; set min_replicas: 0 if it may be scaled to zero"
            in message)
    assert run.outcome(READY, "issuer-expiring", item="idle") == "passed"
    # the limit itself passes, one step past it fails
    assert run.outcome(READY, "cluster", item="web") == "passed"
    assert run.outcome(READY, "issuer-expiring", item="web") == "failed"
    assert "got 2 desired replicas, fewer than min_replicas 3" in run.message(READY, "issuer-expiring", item="web")
