"""Restate facts: health, version, registered services and deployments, one invocation, and the
authentication of its endpoints and tokens, as the checks read them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from opsverify.config.restate import SemVer
from opsverify.probes.restate.client import Answer, Endpoint, REJECTED


@dataclass
class RestateHealth:
    """A health endpoint's answer (admin ``/health``, ingress ``/restate/health``, tunnel ``/health``)."""

    endpoint: Endpoint
    answer: Answer
    services: list[str] | None = None  # the ingress health lists the services it can route to

    @property
    def url(self) -> str:
        return self.answer.url

    @property
    def status(self) -> int:
        return self.answer.status

    @property
    def latency_ms(self) -> float:
        return self.answer.latency_ms

    @property
    def ok(self) -> bool:
        return self.answer.status == 200


@dataclass
class RestateVersion:
    """``GET /version`` of the admin API."""

    version: SemVer
    min_admin_api_version: int | None
    max_admin_api_version: int | None


@dataclass
class RegisteredService:
    """One service as the admin API lists it (``GET /services``)."""

    name: str
    type: str
    handlers: list[str]
    deployment_id: str
    revision: int | None
    public: bool | None


@dataclass
class RestateServices:
    """Every registered service, by name."""

    by_name: dict[str, RegisteredService] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return sorted(self.by_name)


@dataclass
class DeploymentView:
    """A deployment (``GET /deployments``) and what Restate's dry-run discovery of it found.

    ``reachable`` is ``None`` when it was not checked (no expected service lives on it).
    """

    id: str
    address: str  # the URI, or the Lambda ARN
    services: list[str]
    reachable: bool | None = None
    offers: list[str] = field(default_factory=list)  # services the discovery found
    problem: str = ""
    note: str = ""


@dataclass
class RestateDeployments:
    """The deployments the admin API lists, by id (the checked ones with Restate's verdict)."""

    by_id: dict[str, DeploymentView] = field(default_factory=dict)


@dataclass
class InvocationResult:
    """One call of a handler through the ingress."""

    call: str
    answer: Answer

    @property
    def status(self) -> int:
        return self.answer.status

    @property
    def value(self) -> tuple[bool, Any]:
        """``(True, decoded JSON)``, or ``(False, None)`` when the body is not JSON."""
        try:
            return True, json.loads(self.answer.body)
        except ValueError:
            return False, None


@dataclass
class AuthEndpoint:
    """What one endpoint answered with the configured token, without a token, with a wrong one."""

    endpoint: str
    url: str
    with_token: Answer
    without_token: Answer
    wrong_token: Answer


@dataclass
class RestateAuth:
    """The token's reception at each endpoint the token checks knock on."""

    endpoints: list[AuthEndpoint]
    token_label: str


@dataclass
class PreviousToken:
    """What each endpoint answered to the previous (rotated-out) token."""

    label: str
    answers: dict[str, Answer]

    @property
    def accepted_at(self) -> list[str]:
        return [f"{name} {a.url} (HTTP {a.status})" for name, a in self.answers.items() if a.status not in REJECTED]

    @property
    def rejected_at(self) -> list[str]:
        return [f"{name} {a.url} (HTTP {a.status})" for name, a in self.answers.items() if a.status in REJECTED]


@dataclass
class TokenSecret:
    """What the configured token reference holds, judged without showing it."""

    label: str
    problem: str  # "" when it looks like one bearer token
    previous_label: str | None
    same_as_previous: bool


@dataclass
class TokenAge:
    """How old the current token is, from the ``token_issued_at`` the environment file records."""

    label: str
    issued_at: dt.datetime
    age_days: float
