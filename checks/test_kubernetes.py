"""Kubernetes: workloads rolled out and healthy, certificates valid, mesh and secrets as the runbooks expect."""

from __future__ import annotations

import pytest

from opsverify.probes.kubernetes import BACKOFF_REASONS, INJECT_ANNOTATION, PROXY_CONTAINER

pytestmark = [pytest.mark.smoke, pytest.mark.predeploy]


def _listed(things, limit=5):
    shown = "; ".join(things[:limit])
    return shown + (f" (and {len(things) - limit} more)" if len(things) > limit else "")


@pytest.mark.runbook("kubernetes#api")
@pytest.mark.severity("critical")
def test_kubernetes_api_answers(kubernetes_api, target, expect):
    expect.fact("kubernetes_version", kubernetes_api.git_version)
    expect.that(
        kubernetes_api.not_kubernetes is None and kubernetes_api.git_version not in ("", "?"),
        expected=f"a version from {kubernetes_api.server}/version/",
        actual=kubernetes_api.not_kubernetes or "an answer without gitVersion",
        action="the kubeconfig's server address answers, but not as a Kubernetes API server: check the "
               "kubeconfig and context the checker uses (server URL, port, a proxy in between)",
    )


@pytest.mark.each("workloads")
@pytest.mark.runbook("kubernetes#workload-ready")
@pytest.mark.severity("critical")
def test_workload_is_ready(kubernetes_workload, target_item, expect):
    w = kubernetes_workload
    expect.that(w.found, expected=f"{w.ref} to exist", actual="not found")
    problems = []
    if w.desired < target_item.min_replicas:
        zero = "; set min_replicas: 0 if it may be scaled to zero" if w.desired == 0 else ""
        problems.append(f"{w.desired} desired replicas, fewer than min_replicas {target_item.min_replicas}{zero}")
    if not w.generation_current:
        problems.append(f"controller has observed generation {w.observed_generation} of {w.generation}")
    if w.ready < w.desired:
        problems.append(f"{w.ready}/{w.desired} ready")
    if w.updated is not None and w.updated < w.desired:
        problems.append(f"{w.updated}/{w.desired} updated to the current template")
    expect.that(
        not problems,
        expected=f"{w.ref} with {w.desired}/{w.desired} ready on its current generation"
        f" and at least {target_item.min_replicas} desired",
        actual="; ".join(problems),
    )


@pytest.mark.each("workloads")
@pytest.mark.runbook("kubernetes#pods-backoff")
@pytest.mark.severity("critical")
def test_workload_pods_are_not_in_backoff(kubernetes_workload, target_item, expect):
    w = kubernetes_workload
    expect.that(w.found, expected=f"{w.ref} to exist", actual="not found")
    stuck = [
        f"{s.pod}/{s.name} {s.waiting_reason}" + (f" ({s.waiting_message})" if s.waiting_message else "")
        for s in w.backoff
    ]
    expect.that(
        not stuck,
        expected=f"no container of {w.ref} waiting in {'/'.join(sorted(BACKOFF_REASONS))}",
        actual=_listed(stuck),
    )


@pytest.mark.each("workloads")
@pytest.mark.runbook("kubernetes#pod-restarts")
def test_workload_pod_restarts_are_below_threshold(kubernetes_workload, target_item, expect):
    w = kubernetes_workload
    expect.that(w.found, expected=f"{w.ref} to exist", actual="not found")
    top = w.most_restarted
    where = f" ({top.pod}/{top.name})" if top else ""
    expect.at_most(
        top.restarts if top else 0,
        target_item.max_restarts,
        what=f"restarts of the most restarted container of {w.ref}{where}",
    )


@pytest.mark.each("meshed_workloads")
@pytest.mark.runbook("kubernetes#linkerd-injection")
def test_workload_has_linkerd_proxy_injected(kubernetes_workload, target_item, expect):
    w = kubernetes_workload
    expect.that(w.found, expected=f"{w.ref} to exist", actual="not found")
    value, where = w.inject_annotation
    problems = []
    if value != "enabled":
        problems.append(f"{INJECT_ANNOTATION}={value!r} on the {where}" if value else f"no {INJECT_ANNOTATION} on the {where}")
    if w.pods and w.pods_without_proxy:
        missing = w.pods_without_proxy
        problems.append(f"{len(missing)}/{len(w.pods)} pods without a {PROXY_CONTAINER} container: {_listed(missing)}")
    elif not w.pods and PROXY_CONTAINER not in w.template_containers:
        expect.warn(f"{w.ref} has no pods: only the {INJECT_ANNOTATION} annotation could be verified")
    expect.that(
        not problems,
        expected=f"{w.ref} annotated {INJECT_ANNOTATION}=enabled and every pod running {PROXY_CONTAINER}",
        actual="; ".join(problems),
    )


@pytest.mark.each("certificates")
@pytest.mark.runbook("kubernetes#certificate-ready")
@pytest.mark.severity("critical")
def test_certificate_is_ready(kubernetes_certificate, target_item, expect):
    c = kubernetes_certificate
    ref = f"Certificate {c.namespace}/{c.name}"
    expect.that(c.found, expected=f"{ref} to exist", actual="not found")
    detail = ": ".join(x for x in (c.reason, c.message) if x)
    expect.that(
        c.ready == "True",
        expected=f"{ref} Ready=True",
        actual=f"Ready={c.ready or 'missing'}" + (f" ({detail})" if detail else ""),
    )


