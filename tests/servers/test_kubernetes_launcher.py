"""Self-test of the Kubernetes launcher: the kmock **emulator** (not a real API server).

Each "fact that bites" in :mod:`opsverify_sandbox.servers.kubernetes` is checked here with the
official ``kubernetes`` client, so the probes can rely on (and work around) them. These tests are
about the emulator itself and are not meant to run against a real cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config

from opsverify_sandbox.process import port_is_open
from opsverify_sandbox.servers.kubernetes import KubernetesServer, start_kubernetes, write_seed

T = 5  # every call's _request_timeout

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "certificates.cert-manager.io"},
    "spec": {
        "group": "cert-manager.io",
        "scope": "Namespaced",
        "names": {"plural": "certificates", "kind": "Certificate", "singular": "certificate"},
        "versions": [{"name": "v1", "served": True, "storage": True}],
    },
}


def _pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}}


@pytest.fixture(scope="module")
def k8s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesServer]:
    work = tmp_path_factory.mktemp("kmock")
    seed = write_seed(work / "seed.yaml", [
        CRD,
        _pod("web-1", {"app": "web"}),
        _pod("db-1", {"app": "db"}),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "a"}}},
    ])
    with start_kubernetes(work, seeds=[seed]) as server:
        yield server


@pytest.fixture(scope="module")
def api(k8s: KubernetesServer) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(str(k8s.kubeconfig), context=k8s.context)
    yield api_client
    api_client.close()


def _status(exc: client.ApiException) -> tuple[int, str]:
    return int(exc.status or 0), str(json.loads(exc.body or "{}").get("reason"))


def test_version_is_served_with_the_trailing_slash_the_client_uses(api: client.ApiClient, k8s: KubernetesServer) -> None:
    info = client.VersionApi(api).get_code(_request_timeout=T)
    assert info.git_version == "v1.30.0-kmock" and info.platform == "emulator"
    # kmock alone only knows /version; the launcher adds /version/ (asked by the official client)
    assert httpx.get(f"{k8s.url}/version", timeout=T).status_code == 200


def test_objects_are_stored_as_sent_without_metadata_or_status(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bare", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "bare"}},
                     "template": {"metadata": {"labels": {"app": "bare"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    apps.create_namespaced_deployment("shop", body, _request_timeout=T)
    raw = json.loads(apps.read_namespaced_deployment("bare", "shop", _request_timeout=T, _preload_content=False).data)
    assert set(raw["metadata"]) == {"name", "namespace"}   # no uid, creationTimestamp, generation
    assert "status" not in raw                              # no controller
    # a status PATCH is a plain merge into the stored object
    apps.patch_namespaced_deployment_status("bare", "shop", {"status": {"readyReplicas": 1}}, _request_timeout=T)
    apps.patch_namespaced_deployment_status("bare", "shop", {"status": {"replicas": 3}}, _request_timeout=T)
    raw = json.loads(apps.read_namespaced_deployment("bare", "shop", _request_timeout=T, _preload_content=False).data)
    assert raw["status"] == {"readyReplicas": 1, "replicas": 3}


def test_unknown_resources_404_until_declared_or_created(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    with pytest.raises(client.ApiException) as err:
        custom.list_namespaced_custom_object("example.com", "v1", "shop", "widgets", _request_timeout=T)
    assert _status(err.value) == (404, "Resource Not Found")
    # a seeded CRD declares its resource: listing works with no object yet
    listed = custom.list_namespaced_custom_object("cert-manager.io", "v1", "shop", "certificates", _request_timeout=T)
    assert listed["items"] == []
    # creating an object works without any declaration, and makes the resource listable
    custom.create_namespaced_custom_object(
        "example.com", "v1", "shop", "widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, _request_timeout=T)
    names = [i["metadata"]["name"] for i in custom.list_namespaced_custom_object(
        "example.com", "v1", "shop", "widgets", _request_timeout=T)["items"]]
    assert names == ["w"]
    # a missing object of a known resource: 404 with its own reason
    with pytest.raises(client.ApiException) as err:
        custom.get_namespaced_custom_object("cert-manager.io", "v1", "shop", "certificates", "nope", _request_timeout=T)
    assert _status(err.value) == (404, "Object Not Found")
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(
        "certificates.cert-manager.io", _request_timeout=T, _preload_content=False)
    assert json.loads(crd.data)["spec"]["names"]["kind"] == "Certificate"


def test_label_selectors_are_ignored(api: client.ApiClient) -> None:
    pods = client.CoreV1Api(api).list_namespaced_pod("shop", label_selector="app=web", _request_timeout=T)
    assert sorted(p.metadata.name for p in pods.items) == ["db-1", "web-1"]


def test_namespaces_cannot_be_listed_created_or_read(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(client.ApiException) as err:
        core.list_namespace(_request_timeout=T)
    assert err.value.status == 500
    with pytest.raises(client.ApiException) as err:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}, _request_timeout=T)
    assert err.value.status == 500
    # even a seeded namespace: kmock parses /api/v1/namespaces/shop as a namespace prefix
    with pytest.raises(client.ApiException) as err:
        core.read_namespace("shop", _request_timeout=T)
    assert _status(err.value) == (404, "Resource Not Found")


def test_partial_object_metadata_is_ignored_and_timestamps_come_back_as_offsets(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_secret("shop", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "shop", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "data": {"k": "dmFsdWU="}}, _request_timeout=T)
    raw = json.loads(core.read_namespaced_secret(
        "s", "shop", _request_timeout=T, _preload_content=False,
        _headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}).data)
    assert "data" in raw   # a real API server would send metadata only
    assert raw["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00+00:00"


def test_any_token_is_accepted(k8s: KubernetesServer) -> None:
    headers = {"Authorization": "Bearer not-a-real-token"}
    response = httpx.get(f"{k8s.url}/api/v1/namespaces/shop/pods", headers=headers, timeout=T)
    assert response.status_code == 200


def test_stop_frees_the_port(tmp_path: Path) -> None:
    server = start_kubernetes(tmp_path)
    assert port_is_open("127.0.0.1", server.port)
    server.stop()
    assert not port_is_open("127.0.0.1", server.port)
