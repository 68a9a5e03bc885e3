"""The in-cluster deployment (deploy/): manifests, read-only RBAC, image, entrypoint and alert rules.

- Every Kubernetes manifest deserializes into the official ``kubernetes`` client's model of its kind
  (``V1CronJob.from_dict`` ...: required fields and types) and passes the Kubernetes OpenAPI schema
  strictly (``kubernetes-validate --strict``: unknown fields too); both reject real faults.
- The RBAC grants nothing but get/list/watch; a write verb (or a wildcard) is caught.
- The CronJob, ServiceAccount, ConfigMap, volume claim and image agree with each other, and the
  environment file in the ConfigMap is a valid opsverify environment file.
- ``deploy/entrypoint.sh`` runs for real against the demo service and pushes the run's
  ``metrics.prom`` to a real Prometheus Pushgateway (Debian's package, scripts/tools/pushgateway.sh).
- ``deploy/alerts/`` passes ``promtool check rules`` and ``promtool test rules``, and fires the
  expected alerts on the series of a real run's ``metrics.prom``.

No cluster runs here: the same manifests are applied to a real kind cluster by the ``in-cluster``
job of .github/workflows/kubernetes-kind.yml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from opsverify.config.model import load_environment
from opsverify.errors import ConfigError, SandboxError
from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.tools import find_tool
from opsverify.writers.metrics_prom import measure_name
from tests.harness import ROOT, run_checks, write_env

DEPLOY = ROOT / "deploy"
MANIFEST_DIRS = (DEPLOY / "kubernetes", DEPLOY / "rbac", DEPLOY / "serve")
KUBERNETES_VERSION = "1.33.0"   # the schema the manifests are checked against (CronJob timeZone needs >= 1.27)
READ_ONLY_VERBS = frozenset({"get", "list", "watch"})
RULES = DEPLOY / "alerts" / "opsverify-rules.yaml"
RULES_TEST = DEPLOY / "alerts" / "opsverify-rules.test.yaml"


def tool(name: str) -> str:
    try:
        return find_tool(name)
    except SandboxError as exc:
        pytest.fail(f"{exc} (scripts/tools/prometheus.sh and pushgateway.sh install it)", pytrace=False)


# --- manifests -----------------------------------------------------------------------------------------

def manifest_files() -> list[Path]:
    return sorted(p for d in MANIFEST_DIRS for p in d.glob("*.yaml") if p.name != "kustomization.yaml")


def manifests() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def doc_id(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def the(kind: str, docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    found = [d for d in (docs if docs is not None else manifests()) if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/, found {len(found)}"
    return found[0]


def to_model(doc: dict[str, Any]) -> Any:
    """The official client's model of the manifest (``V1CronJob`` for batch/v1 CronJob ...)."""
    version = doc["apiVersion"].split("/")[-1]
    model = getattr(client, f"{version.capitalize()}{doc['kind']}")
    return model.from_dict(doc)


def schema_errors(doc: dict[str, Any]) -> str | None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return str(exc).splitlines()[0]
    return None


def write_grants(docs: list[dict[str, Any]]) -> list[str]:
    """Every Role/ClusterRole rule granting more than reading: one line per offending rule."""
    found = []
    for doc in docs:
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        for index, rule in enumerate(doc.get("rules") or []):
            extra = sorted(set(rule.get("verbs") or []) - READ_ONLY_VERBS)
            if extra:
                what = ", ".join(rule.get("resources") or rule.get("nonResourceURLs") or [])
                found.append(f"{doc_id(doc)} rule {index} ({what}) grants {', '.join(extra)}")
    return found


