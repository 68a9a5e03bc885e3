"""Kubernetes workload probes: a Deployment / StatefulSet / DaemonSet and its pods, an HPA, and
whether CRDs are installed.
"""

from __future__ import annotations

from typing import Any

from opsverify.config.kubernetes import Hpa, KubernetesTarget, Workload
from opsverify.engine import ProbeContext
from opsverify.probes.kubernetes.client import _Calls, _item, _one_line
from opsverify.probes.kubernetes.facts import _parse_time, ContainerStatus, CrdFacts, HpaFacts, INJECT_ANNOTATION, PodFacts, WorkloadFacts


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


async def workload_status(ctx: ProbeContext[KubernetesTarget]) -> WorkloadFacts:
    """A workload's rollout state and its pods (selected by its label selector, filtered here too)."""
    target = ctx.target
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


async def hpa_status(ctx: ProbeContext[KubernetesTarget]) -> HpaFacts:
    """A HorizontalPodAutoscaler (autoscaling/v2): bounds, current/desired replicas, conditions."""
    target = ctx.target
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


async def crds_present(ctx: ProbeContext[KubernetesTarget]) -> CrdFacts:
    """Which of the target's required CRDs exist (one GET each)."""
    target = ctx.target
    calls = await _Calls.open(ctx)
    present: list[str] = []
    missing: list[str] = []
    for name in target.crds:
        found = await calls.get(f"reading CRD {name}", "ApiextensionsV1Api", "read_custom_resource_definition", name)
        (present if found is not None else missing).append(name)
    return CrdFacts(present=present, missing=missing)
