"""The project's own runbooks against the five source runbooks: every procedure the issue lists has
its steps, every verifiable step has a check (`opsverify runbooks --fail-uncovered` passes), and
every step id a runbook's prose points to exists.

(The source -> step -> check mapping itself is kept in the issue notes; this pins the outcome.)
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from opsverify.coverage import coverage
from opsverify.runbooks import load_runbooks
from tests.harness import ROOT

# one or more step ids per procedure of the source runbooks (the rotation procedures they describe)
PROCEDURES = {
    "NATS creds rotation": ["nats#rotation-new", "nats#rotation-overlap", "nats#revoke-old-users", "nats#permissions"],
    "Restate token rotation": ["restate#token-accepted", "restate#token-old-removed", "restate#token-age"],
    "CA provisioner password": ["certs#provisioner-password", "kubernetes#certificate-ready"],
    "Cloudflare API token": ["tokens#active", "tokens#expiry"],
    "observability API key": ["telemetry#key-accepted", "telemetry#retired-key-rejected"],
    "scaling with rate limits and WebSockets": ["ops#scaling-record", "ratelimit#limit-enforced",
                                                "websocket#connection-cap", "kubernetes#hpa-bounds"],
    "incident response": ["ops#incident-review", "auth#revoke", "slo#counter-rate"],
    "health checks": ["platform#http-status", "platform#http-content"],
    "Kafka": ["kafka#topic-exists", "kafka#consumer-lag"],
    "approvals and webhooks": ["webhooks#signed-accepted", "webhooks#bad-signature", "webhooks#missing-tenant"],
    "backups": ["datastores#backup-recent", "datastores#backup-retention", "storage#backup-fresh"],
    "key rotation": ["auth#api-key-rotation", "auth#signing-key-rotation", "ops#cosign-keys", "vault#token-rotation"],
    "deploy procedure and checklist": ["ops#e2e-flow", "ops#rollback-plan", "datastores#migrations-pending",
                                       "slo#latency"],
    "Vault sealed / unavailable / lease failures": ["vault#sealed", "vault#raft-leader", "vault#lease-ttl"],
    "Linkerd certificates and injection": ["kubernetes#linkerd-issuer-expiry", "kubernetes#linkerd-trust-anchor-expiry",
                                           "kubernetes#linkerd-injection"],
    "contract checks": ["contracts#can-i-deploy", "contracts#broker-heartbeat"],
    "emergency procedures": ["ops#revoke-all-leases", "ops#vault-restore"],
}
STEP_REF = re.compile(r"(?<![\w/.-])([a-z][a-z0-9_]*#[a-z0-9][a-z0-9_.-]*[a-z0-9])")


@pytest.mark.parametrize("procedure", sorted(PROCEDURES))
def test_each_source_procedure_has_its_steps(procedure: str) -> None:
    book = load_runbooks(ROOT / "runbooks")
    missing = [step for step in PROCEDURES[procedure] if step not in book]
    assert missing == [], f"{procedure}: no runbook step {', '.join(missing)}"


def test_every_verifiable_step_is_covered_by_a_check() -> None:
    report = coverage(ROOT / "runbooks", ROOT / "checks")
    assert report.uncovered == [] and report.unknown == {}
    proc = subprocess.run([sys.executable, "-m", "opsverify", "runbooks", "--fail-uncovered"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "verifiable steps covered (100.0%)" in proc.stdout


def test_manual_steps_say_why_and_what_proves_the_outcome() -> None:
    book = load_runbooks(ROOT / "runbooks")
    ops = [s for s in book.steps.values() if s.id.startswith("ops#")]
    assert ops and all(s.manual for s in ops)  # the operations runbook only adds human steps
    for step in book.steps.values():
        if step.manual:
            assert len(step.manual) > 40, f"{step.id}: say why no check can verify it"


def test_every_step_id_the_prose_points_to_exists() -> None:
    book = load_runbooks(ROOT / "runbooks")
    dangling = []
    for path in sorted((ROOT / "runbooks").glob("*.md")):
        for match in STEP_REF.finditer(path.read_text()):
            if match.group(1) not in book:
                dangling.append(f"{path.name}: {match.group(1)}")
    assert dangling == []


def test_the_operations_runbook_orders_its_procedures_like_the_sources() -> None:
    book = load_runbooks(ROOT / "runbooks")
    procedures = [p.split(" / ", 1)[1] for p in book.procedures if p.startswith("Operations")]
    assert procedures[:4] == ["Scaling for HTTP and WebSocket traffic", "Incident response",
                              "Deploy procedure and pre-production checklist", "Key and secret rotation"]
