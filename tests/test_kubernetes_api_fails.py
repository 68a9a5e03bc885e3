"""``test_kubernetes_api_answers`` against its real fault: the kubeconfig's server address answers
HTTP, but it is not a Kubernetes API server (here the demo service, answering 404 to ``/version/``).
Its healthy twin is the project's Kubernetes *emulator* (PyPI ``kmock``, a mock API server: no real
cluster runs here; the GitHub workflow runs the Kubernetes self-tests against kind)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opsverify_sandbox.servers.kubernetes import KubernetesServer, start_kubernetes, write_kubeconfig, write_seed
from tests.harness import run_checks

API = "test_kubernetes_api_answers"
READY = "test_workload_is_ready"
HPA_BOUNDS = "test_hpa_replicas_are_within_bounds"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesServer]:
    server = start_kubernetes(tmp_path_factory.mktemp("k8s"))
    yield server
    server.stop()


def test_an_address_that_is_not_a_kubernetes_api_fails_and_the_emulator_passes(
    emulator: KubernetesServer, demo, tmp_path: Path
) -> None:
    elsewhere = write_kubeconfig(tmp_path / "elsewhere.kubeconfig", f"http://127.0.0.1:{demo.http}")
    env = {"kubernetes": [
        {"name": "emulator", "kubeconfig": str(emulator.kubeconfig)},
        {"name": "elsewhere", "kubeconfig": str(elsewhere), "workloads": [{"name": "web"}]},
    ]}
    (tmp_path / "run").mkdir()
    run = run_checks(tmp_path / "run", env, "-k", "api_answers or workload_is_ready", paths=["checks/test_kubernetes.py"])
    assert run.outcome(API, "emulator") == "passed", run.stdout[-3000:]
    assert run.outcome(API, "elsewhere") == "failed", run.stdout[-3000:]
    assert run.message(API, "elsewhere") == (
        f"selftest-elsewhere: expected a version from http://127.0.0.1:{demo.http}/version/, got answered HTTP 404 "
        "to /version/: not a Kubernetes API server — the kubeconfig's server address answers, but not as a "
        "Kubernetes API server: check the kubeconfig and context the checker uses (server URL, port, a proxy in "
        "between) [runbook kubernetes#api]")
    assert run.outcome(READY, "elsewhere", item="web") == "error"
    assert run.cause(READY, "elsewhere", item="web") == (
        f"UnexpectedResponse: http://127.0.0.1:{demo.http} answered HTTP 404 to /version/: not a Kubernetes API "
        "server, so nothing can be read from it")


def _hpa(name: str, current: int) -> dict[str, object]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 3},
            "status": {"currentReplicas": current, "desiredReplicas": current}}


def test_hpa_exactly_at_max_replicas_passes_and_one_above_fails(tmp_path: Path) -> None:
    """The emulator stores the status a controller would have written: 3 of max 3, and 4 of max 3."""
    seed = write_seed(tmp_path / "hpas.yaml", [_hpa("at-max", 3), _hpa("one-over", 4), _hpa("at-min", 1),
                                               _hpa("under-min", 0)])
    server = start_kubernetes(tmp_path / "k8s", seeds=[seed])
    try:
        env = {"kubernetes": [{"name": "c", "kubeconfig": str(server.kubeconfig), "namespace": "default",
                               "hpas": [{"name": n} for n in ("at-max", "one-over", "at-min", "under-min")]}]}
        (tmp_path / "run").mkdir()
        run = run_checks(tmp_path / "run", env, "-k", "within_bounds", paths=["checks/test_kubernetes.py"])
    finally:
        server.stop()
    assert run.outcome(HPA_BOUNDS, "c", item="at-max") == "passed", run.stdout[-3000:]
    assert run.outcome(HPA_BOUNDS, "c", item="at-min") == "passed"
    assert run.outcome(HPA_BOUNDS, "c", item="one-over") == "failed"
    assert ("expected HorizontalPodAutoscaler default/one-over between 1 and 3 replicas, got 4 replicas"
            in run.message(HPA_BOUNDS, "c", item="one-over"))
    assert run.outcome(HPA_BOUNDS, "c", item="under-min") == "failed"
