"""Kubernetes probes: what the API server reports about workloads, pods, certificates, secrets, HPAs, CRDs.

The official ``kubernetes`` client is synchronous: every call runs in the engine's worker threads
(``ctx.run_sync``) with ``_request_timeout`` set to what is left of the probe's timeout, and without
urllib3 retries. Responses are read as plain JSON (``_preload_content=False``), so the facts below
are built from exactly what the server sent.

Errors are translated here: refused / DNS / TLS failures are :class:`Unreachable`, stalls are
:class:`ProbeTimeout`, 401/403/5xx are :class:`UnexpectedResponse` (a 403 names the RBAC manifest),
a missing kubeconfig is :class:`SecretMissing`. A 404 for the object a check is about is *data*
(``found=False``): a missing Deployment is a failed check, not an error.

Every item probe first awaits ``kubernetes_api`` (one ``GET /version/`` per target), so an
unreachable cluster errors every check once with the same cause.

Example::

    workload = await workload_status(ctx)     # ctx.target: KubernetesTarget, ctx.key.item: "gateway"
    workload.ready, workload.desired, workload.backoff
"""

from __future__ import annotations

from opsverify.probes.kubernetes.facts import (
    BACKOFF_REASONS, INJECT_ANNOTATION, PROXY_CONTAINER, ApiInfo, ContainerStatus, PodFacts, WorkloadFacts,
    CertificateFacts, IssuerFacts, SecretAgeFacts, HpaFacts, CrdFacts, TrustAnchorFacts,
)
from opsverify.probes.kubernetes.client import (
    API_PROBE, METADATA_ONLY, api_client, api_info,
)
from opsverify.probes.kubernetes.workloads import (
    workload_status, hpa_status, crds_present,
)
from opsverify.probes.kubernetes.certificates import (
    ISSUER_KEYS, certificate_status, linkerd_issuer, linkerd_trust_anchor, secret_age,
)

__all__ = [
    "API_PROBE", "BACKOFF_REASONS", "INJECT_ANNOTATION", "PROXY_CONTAINER", "METADATA_ONLY", "ISSUER_KEYS",
    "ApiInfo", "ContainerStatus", "PodFacts", "WorkloadFacts", "CertificateFacts", "IssuerFacts",
    "SecretAgeFacts", "HpaFacts", "CrdFacts", "api_client", "api_info", "workload_status",
    "certificate_status", "linkerd_issuer", "TrustAnchorFacts", "linkerd_trust_anchor", "secret_age",
    "hpa_status", "crds_present",
]
