"""The Kubernetes API client of a probe: built from the target's kubeconfig (or the in-cluster
service account), its synchronous calls run in the engine's worker threads within the probe's deadline,
their errors translated (:class:`~opsverify.errors.Unreachable`, :class:`~opsverify.errors.ProbeTimeout`,
:class:`~opsverify.errors.UnexpectedResponse`), and the ``kubernetes_api`` probe every item probe awaits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from opsverify.config.kubernetes import KubernetesTarget
from opsverify.engine import ProbeContext
from opsverify.errors import CouldNotVerify, ProbeTimeout, SecretMissing, UnexpectedResponse, Unreachable
from opsverify.lazy import needs
from opsverify.probes.kubernetes.facts import ApiInfo


API_PROBE = "kubernetes_api"
METADATA_ONLY = {"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"}
needs("kubernetes.client", "kubernetes.config", "urllib3")  # imported inside functions; loaded before the wave


def _base_dir(ctx: ProbeContext[KubernetesTarget]) -> Path | None:
    source = getattr(ctx.env, "source", "")
    return Path(source).resolve().parent if source else None


def _kubeconfig_path(ctx: ProbeContext[KubernetesTarget], target: KubernetesTarget) -> Path | None:
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


def _make_client(ctx: ProbeContext[KubernetesTarget], target: KubernetesTarget) -> Any:
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


async def api_client(ctx: ProbeContext[KubernetesTarget]) -> Any:
    """The target's shared ``kubernetes.client.ApiClient`` (created once per run, closed at the end).

    Built in a worker thread: loading a kubeconfig may run an exec credential plugin.
    """
    target = ctx.target
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

    def __init__(self, ctx: ProbeContext[KubernetesTarget], api: Any) -> None:
        self.ctx = ctx
        self.client = api
        self.server = _server(api)

    @classmethod
    async def open(cls, ctx: ProbeContext[KubernetesTarget], *, after_api: bool = True) -> _Calls:
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


def _item(ctx: ProbeContext[KubernetesTarget], field_name: str) -> Any:
    """This probe's sub-item, looked up by name in its own list (names repeat across lists)."""
    target = ctx.target
    for item in getattr(target, field_name):
        if item.name == ctx.key.item:
            return item
    raise UnexpectedResponse(f"no {field_name} item named {ctx.key.item!r} in target {target.name}")


# -- probes ---------------------------------------------------------------------------------------------
async def api_info(ctx: ProbeContext[KubernetesTarget]) -> ApiInfo:
    """``GET /version/``: is the API server there, and what is it."""
    calls = await _Calls.open(ctx, after_api=False)
    data = await calls.get("asking for /version/", "VersionApi", "get_code")
    if data is None:  # an answer, and a wrong one: the check fails on it
        return ApiInfo(calls.server, "", "", not_kubernetes="answered HTTP 404 to /version/: not a Kubernetes API server")
    return ApiInfo(calls.server, str(data.get("gitVersion", "?")), str(data.get("platform", "?")))
