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

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from opsverify.config.kubernetes import Certificate, Hpa, KubernetesTarget, SecretAge, Workload
from opsverify.engine import ProbeContext
from opsverify.errors import CouldNotVerify, ProbeTimeout, SecretMissing, UnexpectedResponse, Unreachable
from opsverify.lazy import needs

API_PROBE = "kubernetes_api"
BACKOFF_REASONS = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError"}
)
INJECT_ANNOTATION = "linkerd.io/inject"
PROXY_CONTAINER = "linkerd-proxy"
METADATA_ONLY = {"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"}
ISSUER_KEYS = ("crt.pem", "tls.crt")

needs("kubernetes.client", "kubernetes.config", "urllib3")  # imported inside functions; loaded before the wave


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


# -- client and calls -----------------------------------------------------------------------------------
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


def _base_dir(ctx: ProbeContext[Any]) -> Path | None:
    source = getattr(ctx.env, "source", "")
    return Path(source).resolve().parent if source else None


def _kubeconfig_path(ctx: ProbeContext[Any], target: KubernetesTarget) -> Path | None:
    if not target.kubeconfig:
        return None
    path = Path(os.path.expandvars(os.path.expanduser(target.kubeconfig)))
    base = _base_dir(ctx)
    if not path.is_absolute() and base is not None:
        path = base / path
    return path


def _one_line(text: Any, limit: int = 240) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _make_client(ctx: ProbeContext[Any], target: KubernetesTarget) -> Any:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    configuration = k8s_client.Configuration()
    if target.in_cluster:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException as exc:
            raise SecretMissing(f"in-cluster service account not available ({_one_line(exc)})") from None
    else:
        path = _kubeconfig_path(ctx, target)
        if path is not None and not path.is_file():
            raise SecretMissing(f"kubeconfig {path} not found")
        try:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(path) if path else None,
                context=target.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (k8s_config.ConfigException, OSError, ValueError) as exc:
            shown = path or os.environ.get("KUBECONFIG", "~/.kube/config")
            raise SecretMissing(f"kubeconfig {shown} unusable: {_one_line(exc)}") from None
    configuration.retries = 0  # a probe reports what it saw; no silent urllib3 retries
    configuration.connection_pool_maxsize = 16
    return k8s_client.ApiClient(configuration)


async def api_client(ctx: ProbeContext[Any]) -> Any:
    """The target's shared ``kubernetes.client.ApiClient`` (created once per run, closed at the end).

    Built in a worker thread: loading a kubeconfig may run an exec credential plugin.
    """
    target: KubernetesTarget = ctx.target
    name = f"kubernetes:{ctx.key.env}:{target.name}"
    ctx.phase = "loading the kubeconfig"
    return await ctx.run_sync(lambda: ctx.resource(name, lambda: _make_client(ctx, target)))


def _server(api: Any) -> str:
    return str(getattr(api.configuration, "host", "")) or "(unknown API server)"


def _translate(exc: BaseException, server: str, what: str, timeout: float) -> CouldNotVerify:
    from kubernetes.client import ApiException
    from urllib3 import exceptions as u3

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        if status == 0:
            first = str(exc.reason or "").splitlines()
            detail = first[-1] if first else "TLS failure"
            return Unreachable(f"cannot connect to API server {server}: {_one_line(detail)}")
        message = ""
        try:
            message = str(json.loads(exc.body or "{}").get("message") or "")
        except (ValueError, AttributeError):
            message = ""
        if status == 401:
            return UnexpectedResponse(f"API server {server} rejected the credentials (401 Unauthorized) while {what}")
        if status == 403:
            return UnexpectedResponse(
                f"403 Forbidden while {what}: {_one_line(message or exc.reason)} "
                "(grant read access: deploy/rbac/opsverify-readonly.yaml)"
            )
        return UnexpectedResponse(f"HTTP {status} {exc.reason or ''} while {what}: {_one_line(message, 160)}".strip())
    reason: BaseException = exc
    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first
    if isinstance(reason, u3.NameResolutionError):
        return Unreachable(f"cannot connect to API server {server}: DNS lookup failed")
    if isinstance(reason, u3.NewConnectionError):
        text = str(reason).lower()
        cause = "connection refused" if "refused" in text else _one_line(str(reason).split(": ", 1)[-1])
        return Unreachable(f"cannot connect to API server {server}: {cause}")
    if isinstance(reason, u3.ConnectTimeoutError):
        return ProbeTimeout(f"connecting to API server {server} timed out after {timeout:g} s")
    if isinstance(reason, (u3.ReadTimeoutError, TimeoutError, u3.TimeoutError)):
        return ProbeTimeout(f"API server {server} sent no answer within {timeout:g} s ({what})")
    if isinstance(reason, u3.SSLError):
        return Unreachable(f"cannot connect to API server {server}: TLS failure ({_one_line(reason)})")
    if isinstance(reason, (u3.ProtocolError, OSError, u3.HTTPError)):
        return Unreachable(f"API server {server}: {_one_line(reason)}")
    return UnexpectedResponse(f"{what}: {type(exc).__name__}: {_one_line(exc)}")


