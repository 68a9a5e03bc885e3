"""``kubernetes:`` section: clusters and the objects in them that must be healthy.

Its keys: ``docs/environment/reference.md#kubernetes``;
an example and its checks: ``docs/environment/kubernetes.md``.

Item names must be unique within each list (they name the check); to watch two objects with the
same name in different namespaces, use one target per namespace.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from opsverify.config.base import Strict, Target, section, threshold_or
from opsverify.config.thresholds import MaxCount, MaxDays, MaxMinutes, MinDays, Threshold

K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
DEFAULT_RESTARTS = Threshold(warn=2, critical=5)
DEFAULT_MINUTES_AT_MAX = Threshold(warn=10, critical=30)
ROTATION_ANNOTATION = "opsverify.io/rotated-at"


class _Item(Strict):
    name: str = Field(pattern=K8S_NAME, max_length=253)
    namespace: str | None = Field(default=None, pattern=K8S_NAME, description="default: the target's namespace")


class Workload(_Item):
    """A Deployment, StatefulSet or DaemonSet that must be fully ready, with healthy pods."""

    kind: Literal["Deployment", "StatefulSet", "DaemonSet"] = "Deployment"
    max_restarts: MaxCount | None = None
    linkerd: bool = Field(default=False, description="its pods must carry the Linkerd proxy")
    min_replicas: int = Field(
        default=1, ge=0, le=100_000,
        description="desired replicas (DaemonSet: scheduled pods) it must have; 0: it may be scaled to zero",
    )


class Certificate(_Item):
    """A cert-manager ``Certificate`` (cert-manager.io/v1) that must be Ready and not expiring."""

    min_days: MinDays | None = None


class LinkerdIdentity(Strict):
    """Where the Linkerd identity issuer certificate lives (``crt.pem`` or ``tls.crt``)."""

    namespace: str = Field(default="linkerd", pattern=K8S_NAME)
    secret: str = Field(default="linkerd-identity-issuer", pattern=K8S_NAME)
    min_days: MinDays | None = None


class LinkerdTrustAnchor(Strict):
    """Where the Linkerd trust anchor bundle lives: a ConfigMap key holding one or more PEM roots."""

    namespace: str = Field(default="linkerd", pattern=K8S_NAME)
    configmap: str = Field(default="linkerd-identity-trust-roots", pattern=K8S_NAME)
    key: str = "ca-bundle.crt"
    min_days: MinDays | None = None


class SecretAge(_Item):
    """A Secret whose age (since rotation, else since creation) must stay below a maximum."""

    max_age_days: MaxDays | None = None
    rotated_annotation: str | None = Field(
        default=None, description=f"annotation holding the last rotation time (default {ROTATION_ANNOTATION})"
    )


class Hpa(_Item):
    """A HorizontalPodAutoscaler (autoscaling/v2): replicas within bounds, not stuck at its maximum."""

    max_minutes_at_max: MaxMinutes | None = None


class KubernetesTarget(Target):
    """A Kubernetes cluster reached with the official client (kubeconfig or in-cluster)."""

    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    namespace: str = Field(default="default", pattern=K8S_NAME)
    max_restarts: MaxCount | None = None
    rotation_annotation: str = ROTATION_ANNOTATION
    workloads: list[Workload] = Field(default_factory=list)
    certificates: list[Certificate] = Field(default_factory=list)
    linkerd_identity: LinkerdIdentity | None = None
    linkerd_trust_anchor: LinkerdTrustAnchor | None = None
    secrets: list[SecretAge] = Field(default_factory=list)
    hpas: list[Hpa] = Field(default_factory=list)
    crds: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> KubernetesTarget:
        if self.in_cluster and (self.kubeconfig or self.context):
            raise ValueError("in_cluster: true uses the pod's service account; drop kubeconfig/context")
        for field in ("workloads", "certificates", "secrets", "hpas", "crds"):
            seen: set[str] = set()
            for index, item in enumerate(getattr(self, field)):
                name = item if isinstance(item, str) else item.name
                if name in seen:
                    raise ValueError(
                        f"{field}[{index}]: {name!r} is listed twice (names must be unique per list; "
                        "use one target per namespace for same-named objects)"
                    )
                seen.add(name)
        return self

    @property
    def meshed_workloads(self) -> list[Workload]:
        """The workloads that must have the Linkerd proxy injected (``linkerd: true``)."""
        return [w for w in self.workloads if w.linkerd]

    def namespace_of(self, item: _Item) -> str:
        return item.namespace or self.namespace

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        self.max_restarts = threshold_or(self.max_restarts, DEFAULT_RESTARTS)
        for workload in self.workloads:
            workload.max_restarts = threshold_or(workload.max_restarts, self.max_restarts)
        for cert in self.certificates:
            cert.min_days = threshold_or(cert.min_days, defaults.tls_min_days)
        if self.linkerd_identity is not None:
            self.linkerd_identity.min_days = threshold_or(self.linkerd_identity.min_days, defaults.tls_min_days)
        if self.linkerd_trust_anchor is not None:
            self.linkerd_trust_anchor.min_days = threshold_or(self.linkerd_trust_anchor.min_days, defaults.tls_min_days)
        for secret in self.secrets:
            secret.max_age_days = threshold_or(
                secret.max_age_days, Threshold(critical=defaults.max_credential_age_days)
            )
            secret.rotated_annotation = secret.rotated_annotation or self.rotation_annotation
        for hpa in self.hpas:
            hpa.max_minutes_at_max = threshold_or(hpa.max_minutes_at_max, DEFAULT_MINUTES_AT_MAX)


section(
    "kubernetes",
    KubernetesTarget,
    system="kubernetes",
    doc="Kubernetes: workloads ready, pods healthy, cert-manager and Linkerd certificates, "
    "proxy injection, secret age, HPAs, CRDs",
)
