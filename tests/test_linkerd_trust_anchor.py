"""The Linkerd trust anchor check (and its credential-inventory rows) against the Kubernetes
emulator (kmock, a mock API server driven by the official client -- not a real cluster; the
GitHub workflow runs the Kubernetes self-tests against kind).

ConfigMaps hold trust bundles made here at run time: a healthy one-year root, a root 5 days from
expiry, a bundle in mid-rotation (an old root expiring in 5 days next to a new one for a year),
a bundle that is not PEM, a ConfigMap without the key, and a missing ConfigMap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from kubernetes import client, config

from opsverify_sandbox.pki import CertificateAuthority
from opsverify_sandbox.servers.kubernetes import start_kubernetes
from tests.harness import SuiteRun, run_checks

NS = "linkerd"
CHECK = "test_linkerd_trust_anchor_is_not_close_to_expiry"


def _root(cn: str, days: float) -> str:
    return CertificateAuthority.create(cn, days=days).cert.public_bytes(serialization.Encoding.PEM).decode()


def _configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": data}


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_kubernetes(tmp_path_factory.mktemp("kmock-anchor"))
    api = config.new_client_from_config(str(server.kubeconfig), context=server.context)
    try:
        core = client.CoreV1Api(api)
        bundles = {
            "roots-good": {"ca-bundle.crt": _root("root.linkerd.cluster.local", 365)},
            "roots-expiring": {"ca-bundle.crt": _root("root.linkerd.cluster.local", 5)},
            "roots-rotating": {"ca-bundle.crt": _root("old-root.linkerd.cluster.local", 5)
                               + _root("new-root.linkerd.cluster.local", 365)},
            "roots-garbage": {"ca-bundle.crt": "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"},
            "roots-wrong-key": {"roots.pem": _root("root.linkerd.cluster.local", 365)},
        }
        for name, data in bundles.items():
            core.create_namespaced_config_map(NS, _configmap(name, data), _request_timeout=10)
        yield str(server.kubeconfig)
    finally:
        api.close()
        server.stop()


def _target(kubeconfig: str, name: str, configmap: str) -> dict[str, Any]:
    return {"name": name, "kubeconfig": kubeconfig, "namespace": NS, "timeout_s": 10,
            "linkerd_trust_anchor": {"namespace": NS, "configmap": configmap, "min_days": {"warn": 60, "critical": 14}}}


@pytest.fixture(scope="module")
def run(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    env = {"kubernetes": [
        _target(kubeconfig, "good", "roots-good"),
        _target(kubeconfig, "expiring", "roots-expiring"),
        _target(kubeconfig, "rotating", "roots-rotating"),
        _target(kubeconfig, "garbage", "roots-garbage"),
        _target(kubeconfig, "wrong-key", "roots-wrong-key"),
        _target(kubeconfig, "missing", "no-such-configmap"),
    ]}
    return run_checks(tmp_path_factory.mktemp("anchor-run"), env, "-k", "trust_anchor",
                      paths=["checks/test_kubernetes.py"])


def test_a_long_lived_anchor_passes_and_one_close_to_expiry_fails(run: SuiteRun) -> None:
    assert run.outcome(CHECK, "good") == "passed", run.stdout[-2000:]
    assert run.outcome(CHECK, "expiring") == "failed"
    message = run.message(CHECK, "expiring")
    assert "expected days until the Linkerd trust anchor (CN=root.linkerd.cluster.local, " in message
    assert "ConfigMap linkerd/roots-expiring ca-bundle.crt) expires" in message
    assert ">= 14 d, got 5 d" in message
    assert "linkerd upgrade --identity-trust-anchors-file" in message
    assert "[runbook kubernetes#linkerd-trust-anchor-expiry]" in message


def test_a_bundle_mid_rotation_is_judged_by_its_newest_root(run: SuiteRun) -> None:
    record = run.record(CHECK, "rotating")
    assert record["outcome"] == "passed"
    assert record["measured"][0]["value"] >= 364


def test_unreadable_bundles_fail_naming_the_problem(run: SuiteRun) -> None:
    assert run.outcome(CHECK, "garbage") == "failed"
    assert "got ca-bundle.crt is not a PEM certificate bundle" in run.message(CHECK, "garbage")
    assert run.outcome(CHECK, "wrong-key") == "failed"
    assert "got the ConfigMap has no ca-bundle.crt" in run.message(CHECK, "wrong-key")
    assert run.outcome(CHECK, "missing") == "failed"
    assert ("expected ConfigMap linkerd/no-such-configmap holding the Linkerd trust anchor bundle, got not found"
            in run.message(CHECK, "missing"))


def test_the_inventory_lists_each_root_of_the_bundle(run: SuiteRun) -> None:
    assert run.summary is not None
    rows = [r for r in run.summary["run"]["credentials"] if r["owner"] == "kubernetes/rotating"]
    assert [(r["kind"], r["status"]) for r in rows] == [("Linkerd trust anchor", "rotate now"),
                                                        ("Linkerd trust anchor", "ok")]
    assert "old-root" in rows[0]["name"] and 4.9 < rows[0]["days_left"] < 5.1
    assert "new-root" in rows[1]["name"] and rows[1]["days_left"] > 364
    text = (run.reports / "summary.md").read_text()
    assert "| rotate now | Linkerd trust anchor |" in text


def test_the_trust_anchor_section_is_a_config_error_when_malformed(tmp_path: Path) -> None:
    import json

    from opsverify.config.model import load_environment
    from opsverify.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"name": "bad", "kubernetes": [
        {"name": "k", "linkerd_trust_anchor": {"configmap": "Not_A_Name"}}]}))
    with pytest.raises(ConfigError) as raised:
        load_environment(path)
    assert "kubernetes[0].linkerd_trust_anchor.configmap" in str(raised.value)
