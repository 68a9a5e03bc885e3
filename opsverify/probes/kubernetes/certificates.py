"""Kubernetes certificate and secret probes: a cert-manager Certificate's status, the Linkerd
identity issuer and trust anchor, and how old a Secret is.
"""

from __future__ import annotations

import base64
import binascii

from cryptography import x509

from opsverify.config.kubernetes import Certificate, KubernetesTarget, SecretAge
from opsverify.engine import ProbeContext
from opsverify.probes.kubernetes.client import _Calls, _item, _one_line, METADATA_ONLY
from opsverify.probes.kubernetes.facts import _parse_time, CertificateFacts, IssuerFacts, SecretAgeFacts, TrustAnchorFacts


ISSUER_KEYS = ("crt.pem", "tls.crt")


async def certificate_status(ctx: ProbeContext[KubernetesTarget]) -> CertificateFacts:
    """A cert-manager ``Certificate`` (cert-manager.io/v1): Ready condition, notAfter, renewalTime."""
    target = ctx.target
    item: Certificate = _item(ctx, "certificates")
    namespace = target.namespace_of(item)
    calls = await _Calls.open(ctx)
    obj = await calls.get(
        f"reading Certificate {namespace}/{item.name}",
        "CustomObjectsApi", "get_namespaced_custom_object", "cert-manager.io", "v1", namespace, "certificates", item.name,
    )
    facts = CertificateFacts(namespace=namespace, name=item.name, found=obj is not None)
    if obj is None:
        return facts
    status = obj.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            facts.ready = condition.get("status")
            facts.reason = condition.get("reason")
            facts.message = _one_line(condition["message"], 200) if condition.get("message") else None
    facts.not_after = _parse_time(status.get("notAfter"))
    facts.renewal_time = _parse_time(status.get("renewalTime"))
    return facts


async def linkerd_issuer(ctx: ProbeContext[KubernetesTarget]) -> IssuerFacts:
    """The Linkerd identity issuer certificate (``crt.pem`` or ``tls.crt`` of its Secret).

    Only the certificate is decoded; the private key in the same Secret is never looked at.
    """
    target = ctx.target
    where = target.linkerd_identity
    assert where is not None
    calls = await _Calls.open(ctx)
    obj = await calls.get(
        f"reading Secret {where.namespace}/{where.secret}",
        "CoreV1Api", "read_namespaced_secret", where.secret, where.namespace,
    )
    facts = IssuerFacts(namespace=where.namespace, secret=where.secret, found=obj is not None)
    if obj is None:
        return facts
    data = obj.get("data") or {}
    key = next((k for k in ISSUER_KEYS if data.get(k)), None)
    if key is None:
        facts.problem = f"the Secret has neither {' nor '.join(ISSUER_KEYS)}"
        return facts
    facts.key = key
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(data[key]))
    except (ValueError, binascii.Error) as exc:
        facts.problem = f"{key} is not a PEM certificate ({_one_line(exc, 80)})"
        return facts
    facts.subject = cert.subject.rfc4514_string()
    facts.not_after = cert.not_valid_after_utc
    return facts


async def linkerd_trust_anchor(ctx: ProbeContext[KubernetesTarget]) -> TrustAnchorFacts:
    """The trust anchor bundle (a ConfigMap key of PEM roots; public certificates only)."""
    target = ctx.target
    where = target.linkerd_trust_anchor
    assert where is not None
    calls = await _Calls.open(ctx)
    obj = await calls.get(
        f"reading ConfigMap {where.namespace}/{where.configmap}",
        "CoreV1Api", "read_namespaced_config_map", where.configmap, where.namespace,
    )
    facts = TrustAnchorFacts(where.namespace, where.configmap, where.key, found=obj is not None)
    if obj is None:
        return facts
    pem = (obj.get("data") or {}).get(where.key)
    if not pem:
        facts.problem = f"the ConfigMap has no {where.key}"
        return facts
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        facts.problem = f"{where.key} is not a PEM certificate bundle ({_one_line(exc, 80)})"
        return facts
    facts.anchors = sorted(((c.subject.rfc4514_string(), c.not_valid_after_utc) for c in certs), key=lambda a: a[1])
    return facts


async def secret_age(ctx: ProbeContext[KubernetesTarget]) -> SecretAgeFacts:
    """A Secret's metadata only (``PartialObjectMetadata``): rotation annotation, creation time."""
    target = ctx.target
    item: SecretAge = _item(ctx, "secrets")
    namespace = target.namespace_of(item)
    annotation = item.rotated_annotation or target.rotation_annotation
    calls = await _Calls.open(ctx)
    obj = await calls.get(
        f"reading Secret {namespace}/{item.name} (metadata)",
        "CoreV1Api", "read_namespaced_secret", item.name, namespace, _headers=dict(METADATA_ONLY),
    )
    facts = SecretAgeFacts(namespace=namespace, name=item.name, found=obj is not None, annotation=annotation)
    if obj is None:
        return facts
    meta = obj.get("metadata") or {}
    rotated = (meta.get("annotations") or {}).get(annotation)
    if rotated:
        facts.since = _parse_time(rotated)
        facts.source = f"annotation {annotation}"
        if facts.since is None:
            facts.problem = f"annotation {annotation}={_one_line(rotated, 60)!r} is not an RFC 3339 time"
        return facts
    facts.since = _parse_time(meta.get("creationTimestamp"))
    facts.source = "creation time"
    if facts.since is None:
        facts.problem = "the Secret has no creationTimestamp"
    return facts