@pytest.mark.each("certificates")
@pytest.mark.runbook("kubernetes#certificate-expiry")
@pytest.mark.severity("critical")
def test_certificate_is_not_close_to_expiry(kubernetes_certificate, target_item, expect):
    c = kubernetes_certificate
    ref = f"Certificate {c.namespace}/{c.name}"
    expect.that(c.found, expected=f"{ref} to exist", actual="not found")
    expect.that(
        c.not_after is not None,
        expected=f"{ref} with status.notAfter",
        actual="no notAfter (never issued)",
    )
    expect.at_least(
        round(c.days_left, 1),
        target_item.min_days,
        what=f"days until {ref} expires ({c.not_after:%Y-%m-%d %H:%M} UTC)",
        unit="d",
    )


@pytest.mark.configured("linkerd_identity")
@pytest.mark.rotation
@pytest.mark.runbook("kubernetes#linkerd-issuer-expiry")
@pytest.mark.severity("critical")
def test_linkerd_identity_issuer_is_not_close_to_expiry(kubernetes_linkerd_issuer, target, expect):
    i = kubernetes_linkerd_issuer
    ref = f"Secret {i.namespace}/{i.secret}"
    expect.that(i.found, expected=f"{ref} holding the Linkerd identity issuer certificate", actual="not found")
    expect.that(i.problem is None, expected=f"{ref} holding a PEM certificate", actual=str(i.problem))
    expect.at_least(
        round(i.days_left, 1),
        target.linkerd_identity.min_days,
        what=f"days until the Linkerd identity issuer certificate ({i.subject}, {ref} {i.key}) "
        f"expires ({i.not_after:%Y-%m-%d %H:%M} UTC)",
        unit="d",
    )


@pytest.mark.configured("linkerd_trust_anchor")
@pytest.mark.rotation
@pytest.mark.runbook("kubernetes#linkerd-trust-anchor-expiry")
@pytest.mark.severity("critical")
def test_linkerd_trust_anchor_is_not_close_to_expiry(kubernetes_linkerd_trust_anchor, target, expect):
    a = kubernetes_linkerd_trust_anchor
    ref = f"ConfigMap {a.namespace}/{a.configmap}"
    expect.that(a.found, expected=f"{ref} holding the Linkerd trust anchor bundle", actual="not found")
    expect.that(a.problem is None, expected=f"{ref} holding PEM root certificates", actual=str(a.problem))
    subject, not_after = a.latest
    others = [f"{s} until {t:%Y-%m-%d}" for s, t in a.anchors[:-1]]
    expect.fact("trust_anchors", [f"{s} until {t:%Y-%m-%d %H:%M} UTC" for s, t in a.anchors])
    expect.at_least(
        round(a.days_left, 1),
        target.linkerd_trust_anchor.min_days,
        what=f"days until the Linkerd trust anchor ({subject}, {ref} {a.key}) expires ({not_after:%Y-%m-%d %H:%M} UTC)"
        + (f"; the bundle also holds {', '.join(others)}" if others else ""),
        unit="d",
    )


@pytest.mark.each("secrets")
@pytest.mark.rotation
@pytest.mark.runbook("kubernetes#secret-age")
def test_secret_is_younger_than_max_age(kubernetes_secret, target_item, expect):
    s = kubernetes_secret
    ref = f"Secret {s.namespace}/{s.name}"
    expect.that(s.found, expected=f"{ref} to exist", actual="not found")
    expect.that(s.problem is None, expected=f"{ref} with a readable age", actual=str(s.problem))
    expect.at_most(
        round(s.age_days, 1),
        target_item.max_age_days,
        what=f"age of {ref} (since its {s.source}, {s.since:%Y-%m-%d %H:%M} UTC)",
        unit="d",
    )


@pytest.mark.each("hpas")
@pytest.mark.runbook("kubernetes#hpa-bounds")
def test_hpa_replicas_are_within_bounds(kubernetes_hpa, target_item, expect):
    h = kubernetes_hpa
    ref = f"HorizontalPodAutoscaler {h.namespace}/{h.name}"
    expect.that(h.found, expected=f"{ref} to exist", actual="not found")
    expect.that(h.current is not None, expected=f"{ref} with status.currentReplicas",
                actual="no status yet (not reconciled by the HPA controller)")
    expect.that(
        h.min_replicas <= h.current <= h.max_replicas,
        expected=f"{ref} between {h.min_replicas} and {h.max_replicas} replicas",
        actual=f"{h.current} replicas",
    )


@pytest.mark.each("hpas")
@pytest.mark.runbook("kubernetes#hpa-pinned")
def test_hpa_is_not_pinned_at_max(kubernetes_hpa, target_item, expect):
    h = kubernetes_hpa
    ref = f"HorizontalPodAutoscaler {h.namespace}/{h.name}"
    expect.that(h.found, expected=f"{ref} to exist", actual="not found")
    since, source = h.at_max_since
    expect.fact("at_max_since", since.isoformat() if since else None)
    what = f"minutes {ref} has been at maxReplicas {h.max_replicas}"
    if since is not None:
        wants = "; metrics ask for more (ScalingLimited: TooManyReplicas)" if h.wants_more else ""
        what += f" (since its {source} {since:%Y-%m-%d %H:%M} UTC{wants})"
    expect.at_most(round(h.minutes_at_max, 1), target_item.max_minutes_at_max, what=what, unit="min")


@pytest.mark.configured("crds")
@pytest.mark.runbook("kubernetes#crds")
def test_required_crds_are_installed(kubernetes_crds, target, expect):
    expect.that(
        not kubernetes_crds.missing,
        expected=f"CRDs {', '.join(target.crds)} installed",
        actual="missing " + ", ".join(kubernetes_crds.missing),
    )