def test_the_deploy_files_are_there():
    names = {p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*") if p.is_file()}
    assert names >= {"Containerfile", "entrypoint.sh", "kubernetes/cronjob.yaml", "kubernetes/environment.yaml",
                     "kubernetes/reports-pvc.yaml", "kubernetes/kustomization.yaml",
                     "rbac/opsverify-readonly.yaml", "alerts/opsverify-rules.yaml"}
    assert {doc["kind"] for doc in manifests()} >= {
        "CronJob", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "PersistentVolumeClaim",
        "Deployment", "Service"}


@pytest.mark.parametrize("doc", manifests(), ids=doc_id)
def test_manifest_is_a_valid_object_of_the_official_client_model(doc):
    model = to_model(doc)
    assert model.kind == doc["kind"] and model.metadata.name == doc["metadata"]["name"]
    assert model.metadata.namespace in (None, "opsverify")


@pytest.mark.parametrize("doc", manifests(), ids=doc_id)
def test_manifest_passes_the_kubernetes_schema_strictly(doc):
    assert schema_errors(doc) is None


def test_model_and_schema_reject_broken_manifests():
    cronjob = the("CronJob")
    no_template = json.loads(json.dumps(cronjob))
    del no_template["spec"]["jobTemplate"]
    with pytest.raises(ValueError, match="jobTemplate"):
        to_model(no_template)
    assert schema_errors(no_template) == "'jobTemplate' is a required property"

    misspelt = json.loads(json.dumps(cronjob))
    pod = misspelt["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["serviceAccount_name"] = pod.pop("serviceAccountName")
    assert schema_errors(misspelt) == "Additional properties are not allowed ('serviceAccount_name' was unexpected)"

    no_containers = json.loads(json.dumps(cronjob))
    del no_containers["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    with pytest.raises(ValueError, match="containers"):
        to_model(no_containers)

    wrong_type = json.loads(json.dumps(cronjob))
    wrong_type["spec"]["schedule"] = 15
    assert schema_errors(wrong_type) == "15 is not of type 'string'"


def test_kustomizations_list_every_manifest():
    for directory in MANIFEST_DIRS:
        resources = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
        for entry in resources:
            assert (directory / entry).exists(), f"{directory.name}/kustomization.yaml lists {entry}, which is missing"
        listed = {entry for entry in resources if entry.endswith(".yaml")}
        present = {p.name for p in directory.glob("*.yaml") if p.name != "kustomization.yaml"}
        assert listed == present, f"{directory.name}/kustomization.yaml does not list {sorted(present - listed)}"
    for directory in ("kubernetes", "serve"):
        assert "../rbac" in yaml.safe_load((DEPLOY / directory / "kustomization.yaml").read_text())["resources"]


# --- RBAC ----------------------------------------------------------------------------------------------

def test_rbac_grants_only_get_list_watch():
    docs = manifests()
    assert [d for d in docs if d["kind"] in ("Role", "ClusterRole")], "no Role or ClusterRole in deploy/"
    assert write_grants(docs) == []
    rules = [r for d in docs if d["kind"] in ("Role", "ClusterRole") for r in d["rules"]]
    assert all("*" not in r.get("resources", []) and "*" not in r.get("apiGroups", []) for r in rules)


def test_rbac_check_catches_write_verbs_and_wildcards():
    role = the("ClusterRole")
    patched = json.loads(json.dumps(role))
    patched["rules"][0]["verbs"].append("patch")
    assert write_grants([patched]) == [
        "ClusterRole/opsverify-readonly rule 0 (deployments, statefulsets, daemonsets, replicasets) grants patch"]
    wildcard = {"kind": "Role", "metadata": {"name": "sneaky"},
                "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["*"]}]}
    assert write_grants([wildcard]) == ["Role/sneaky rule 0 (pods/exec) grants *"]
    escalate = {"kind": "ClusterRole", "metadata": {"name": "esc"},
                "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                           "verbs": ["get", "bind", "escalate"]}]}
    assert write_grants([escalate]) == ["ClusterRole/esc rule 0 (clusterroles) grants bind, escalate"]


def test_secrets_are_only_readable_by_name():
    """The checks GET named Secrets; listing or watching would hand over every Secret of the cluster."""
    rules = [r for r in the("ClusterRole")["rules"] if "secrets" in r["resources"]]
    assert rules and all(r["verbs"] == ["get"] for r in rules)


def test_the_binding_gives_the_role_to_the_cronjob_service_account():
    docs = manifests()
    account, binding, role, cronjob = (the(k, docs) for k in ("ServiceAccount", "ClusterRoleBinding",
                                                                "ClusterRole", "CronJob"))
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    pod = to_model(cronjob).spec.job_template.spec.template.spec
    assert pod.service_account_name == account["metadata"]["name"]
    assert cronjob["metadata"]["namespace"] == account["metadata"]["namespace"]


# --- the CronJob, its ConfigMap, volume and image ------------------------------------------------------

def containerfile() -> str:
    return (DEPLOY / "Containerfile").read_text()


def test_cronjob_runs_the_image_as_its_non_root_user_with_a_read_only_root():
    job = to_model(the("CronJob"))
    assert len(job.spec.schedule.split()) == 5
    assert job.spec.concurrency_policy == "Forbid"
    assert job.spec.job_template.spec.backoff_limit == 0
    assert job.spec.job_template.spec.active_deadline_seconds
    pod = job.spec.job_template.spec.template.spec
    (container,) = pod.containers
    user = re.search(r"^USER (\d+):(\d+)$", containerfile(), re.M)
    assert user, "Containerfile: no numeric USER uid:gid"
    assert (pod.security_context.run_as_user, pod.security_context.run_as_group) == (int(user[1]), int(user[2]))
    assert pod.security_context.run_as_non_root is True
    sc = container.security_context
    assert (sc.read_only_root_filesystem, sc.allow_privilege_escalation, sc.capabilities.drop) == (True, False, ["ALL"])
    mounts = {m.mount_path: m.name for m in container.volume_mounts}
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp"
    assert "memory" in container.resources.limits


def test_cronjob_reads_its_environment_file_from_the_configmap_and_writes_reports_to_the_claim():
    docs = manifests()
    job, config_map, claim = to_model(the("CronJob", docs)), the("ConfigMap", docs), the("PersistentVolumeClaim", docs)
    pod = job.spec.job_template.spec.template.spec
    (container,) = pod.containers
    env = {e.name: e.value for e in container.env}
    volumes = {v.name: v for v in pod.volumes}
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    env_file = Path(env["OPSVERIFY_ENV_FILE"])
    (config_volume,) = [name for name, v in volumes.items() if v.config_map is not None]
    assert volumes[config_volume].config_map.name == config_map["metadata"]["name"]
    assert env_file.parent == Path(mounts[config_volume]) and env_file.name in config_map["data"]
    (reports_volume,) = [name for name, v in volumes.items() if v.persistent_volume_claim is not None]
    assert volumes[reports_volume].persistent_volume_claim.claim_name == claim["metadata"]["name"]
    assert mounts[reports_volume] == env["OPSVERIFY_REPORTS_DIR"]
    # secrets come from an optional Secret, never from a literal value in the manifest
    assert [(s.secret_ref.name, s.secret_ref.optional) for s in container.env_from] == [("opsverify-secrets", True)]
    assert all(e.value_from is None or e.value_from.secret_key_ref is None or e.value_from.secret_key_ref.optional
               for e in container.env)


def test_the_configmap_environment_file_is_a_valid_environment_checking_its_own_cluster(tmp_path):
    text = the("ConfigMap")["data"]["environment.yaml"]
    path = tmp_path / "environment.yaml"
    path.write_text(text)
    environment = load_environment(path)
    (cluster,) = environment.targets("kubernetes")
    assert cluster.in_cluster is True
    assert {safety.value for safety in environment.allowed} == {"read_only"}   # production: reads only


def test_the_configmap_check_catches_a_broken_environment_file(tmp_path):
    text = the("ConfigMap")["data"]["environment.yaml"].replace("in_cluster: true", "in_cluster: true\n    context: prod")
    path = tmp_path / "environment.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="in_cluster: true uses the pod's service account"):
        load_environment(path)


def test_containerfile_copies_what_exists_and_runs_the_entrypoint():
    text = containerfile()
    copies = re.findall(r"^COPY (?:--\S+ )*(.+) (\S+)$", text, re.M)
    assert copies
    for sources, _dest in copies:
        for source in sources.split():
            assert (ROOT / source).exists(), f"Containerfile copies {source}, which does not exist"
    (dest,) = [dest for sources, dest in copies if "deploy/entrypoint.sh" in sources]
    assert re.search(rf'^ENTRYPOINT \["{re.escape(dest)}"\]$', text, re.M)
    assert os.access(DEPLOY / "entrypoint.sh", os.X_OK)
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.M)


def test_entrypoint_passes_shellcheck():
    proc = subprocess.run([tool("shellcheck"), "-s", "sh", str(DEPLOY / "entrypoint.sh")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout


# --- the entrypoint, for real, with a real Pushgateway --------------------------------------------------

@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = ManagedProcess.start([tool("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}"],
                                log_path=tmp_path_factory.mktemp("pushgateway") / "pushgateway.log",
                                name="pushgateway")
    try:
        proc.wait_for_port("127.0.0.1", port, timeout_s=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def healthy_api(demo: Any) -> dict[str, Any]:
    """The demo service's health endpoint, with a latency budget no loaded machine misses."""
    return {"name": "api", "url": demo.url("/healthz"), "max_latency_ms": {"warn": 30000, "critical": 60000}}


def entrypoint(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy/entrypoint.sh from the project root (the image's WORKDIR), with this venv's python."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("OPSVERIFY_", "PYTEST_", "PUSHGATEWAY")) and k != "GITHUB_STEP_SUMMARY"}
    base["PATH"] = f"{Path(sys.executable).parent}:{base['PATH']}"
    return subprocess.run(["sh", str(DEPLOY / "entrypoint.sh")], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=300, check=False)


def pushed(pushgateway: str, metric: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = httpx.get(f"{pushgateway}/metrics", timeout=10).text
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples if s.name == metric}


def test_entrypoint_runs_the_checks_writes_reports_and_pushes_metrics(demo, pushgateway, tmp_path):
    env_file = write_env(tmp_path, {"http": [healthy_api(demo)]}, name="incluster-ok")
    reports = tmp_path / "reports"
    proc = entrypoint(tmp_path, {"OPSVERIFY_ENV_FILE": str(env_file), "OPSVERIFY_REPORTS_DIR": str(reports),
                                 "PUSHGATEWAY_URL": pushgateway + "/"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert f"opsverify: pytest exited 0; reports in {reports}" in proc.stdout
    assert "opsverify: pushed" in proc.stdout and "(job=opsverify, env=incluster-ok)" in proc.stdout
    assert {"summary.json", "junit.xml", "metrics.prom"} <= {p.name for p in reports.iterdir()}
    success = pushed(pushgateway, "opsverify_check_success")
    mine = {labels: value for labels, value in success.items() if ("env", "incluster-ok") in labels}
    assert mine and set(mine.values()) == {1.0}
    assert all(("job", "opsverify") in labels for labels in mine)


def test_entrypoint_exits_1_on_a_failing_check_and_still_pushes(demo, pushgateway, tmp_path):
    env_file = write_env(tmp_path, {"http": [{**healthy_api(demo), "url": demo.url("/status/503")}]}, name="incluster-bad")
    proc = entrypoint(tmp_path, {"OPSVERIFY_ENV_FILE": str(env_file), "OPSVERIFY_REPORTS_DIR": str(tmp_path / "r"),
                                 "PUSHGATEWAY_URL": pushgateway, "OPSVERIFY_MARKERS": "smoke"})
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert "got HTTP 503" in proc.stdout
    status = {dict(labels)["check"]: value for labels, value in pushed(pushgateway, "opsverify_check_success").items()
              if ("env", "incluster-bad") in labels}
    assert status["test_endpoint_returns_expected_status"] == 0.0


def test_entrypoint_reports_an_unreachable_pushgateway_and_keeps_pytests_exit_code(demo, tmp_path):
    env_file = write_env(tmp_path, {"http": [healthy_api(demo)]}, name="incluster-nopush")
    closed = f"http://user:hunter2@127.0.0.1:{demo.closed}"
    proc = entrypoint(tmp_path, {"OPSVERIFY_ENV_FILE": str(env_file), "OPSVERIFY_REPORTS_DIR": str(tmp_path / "r"),
                                 "PUSHGATEWAY_URL": closed})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "opsverify: pushing" in proc.stderr and "to the Pushgateway failed" in proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr


def test_the_image_files_are_enough_for_a_run_that_writes_nothing_into_them(demo, tmp_path):
    """What the Containerfile copies, and only that, laid out as in the image and mounted read-only
    (a bind mount in a user+mount namespace: read-only even for root), runs the checks: nothing is
    missing from the image, and a run writes only to the reports directory, as the CronJob's
    read-only root filesystem demands. (No container engine runs here: the kind job of
    kubernetes-kind.yml builds and runs the real image.)"""
    image = tmp_path / "opt-opsverify"
    image.mkdir()
    for sources, _dest in re.findall(r"^COPY (?!--chmod)(.+) (\S+)$", containerfile(), re.M):
        for source in sources.split():
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, image / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, image / source)
    env_file = write_env(tmp_path, {"http": [healthy_api(demo)]}, name="image-ro")
    reports, home = tmp_path / "reports", tmp_path / "home"
    home.mkdir()
    script = (f'mount --bind "{image}" "{image}" && mount -o remount,bind,ro "{image}" "{image}" || exit 98; '
              f'if touch "{image}/probe" 2>/dev/null; then echo "the copy is writable"; exit 99; fi; '
              f'cd "{image}" && exec sh "{DEPLOY / "entrypoint.sh"}"')
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPSVERIFY_", "PYTEST_", "PUSHGATEWAY"))}
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300, check=False,
        env={**base, "PATH": f"{Path(sys.executable).parent}:{base['PATH']}", "HOME": str(home),
             "PYTHONDONTWRITEBYTECODE": "1", "OPSVERIFY_ENV_FILE": str(env_file),
             "OPSVERIFY_REPORTS_DIR": str(reports)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert {"summary.json", "junit.xml", "metrics.prom"} <= {p.name for p in reports.iterdir()}
    records = json.loads((reports / "summary.json").read_text())["checks"]
    ran = {r["check"]: r["outcome"] for r in records if r["env"] == "image-ro"}
    assert ran.get("test_endpoint_returns_expected_status") == "passed", ran
    assert set(ran.values()) == {"passed"}, ran


def test_entrypoint_without_an_environment_is_a_usage_error(tmp_path):
    proc = entrypoint(tmp_path, {})
    assert proc.returncode == 4
    assert "set OPSVERIFY_ENV_FILE (an environment file) or OPSVERIFY_ENV" in proc.stderr


# --- alert rules --------------------------------------------------------------------------------------

def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def test_alert_rules_pass_promtool_check():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 5 rules found" in proc.stdout


def test_alert_rules_pass_their_promtool_unit_tests():
    proc = promtool("test", "rules", str(RULES_TEST))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_rejects_a_broken_rule(tmp_path):
    rules = yaml.safe_load(RULES.read_text())
    rules["groups"][0]["rules"][0]["expr"] = "opsverify_check_success =="
    broken = tmp_path / "rules.yaml"
    broken.write_text(yaml.safe_dump(rules))
    proc = promtool("check", "rules", str(broken))
    assert proc.returncode == 1
    assert 'could not parse expression' in proc.stdout + proc.stderr and '"OpsverifyCheckFailing"' in proc.stdout + proc.stderr
    rules["groups"][0]["rules"][0]["expr"] = "opsverify_check_success == 0"
    rules["groups"][0]["rules"][0]["annotations"]["summary"] = "{{ $labels.check "
    broken.write_text(yaml.safe_dump(rules))
    proc = promtool("check", "rules", str(broken))
    assert proc.returncode == 1 and "template" in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr


def test_alert_rules_use_only_series_and_labels_that_metrics_prom_has(real_metrics):
    families = {f.name: f for f in text_string_to_metric_families(real_metrics["metrics"])}
    text = RULES.read_text()
    used = set(re.findall(r"\bopsverify_[a-z_]+\b", text))
    assert used and used <= set(families), f"the rules use {sorted(used - set(families))}, which metrics.prom lacks"
    labels = {label for family in families.values() for s in family.samples for label in s.labels}
    referenced = set(re.findall(r"\$labels\.(\w+)", text)) | {
        label.strip() for group in re.findall(r"by \(([^)]*)\)", text) for label in group.split(",")}
    assert referenced <= labels, f"the rules use the labels {sorted(referenced - labels)}, which metrics.prom lacks"


@pytest.fixture(scope="module")
def real_metrics(demo, tmp_path_factory) -> dict[str, Any]:
    """A real run (staging thresholds) against the demo service: one healthy endpoint, one failing
    (HTTP 503), one that cannot be reached (closed port, an error), and a certificate 20 days from
    expiry (passes with a warning: staging warns at 30 days)."""

    tmp = tmp_path_factory.mktemp("metrics-run")
    run = run_checks(tmp, {
        "tier": "staging",
        "http": [healthy_api(demo),
                 {"name": "broken", "url": demo.url("/status/503")},
                 {"name": "gone", "url": f"http://127.0.0.1:{demo.closed}/healthz", "timeout_s": 3}],
        "tls": [demo.tls("warning")],
    }, "-m", "smoke", "-k", "expected_status or close_to_expiry")
    assert run.summary is not None, run.stdout[-3000:]
    return {"metrics": (run.reports / "metrics.prom").read_text(), "records": run.records}


def test_alert_rules_fire_on_a_real_runs_metrics(real_metrics, tmp_path):
    """promtool evaluates the rules (annotations left out: promtool compares them verbatim, and
    opsverify-rules.test.yaml covers their text) over the real run's series held for 90 minutes."""
    records = real_metrics["records"]
    outcome = {(r["check"], r["target"]): r["outcome"] for r in records}
    assert outcome[("test_endpoint_returns_expected_status", "broken")] == "failed"
    assert outcome[("test_endpoint_returns_expected_status", "gone")] == "error"
    assert outcome[("test_certificate_is_not_close_to_expiry", "warning")] == "passed"

    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    series = []
    for family in text_string_to_metric_families(real_metrics["metrics"]):
        for sample in family.samples:
            if sample.name == "opsverify_run_timestamp_seconds":
                continue   # its staleness rule is about wall time: opsverify-rules.test.yaml covers it
            labels = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(sample.labels.items()))
            series.append({"series": f"{sample.name}{{{labels}}}", "values": f"{sample.value:g}x90"})

    def check_labels(r: dict[str, Any]) -> dict[str, str]:
        labels = {"env": r["env"], "system": r["system"], "check": r["check"], "target": r["target"], "item": r["item"]}
        return {k: v for k, v in labels.items() if v}   # Prometheus has no empty labels

    failing = [{"exp_labels": {**check_labels(r), "severity": "page"}} for r in records if r["outcome"] == "failed"]
    errors = [{"exp_labels": {**check_labels(r), "severity": "ticket"}} for r in records if r["outcome"] == "error"]
    expiring = [{"exp_labels": {**check_labels(r), "measure": measure_name(m["name"]), "unit": "d", "severity": "ticket"}}
                for r in records if r["check"] == "test_certificate_is_not_close_to_expiry"
                for m in r["measured"] if m.get("unit") == "d" and m["value"] < 21]
    assert len(failing) == 1 and len(errors) == 1 and len(expiring) == 1, records
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "OpsverifyCheckFailing", "exp_alerts": []},   # not yet 30 minutes
            {"eval_time": "31m", "alertname": "OpsverifyCheckFailing", "exp_alerts": failing},
            {"eval_time": "31m", "alertname": "OpsverifyCouldNotVerify", "exp_alerts": errors},
            {"eval_time": "5m", "alertname": "OpsverifyCertificateExpiresSoon", "exp_alerts": expiring},
        ],
    }]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # and the same test fails when the rule does not fire for the failed check
    rules["groups"][0]["rules"][0]["expr"] = "opsverify_check_success == 0 and opsverify_check_error == 1"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    proc = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert 'alertname: OpsverifyCheckFailing' in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# --- continuous mode: the serve Deployment, its Service and the scrape configs -----------------------

def serve_container() -> Any:
    deployment = to_model(the("Deployment"))
    (container,) = deployment.spec.template.spec.containers
    return deployment, container


def test_serve_deployment_runs_opsverify_serve_as_the_read_only_identity_with_a_read_only_root():
    deployment, container = serve_container()
    pod = deployment.spec.template.spec
    assert deployment.spec.replicas == 1 and deployment.spec.strategy.type == "Recreate"  # never two runs at once
    assert pod.service_account_name == the("ServiceAccount")["metadata"]["name"]
    assert deployment.metadata.namespace == the("ServiceAccount")["metadata"]["namespace"]
    assert pod.security_context.run_as_non_root is True
    sc = container.security_context
    assert (sc.read_only_root_filesystem, sc.allow_privilege_escalation, sc.capabilities.drop) == (True, False, ["ALL"])
    assert "/tmp" in {m.mount_path for m in container.volume_mounts}
    assert container.command == ["opsverify", "serve"]
    assert [(s.secret_ref.name, s.secret_ref.optional) for s in container.env_from] == [("opsverify-secrets", True)]
    assert not container.env, "serve takes its settings as arguments; secrets only from the optional Secret"


def test_serve_deployment_arguments_are_valid_serve_arguments_reading_the_configmap(tmp_path):
    """The Deployment's args parse with serve's own parser and settings; the port, probes and ConfigMap agree."""
    import argparse

    from opsverify.commands.serve import _args
    from opsverify.serve.settings import ServeSettings

    deployment, container = serve_container()
    parser = argparse.ArgumentParser()
    _args(parser)
    args = parser.parse_args(container.args)
    env_file = Path(args.env_file[0])
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    volumes = {v.name: v for v in deployment.spec.template.spec.volumes}
    (config_volume,) = [name for name, v in volumes.items() if v.config_map is not None]
    config_map = the("ConfigMap")
    assert volumes[config_volume].config_map.name == config_map["metadata"]["name"]
    assert env_file.parent == Path(mounts[config_volume]) and env_file.name in config_map["data"]
    # the image's project root, as the Containerfile lays it out, and the environment file at hand
    workdir = re.search(r"^WORKDIR (\S+)$", containerfile(), re.M)
    assert workdir and Path(args.root) == Path(workdir[1])
    (tmp_path / "checks").mkdir()
    local_env = tmp_path / env_file.name
    local_env.write_text(config_map["data"][env_file.name])
    args.root, args.env_file = tmp_path, [str(local_env)]
    settings = ServeSettings.from_args(args)
    assert settings.host == "0.0.0.0" and settings.markexpr == "smoke" and settings.interval_s == 60
    (port,) = container.ports
    assert port.container_port == settings.port and port.name == "metrics"
    assert container.readiness_probe.http_get.path == "/healthz"
    assert container.liveness_probe.http_get.path == "/livez"
    assert {container.readiness_probe.http_get.port, container.liveness_probe.http_get.port} == {"metrics"}


def test_service_and_scrape_configs_select_the_serve_pods():
    deployment, container = serve_container()
    service = the("Service")
    pod_labels = deployment.spec.template.metadata.labels
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["publishNotReadyAddresses"] is True  # a failing check must still be scraped
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == container.ports[0].name
    monitor = yaml.safe_load((DEPLOY / "monitoring" / "servicemonitor.yaml").read_text())
    assert monitor["kind"] == "ServiceMonitor" and monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [port["name"]]
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}
    scrape = yaml.safe_load((DEPLOY / "monitoring" / "prometheus-scrape.yaml").read_text())
    (job,) = scrape["scrape_configs"]
    (static,) = job["static_configs"]
    assert static["targets"] == [f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{port['port']}"]
    assert job["metrics_path"] == "/metrics"


def test_the_plain_prometheus_scrape_config_is_valid_for_promtool(tmp_path):
    config = tmp_path / "prometheus.yml"
    config.write_text((DEPLOY / "monitoring" / "prometheus-scrape.yaml").read_text())
    done = promtool("check", "config", "--syntax-only", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