class _Calls:
    """Calls for one probe: a shared deadline, phases, 404 as ``None``, errors translated."""

    def __init__(self, ctx: ProbeContext[Any], api: Any) -> None:
        self.ctx = ctx
        self.client = api
        self.server = _server(api)

    @classmethod
    async def open(cls, ctx: ProbeContext[Any], *, after_api: bool = True) -> _Calls:
        """Get the shared client and (``after_api``) wait for ``/version/``; calls share ``ctx``'s deadline."""
        calls = cls(ctx, await api_client(ctx))
        if after_api:
            await calls.reachable()
        return calls

    async def reachable(self) -> None:
        """Wait for the target's shared ``/version/`` probe; its error becomes this probe's error."""
        self.ctx.phase = "waiting for the API server's /version/"
        info: ApiInfo = await self.ctx.depend(API_PROBE)
        if info.not_kubernetes is not None:
            raise UnexpectedResponse(f"{info.server} {info.not_kubernetes}, so nothing can be read from it")

    async def get(self, what: str, api: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """``kubernetes.client.<api>(client).<method>(*args)`` as parsed JSON; ``None`` on 404.

        Everything touching the kubernetes package runs in the worker thread: its API classes import
        hundreds of pydantic models on first use, which would otherwise stall the engine's loop.
        """
        self.ctx.phase = what
        remaining = self.ctx.remaining()
        if remaining <= 0:
            raise ProbeTimeout(f"no time left for {what} (timeout {self.ctx.timeout:g} s)")
        kwargs.update(_request_timeout=remaining, _preload_content=False)

        def call() -> Any:
            from kubernetes import client
            from kubernetes.client import ApiException

            fn = getattr(getattr(client, api)(self.client), method)
            try:
                return fn(*args, **kwargs).data
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise self._error(exc, what) from None
            except Exception as exc:  # noqa: BLE001 - urllib3 / socket errors, translated
                raise self._error(exc, what) from None

        raw = await self.ctx.run_sync(call)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            raise UnexpectedResponse(f"{what}: the API server did not answer JSON") from None
        if not isinstance(data, dict):
            raise UnexpectedResponse(f"{what}: unexpected answer shape ({type(data).__name__})")
        return data

    def _error(self, exc: BaseException, what: str) -> CouldNotVerify:
        return _translate(exc, self.server, what, self.ctx.timeout)


def _item(ctx: ProbeContext[Any], field_name: str) -> Any:
    """This probe's sub-item, looked up by name in its own list (names repeat across lists)."""
    target: KubernetesTarget = ctx.target
    for item in getattr(target, field_name):
        if item.name == ctx.key.item:
            return item
    raise UnexpectedResponse(f"no {field_name} item named {ctx.key.item!r} in target {target.name}")


# -- probes ---------------------------------------------------------------------------------------------
async def api_info(ctx: ProbeContext[Any]) -> ApiInfo:
    """``GET /version/``: is the API server there, and what is it."""
    calls = await _Calls.open(ctx, after_api=False)
    data = await calls.get("asking for /version/", "VersionApi", "get_code")
    if data is None:  # an answer, and a wrong one: the check fails on it
        return ApiInfo(calls.server, "", "", not_kubernetes="answered HTTP 404 to /version/: not a Kubernetes API server")
    return ApiInfo(calls.server, str(data.get("gitVersion", "?")), str(data.get("platform", "?")))


def _labels_match(labels: dict[str, str], selector: dict[str, Any]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _selector_string(selector: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), ",".join(expr.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": str(key), "DoesNotExist": f"!{key}"}.get(str(op), ""))
    return ",".join(p for p in parts if p)


def _pod_facts(pod: dict[str, Any]) -> PodFacts:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    names = [c.get("name", "") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]
    statuses: list[ContainerStatus] = []
    pod_name = (pod.get("metadata") or {}).get("name", "?")
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for cs in status.get(key) or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            statuses.append(ContainerStatus(
                pod=pod_name,
                name=cs.get("name", "?"),
                restarts=int(cs.get("restartCount") or 0),
                ready=bool(cs.get("ready")),
                waiting_reason=waiting.get("reason"),
                waiting_message=_one_line(waiting["message"], 160) if waiting.get("message") else None,
                init=init,
            ))
    return PodFacts(name=pod_name, phase=str(status.get("phase", "Unknown")), containers=names, statuses=statuses)


async def workload_status(ctx: ProbeContext[Any]) -> WorkloadFacts:
    """A workload's rollout state and its pods (selected by its label selector, filtered here too)."""
    target: KubernetesTarget = ctx.target
    item: Workload = _item(ctx, "workloads")
    namespace = target.namespace_of(item)
    calls = await _Calls.open(ctx)
    read = {
        "Deployment": "read_namespaced_deployment",
        "StatefulSet": "read_namespaced_stateful_set",
        "DaemonSet": "read_namespaced_daemon_set",
    }[item.kind]
    obj = await calls.get(f"reading {item.kind} {namespace}/{item.name}", "AppsV1Api", read, item.name, namespace)
    facts = WorkloadFacts(kind=item.kind, namespace=namespace, name=item.name, found=obj is not None)
    if obj is None:
        return facts
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if item.kind == "DaemonSet":
        facts.desired = int(status.get("desiredNumberScheduled") or 0)
        facts.ready = int(status.get("numberReady") or 0)
        updated = status.get("updatedNumberScheduled")
    else:
        replicas = spec.get("replicas")
        facts.desired = 1 if replicas is None else int(replicas)
        facts.ready = int(status.get("readyReplicas") or 0)
        updated = status.get("updatedReplicas")
    facts.updated = int(updated) if updated is not None else None
    facts.generation = int(meta["generation"]) if meta.get("generation") is not None else None
    observed = status.get("observedGeneration")
    facts.observed_generation = int(observed) if observed is not None else None
    template = spec.get("template") or {}
    facts.template_annotations = dict((template.get("metadata") or {}).get("annotations") or {})
    tspec = template.get("spec") or {}
    facts.template_containers = [
        c.get("name", "") for c in (tspec.get("containers") or []) + (tspec.get("initContainers") or [])
    ]
    selector = spec.get("selector") or {}
    pods = await calls.get(
        f"listing pods of {item.kind} {namespace}/{item.name}",
        "CoreV1Api", "list_namespaced_pod", namespace, label_selector=_selector_string(selector),
    )
    for pod in (pods or {}).get("items") or []:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if selector and _labels_match(labels, selector):
            facts.pods.append(_pod_facts(pod))
    if item.linkerd and INJECT_ANNOTATION not in facts.template_annotations:
        ns = await calls.get(f"reading namespace {namespace}", "CoreV1Api", "read_namespace", namespace)
        facts.namespace_annotations = dict(((ns or {}).get("metadata") or {}).get("annotations") or {})
    return facts


async def certificate_status(ctx: ProbeContext[Any]) -> CertificateFacts:
    """A cert-manager ``Certificate`` (cert-manager.io/v1): Ready condition, notAfter, renewalTime."""
    target: KubernetesTarget = ctx.target
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


async def linkerd_issuer(ctx: ProbeContext[Any]) -> IssuerFacts:
    """The Linkerd identity issuer certificate (``crt.pem`` or ``tls.crt`` of its Secret).

    Only the certificate is decoded; the private key in the same Secret is never looked at.
    """
    target: KubernetesTarget = ctx.target
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


async def linkerd_trust_anchor(ctx: ProbeContext[Any]) -> TrustAnchorFacts:
    """The trust anchor bundle (a ConfigMap key of PEM roots; public certificates only)."""
    target: KubernetesTarget = ctx.target
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


async def secret_age(ctx: ProbeContext[Any]) -> SecretAgeFacts:
    """A Secret's metadata only (``PartialObjectMetadata``): rotation annotation, creation time."""
    target: KubernetesTarget = ctx.target
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


async def hpa_status(ctx: ProbeContext[Any]) -> HpaFacts:
    """A HorizontalPodAutoscaler (autoscaling/v2): bounds, current/desired replicas, conditions."""
    target: KubernetesTarget = ctx.target
    item: Hpa = _item(ctx, "hpas")
    namespace = target.namespace_of(item)
    calls = await _Calls.open(ctx)
    obj = await calls.get(
        f"reading HorizontalPodAutoscaler {namespace}/{item.name}",
        "AutoscalingV2Api", "read_namespaced_horizontal_pod_autoscaler", item.name, namespace,
    )
    facts = HpaFacts(namespace=namespace, name=item.name, found=obj is not None)
    if obj is None:
        return facts
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    facts.min_replicas = int(spec.get("minReplicas") or 1)
    facts.max_replicas = int(spec.get("maxReplicas") or 0)
    facts.current = int(status["currentReplicas"]) if status.get("currentReplicas") is not None else None
    facts.desired = int(status["desiredReplicas"]) if status.get("desiredReplicas") is not None else None
    facts.last_scale_time = _parse_time(status.get("lastScaleTime"))
    facts.created = _parse_time(meta.get("creationTimestamp"))
    facts.conditions = {str(c.get("type")): dict(c) for c in status.get("conditions") or []}
    return facts


async def crds_present(ctx: ProbeContext[Any]) -> CrdFacts:
    """Which of the target's required CRDs exist (one GET each)."""
    target: KubernetesTarget = ctx.target
    calls = await _Calls.open(ctx)
    present: list[str] = []
    missing: list[str] = []
    for name in target.crds:
        found = await calls.get(f"reading CRD {name}", "ApiextensionsV1Api", "read_custom_resource_definition", name)
        (present if found is not None else missing).append(name)
    return CrdFacts(present=present, missing=missing)
