"""Kubernetes facts: what the API server reported about a workload and its pods, a
cert-manager Certificate, the Linkerd issuer and trust anchor, a Secret's age, an HPA and CRDs, as the
checks read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


BACKOFF_REASONS = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError"}
)
INJECT_ANNOTATION = "linkerd.io/inject"
PROXY_CONTAINER = "linkerd-proxy"


# -- facts ------------------------------------------------------------------------------------------
@dataclass
class ApiInfo:
    """What answered ``/version/`` at the API server's address: its version, or what it was instead."""

    server: str
    git_version: str
    platform: str
    not_kubernetes: str | None = None  # something answered, but not as a Kubernetes API server


@dataclass
class ContainerStatus:
    """One container of a pod as the kubelet reports it."""

    pod: str
    name: str
    restarts: int
    ready: bool
    waiting_reason: str | None = None
    waiting_message: str | None = None
    init: bool = False


@dataclass
class PodFacts:
    """A pod that belongs to a workload (matched by its selector)."""

    name: str
    phase: str
    containers: list[str]
    statuses: list[ContainerStatus]

    @property
    def has_proxy(self) -> bool:
        """True when a ``linkerd-proxy`` container (or native-sidecar init container) is in the pod."""
        return PROXY_CONTAINER in self.containers


@dataclass
class WorkloadFacts:
    """A Deployment / StatefulSet / DaemonSet, its rollout state and its pods."""

    kind: str
    namespace: str
    name: str
    found: bool
    desired: int = 0
    ready: int = 0
    updated: int | None = None
    generation: int | None = None
    observed_generation: int | None = None
    template_annotations: dict[str, str] = field(default_factory=dict)
    template_containers: list[str] = field(default_factory=list)
    namespace_annotations: dict[str, str] = field(default_factory=dict)
    pods: list[PodFacts] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def generation_current(self) -> bool:
        """The controller has seen the latest spec (unknown generations count as current)."""
        if self.generation is None:
            return True
        return self.observed_generation is not None and self.observed_generation >= self.generation

    @property
    def backoff(self) -> list[ContainerStatus]:
        """Containers waiting in CrashLoopBackOff, ImagePullBackOff and similar."""
        return [s for p in self.pods for s in p.statuses if s.waiting_reason in BACKOFF_REASONS]

    @property
    def most_restarted(self) -> ContainerStatus | None:
        statuses = [s for p in self.pods for s in p.statuses]
        return max(statuses, key=lambda s: s.restarts) if statuses else None

    @property
    def inject_annotation(self) -> tuple[str | None, str]:
        """``(value, where)`` of ``linkerd.io/inject``: the pod template wins over the namespace."""
        if INJECT_ANNOTATION in self.template_annotations:
            return self.template_annotations[INJECT_ANNOTATION], "pod template"
        if INJECT_ANNOTATION in self.namespace_annotations:
            return self.namespace_annotations[INJECT_ANNOTATION], f"namespace {self.namespace}"
        return None, "pod template or namespace"

    @property
    def pods_without_proxy(self) -> list[str]:
        return [p.name for p in self.pods if not p.has_proxy]


@dataclass
class CertificateFacts:
    """A cert-manager Certificate's Ready condition and validity."""

    namespace: str
    name: str
    found: bool
    ready: str | None = None
    reason: str | None = None
    message: str | None = None
    not_after: datetime | None = None
    renewal_time: datetime | None = None

    @property
    def days_left(self) -> float | None:
        return None if self.not_after is None else _days_until(self.not_after)


@dataclass
class IssuerFacts:
    """The Linkerd identity issuer certificate read from its Secret."""

    namespace: str
    secret: str
    found: bool
    key: str | None = None
    subject: str | None = None
    not_after: datetime | None = None
    problem: str | None = None

    @property
    def days_left(self) -> float | None:
        return None if self.not_after is None else _days_until(self.not_after)


@dataclass
class SecretAgeFacts:
    """A Secret's age: since the rotation annotation when present, else since creation."""

    namespace: str
    name: str
    found: bool
    annotation: str = ""
    since: datetime | None = None
    source: str = ""
    problem: str | None = None

    @property
    def age_days(self) -> float | None:
        return None if self.since is None else -_days_until(self.since)


@dataclass
class HpaFacts:
    """A HorizontalPodAutoscaler's bounds, replica counts and how long it has sat at its maximum."""

    namespace: str
    name: str
    found: bool
    min_replicas: int = 1
    max_replicas: int = 0
    current: int | None = None
    desired: int | None = None
    last_scale_time: datetime | None = None
    created: datetime | None = None
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def at_max(self) -> bool:
        return self.current is not None and self.current >= self.max_replicas

    @property
    def wants_more(self) -> bool:
        """``ScalingLimited`` is True because the metrics ask for more than ``maxReplicas``."""
        limited = self.conditions.get("ScalingLimited", {})
        return limited.get("status") == "True" and limited.get("reason") == "TooManyReplicas"

    @property
    def at_max_since(self) -> tuple[datetime | None, str]:
        """When the HPA reached its maximum, and how that is known.

        The replica count has not changed since ``lastScaleTime``, so an HPA at its maximum has been
        there at least since then. Without a scale event (it started at the maximum) the
        ``ScalingLimited`` condition's transition time is used when it is True, else the HPA's
        creation time. ``min == max`` is a fixed size by design and never counts as pinned.
        """
        if not self.at_max or self.min_replicas >= self.max_replicas:
            return None, "not at its maximum"
        if self.last_scale_time is not None:
            return self.last_scale_time, "lastScaleTime"
        limited = self.conditions.get("ScalingLimited", {})
        if limited.get("status") == "True" and limited.get("lastTransitionTime"):
            return _parse_time(limited["lastTransitionTime"]), "ScalingLimited condition"
        return self.created, "creation time"

    @property
    def minutes_at_max(self) -> float:
        since, _ = self.at_max_since
        if since is None:
            return 0.0
        return max(0.0, (datetime.now(UTC) - since).total_seconds() / 60)


@dataclass
class CrdFacts:
    """Which required CustomResourceDefinitions exist."""

    present: list[str]
    missing: list[str]


def _days_until(when: datetime) -> float:
    return (when - datetime.now(UTC)).total_seconds() / 86400


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class TrustAnchorFacts:
    """The Linkerd trust anchor bundle: every root certificate in it, by expiry."""

    namespace: str
    configmap: str
    key: str
    found: bool
    anchors: list[tuple[str, datetime]] = field(default_factory=list)  # (subject, not_after), soonest first
    problem: str | None = None

    @property
    def latest(self) -> tuple[str, datetime] | None:
        """The anchor that stays valid longest (what the mesh can still trust once the others lapse)."""
        return self.anchors[-1] if self.anchors else None

    @property
    def days_left(self) -> float | None:
        return None if self.latest is None else _days_until(self.latest[1])
