"""The credential inventory: every credential and certificate an environment knows, and how urgent
its rotation is.

One row per credential (TLS certificates, the checker's own TLS client certificates, NATS user JWTs, Vault tokens and KV secrets, Kubernetes
Secrets, cert-manager Certificates, the Linkerd identity issuer, API tokens such as Restate's), with
kind, owner target, issued/updated, expires, age, the policy (max age, minimum days left) and a
status: ``rotate now`` (past the critical level), ``warn``, ``ok``, ``unknown`` (could not be
read), or ``untracked`` (a secret the environment references whose age nobody records). Rows are
sorted by urgency.

The data are the results of the same probes the age and expiry checks use (``tls_certificate``,
``nats_credential``, ``vault_token``, ``kubernetes_secret``, ``restate_token_age`` ...) judged against
the same thresholds of the environment file, so the inventory and the checks cannot disagree.

Example::

    session = OvSession.create(root, ["staging"], [], concurrency=32)
    rows = collect(session)                 # runs the probes (read-only)
    rows = collect(session, settled_only=True)   # after a pytest run: only what the run probed
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import Threshold
from opsverify.errors import OpsverifyError, one_line
from opsverify.probe_api import PROBES

if TYPE_CHECKING:
    from opsverify.session import Case, OvSession

Status = Literal["rotate now", "warn", "unknown", "untracked", "ok"]
URGENCY: dict[str, int] = {"rotate now": 0, "warn": 1, "unknown": 2, "untracked": 3, "ok": 4}
DAY_S = 86400.0


@dataclass
class Credential:
    """One credential or certificate, judged against its policy."""

    kind: str
    env: str
    owner: str  # the target that holds it: "nats/wasmcloud", "kubernetes/cluster"
    name: str  # what it is: a subject, a user, a path, a Secret
    issued_at: str | None = None  # ISO time it was issued or last updated
    expires_at: str | None = None
    age_days: float | None = None
    days_left: float | None = None
    max_age_days: str | None = None  # the policy, e.g. "90 (warn 75)"
    min_days_left: str | None = None
    status: Status = "ok"
    reason: str = ""
    runbook: str = ""  # the step that says how to rotate it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _in_days(threshold: Threshold | None, scale: float = 1.0) -> Threshold | None:
    """A threshold in days (``scale``: how many of its units make a day, e.g. 86400 for seconds)."""
    if threshold is None or scale == 1.0:
        return threshold
    warn = threshold.warn / scale if threshold.warn is not None else None
    return Threshold(warn=warn, critical=threshold.critical / scale)


def judge(
    kind: str,
    case: Case,
    name: str,
    *,
    runbook: str,
    issued: dt.datetime | None = None,
    expires: dt.datetime | None = None,
    age_days: float | None = None,
    days_left: float | None = None,
    max_age: Threshold | None = None,
    min_left: Threshold | None = None,
    now: dt.datetime | None = None,
    note: str = "",
) -> Credential:
    """A row, with its status from the same thresholds the checks use (days on both sides)."""
    now = now or dt.datetime.now(dt.UTC)
    if age_days is None and issued is not None:
        age_days = (now - issued).total_seconds() / DAY_S
    if days_left is None and expires is not None:
        days_left = (expires - now).total_seconds() / DAY_S
    levels: list[tuple[str, str]] = []
    if min_left is not None and days_left is not None:
        level = min_left.judge_at_least(days_left)
        what = "expired" if days_left < 0 else f"expires in {days_left:.1f} d"
        bound = min_left.critical if level == "critical" else min_left.warn
        levels.append((level, f"{what} (policy: at least {bound:g} d left)" if level != "ok" else ""))
    if max_age is not None and age_days is not None:
        level = max_age.judge_at_most(age_days)
        bound = max_age.critical if level == "critical" else max_age.warn
        levels.append((level, f"{age_days:.1f} d old (policy: at most {bound:g} d)" if level != "ok" else ""))
    worst = "critical" if any(lv == "critical" for lv, _ in levels) else (
        "warn" if any(lv == "warn" for lv, _ in levels) else "ok")
    status: Status = {"critical": "rotate now", "warn": "warn", "ok": "ok"}[worst]  # type: ignore[assignment]
    reasons = [text for level, text in levels if level == worst and text]
    if note:
        reasons.append(note)
    if status == "ok" and days_left is None and age_days is None:
        reasons.append("no issue or expiry time known")
    return Credential(
        kind=kind, env=case.env, owner=f"{case.section}/{case.target}", name=name,
        issued_at=_iso(issued), expires_at=_iso(expires),
        age_days=round(age_days, 4) if age_days is not None else None,
        days_left=round(days_left, 4) if days_left is not None else None,
        max_age_days=max_age.describe() if max_age else None,
        min_days_left=min_left.describe() if min_left else None,
        status=status, reason="; ".join(reasons), runbook=runbook,
    )


# -- where credentials come from: one source per probe --------------------------------------------------
Rows = Callable[[Any, Any, Any, "Case"], list[Credential]]


@dataclass(frozen=True)
class Source:
    """A probe whose result describes credentials, and how to turn it into rows."""

    probe: str
    kind: str
    runbook: str
    rows: Rows
    configured: tuple[str, ...] = ()
    each: str | None = None
    field: str | None = None  # the target's secret field this source judges (not listed again as unjudged)


def _tls(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
    return [judge("TLS certificate", case, f"{result.subject} ({target.host}:{target.port})",
                  runbook="certs#expiry", issued=result.not_before, expires=result.not_after,
                  min_left=target.min_days)]


def _nats(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
    return [judge("NATS user JWT", case, result.who, runbook="nats#creds-age", issued=result.issued_at,
                  expires=result.expires_at, min_left=target.credential_min_days,
                  max_age=target.max_credential_age_days,
                  note="" if result.expires_at else "never expires")]


def _vault_token(label: str) -> Rows:
    def rows(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
        name = f"{label} {item.name}" if item is not None else label
        threshold = _in_days(item.min_ttl if item is not None else target.token_min_ttl, DAY_S)
        if not result.found:
            return [_unknown("Vault token", case, name, result.problem, "vault#token-ttl")]
        if result.never_expires:
            return [judge("Vault token", case, name, runbook="vault#token-ttl", note="never expires (no TTL)")]
        expires = result.expire_time or dt.datetime.now(dt.UTC) + dt.timedelta(seconds=result.ttl_s)
        return [judge("Vault token", case, name, runbook="vault#token-ttl", expires=expires,
                      days_left=result.ttl_s / DAY_S, min_left=threshold,
                      note="renewable" if result.renewable else "not renewable")]
    return rows


def _vault_kv(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
    if not result.found:
        return [_unknown("Vault KV secret", case, result.path, result.problem, "vault#rotation-drift")]
    return [judge("Vault KV secret", case, f"{result.path} (version {result.current_version})",
                  runbook="vault#rotation-drift", issued=result.written, age_days=result.age_s / DAY_S,
                  max_age=_in_days(item.max_age, DAY_S))]


def _k8s_secret(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
    name = f"Secret {result.namespace}/{result.name}"
    if not result.found or result.problem:
        return [_unknown("Kubernetes Secret", case, name, result.problem or "not found", "kubernetes#secret-age")]
    return [judge("Kubernetes Secret", case, name, runbook="kubernetes#secret-age", issued=result.since,
                  max_age=item.max_age_days, note=f"since its {result.source}")]


def _k8s_certificate(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
    name = f"Certificate {result.namespace}/{result.name}"
    if not result.found or result.not_after is None:
        return [_unknown("cert-manager Certificate", case, name, "not found" if not result.found else "never issued",
                         "kubernetes#certificate-expiry")]
    return [judge("cert-manager Certificate", case, name, runbook="kubernetes#certificate-expiry",
                  expires=result.not_after, min_left=item.min_days)]


def _linkerd_issuer(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
    name = f"Linkerd identity issuer (Secret {result.namespace}/{result.secret})"
    if not result.found or result.problem or result.not_after is None:
        return [_unknown("Linkerd issuer certificate", case, name, result.problem or "not found",
                         "kubernetes#linkerd-issuer-expiry")]
    return [judge("Linkerd issuer certificate", case, name, runbook="kubernetes#linkerd-issuer-expiry",
                  expires=result.not_after, min_left=target.linkerd_identity.min_days)]


def _linkerd_anchor(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
    name = f"Linkerd trust anchor (ConfigMap {result.namespace}/{result.configmap})"
    if not result.found or result.problem or not result.anchors:
        return [_unknown("Linkerd trust anchor", case, name, result.problem or "not found",
                         "kubernetes#linkerd-trust-anchor-expiry")]
    return [judge("Linkerd trust anchor", case, f"{name}: {subject}", runbook="kubernetes#linkerd-trust-anchor-expiry",
                  expires=not_after, min_left=target.linkerd_trust_anchor.min_days)
            for subject, not_after in result.anchors]


def _restate_token(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
    return [judge("API token (Restate bearer)", case, result.label, runbook="restate#token-age",
                  issued=result.issued_at, age_days=result.age_days, max_age=target.max_token_age_days)]


def _aware(value: Any) -> dt.datetime | None:
    """A date or date-time from an environment file as an aware UTC date-time."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _api_token(result: Any, target: Any, item: Any, case: Case) -> list[Credential]:
    name = f"{target.name} token" + (f" (id {result.token_id})" if result.token_id else "")
    row = judge("API token (provider verify)", case, name, runbook="tokens#expiry",
                issued=_aware(target.issued_at), expires=result.expires_at, min_left=target.min_days,
                note="" if result.expires_at else (result.expiry_problem or "never expires"))
    if not result.active:
        row.status, row.reason, row.runbook = "rotate now", f"not active: {result.reason}", "tokens#active"
    return [row]


SOURCES: list[tuple[str, Source]] = [
    ("tls", Source("tls_certificate", "TLS certificate", "certs#expiry", _tls)),
    ("nats", Source("nats_credential", "NATS user JWT", "nats#creds-age", _nats, configured=("creds",),
                    field="creds")),
    ("vault", Source("vault_checker_token", "Vault token", "vault#token-ttl", _vault_token("checker token"),
                     configured=("token",), field="token")),
    ("vault", Source("vault_token", "Vault token", "vault#token-ttl", _vault_token("token"), each="tokens",
                     field="tokens")),
    ("vault", Source("vault_kv_secret", "Vault KV secret", "vault#rotation-drift", _vault_kv, each="secrets")),
    ("kubernetes", Source("kubernetes_secret", "Kubernetes Secret", "kubernetes#secret-age", _k8s_secret,
                          each="secrets")),
    ("kubernetes", Source("kubernetes_certificate", "cert-manager Certificate", "kubernetes#certificate-expiry",
                          _k8s_certificate, each="certificates")),
    ("kubernetes", Source("kubernetes_linkerd_issuer", "Linkerd issuer certificate",
                          "kubernetes#linkerd-issuer-expiry", _linkerd_issuer, configured=("linkerd_identity",))),
    ("kubernetes", Source("kubernetes_linkerd_trust_anchor", "Linkerd trust anchor",
                          "kubernetes#linkerd-trust-anchor-expiry", _linkerd_anchor,
                          configured=("linkerd_trust_anchor",))),
    ("restate", Source("restate_token_age", "API token (Restate bearer)", "restate#token-age", _restate_token,
                       configured=("token_issued_at",), field="token")),
    ("api_tokens", Source("api_token", "API token (provider verify)", "tokens#expiry", _api_token, field="token")),
]


def register(section: str, source: Source) -> None:
    """Add a credential source (another system's token or key probe) to the inventory."""
    SOURCES.append((section, source))


def _unknown(kind: str, case: Case, name: str, problem: str, runbook: str) -> Credential:
    return Credential(kind=kind, env=case.env, owner=f"{case.section}/{case.target}", name=name,
                      status="unknown", reason=f"could not read: {problem}", runbook=runbook)


# -- collecting -----------------------------------------------------------------------------------------
def collect(session: OvSession, *, settled_only: bool = False) -> list[Credential]:
    """Every credential of the session's environments, most urgent first.

    ``settled_only``: use only probe results the run already has (no network; for ``summary.md``).
    """
    _load_fixture_modules()
    wanted: list[tuple[Source, Case, Any]] = []
    for section, source in SOURCES:
        if source.probe not in PROBES:
            continue
        for case in session.cases(section, list(source.configured), source.each):
            wanted.append((source, case, PROBES[source.probe]))
    futures: dict[int, concurrent.futures.Future[Any]] = {}
    for index, (_source, case, spec) in enumerate(wanted):
        key = session.probe_key(spec, case)
        if settled_only:
            finished = session.engine.finished(key)
            if finished is None:
                continue
            futures[index] = finished
        else:
            futures[index] = session.start_probe(spec, case)
    concurrent.futures.wait(list(futures.values()))
    rows: list[Credential] = []
    covered = {(case.env, case.section, case.target, source.field) for source, case, _ in wanted if source.field}
    for index, future in futures.items():
        source, case, _spec = wanted[index]
        target = session.target_of(case)
        item = session.item_of(case, source.each)
        name = f"{case.target}" + (f"/{case.item}" if case.item else "")
        try:
            result = future.result()
        except OpsverifyError as exc:
            rows.append(_unknown(source.kind, case, name, one_line(exc), source.runbook))
            continue
        except Exception as exc:  # noqa: BLE001 - a crashed probe is an unknown row, not a crash
            rows.append(_unknown(source.kind, case, name, one_line(exc), source.runbook))
            continue
        rows.extend(source.rows(result, target, item, case))
    from opsverify.client_certs import inventory_rows

    client_rows, client_keys = inventory_rows(session)
    return sort_by_urgency(rows + client_rows + unjudged(session, covered | client_keys))


def unjudged(session: OvSession, covered: set[tuple[str, str, str, str]]) -> list[Credential]:
    """Every other secret the environment files reference (passwords, API keys, HMAC secrets ...):
    known credentials whose age no probe can tell, listed so nothing is missing from the inventory."""
    from opsverify.config.base import SECTIONS

    rows: list[Credential] = []
    for env in session.environments.values():
        for section in SECTIONS:
            for target in env.targets(section):
                for path, ref in secret_fields(target):
                    root = path.split(".")[0].split("[")[0]
                    if (env.name, section, target.name, root) in covered:
                        continue
                    rows.append(Credential(
                        kind="secret", env=env.name, owner=f"{section}/{target.name}",
                        name=f"{path} ({ref.label})", status="untracked",
                        reason="no issue or expiry date is known for it: record when it was rotated "
                        "(e.g. a rotation annotation, token_issued_at / issued_at) to have its age judged",
                    ))
    return rows


def secret_fields(obj: Any, path: str = "") -> list[tuple[str, Any]]:
    """``(field path, SecretRef)`` for every secret reference inside a config model."""
    if isinstance(obj, SecretRef):
        return [(path, obj)]
    found: list[tuple[str, Any]] = []
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            found.extend(secret_fields(getattr(obj, name), f"{path}.{name}" if path else name))
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            label = getattr(value, "name", None)
            found.extend(secret_fields(value, f"{path}[{label if isinstance(label, str) else index}]"))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            found.extend(secret_fields(value, f"{path}.{key}"))
    return found


def sort_by_urgency(rows: list[Credential]) -> list[Credential]:
    """``rotate now`` first, then ``warn``, ``unknown``, ``untracked``, ``ok``; within each, the soonest expiry and
    the oldest credential first."""
    inf = float("inf")

    def key(row: Credential) -> tuple[int, float, float, str]:
        return (URGENCY[row.status], row.days_left if row.days_left is not None else inf,
                -(row.age_days if row.age_days is not None else -inf), f"{row.env}/{row.owner}/{row.name}")

    return sorted(rows, key=key)


def _load_fixture_modules() -> None:
    """Import every facade module so every probe is registered (pytest does this through the plugin)."""
    import importlib

    from opsverify.bundled import FACADES

    for name in FACADES:
        importlib.import_module(name)


# -- rendering ------------------------------------------------------------------------------------------
def counts(rows: list[Credential]) -> dict[str, int]:
    found = {status: 0 for status in URGENCY}
    for row in rows:
        found[row.status] += 1
    return found


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def table(rows: list[Credential]) -> list[list[str]]:
    """Header + one line per credential (for the console and for Markdown)."""
    lines = [["status", "kind", "env", "owner", "credential", "issued/updated", "expires", "age (d)",
              "left (d)", "policy", "why"]]
    for r in rows:
        policy = "; ".join(p for p in (f"max age {r.max_age_days} d" if r.max_age_days else "",
                                       f"min left {r.min_days_left} d" if r.min_days_left else "") if p)
        lines.append([r.status, r.kind, r.env, r.owner, r.name, (r.issued_at or "—")[:10],
                      (r.expires_at or "—")[:16].replace("T", " "), _num(r.age_days), _num(r.days_left),
                      policy or "—", r.reason])
    return lines


def markdown_section(rows: list[dict[str, Any]]) -> list[str]:
    """The ``summary.md`` section (rows as stored in ``summary.json`` ``run.credentials``)."""
    if not rows:
        return []
    creds = [Credential(**row) for row in rows]
    c = counts(creds)
    lines = [f"## 🔑 Credentials ({len(creds)}: {c['rotate now']} rotate now, {c['warn']} warn, "
             f"{c['unknown']} unknown, {c['untracked']} untracked, {c['ok']} ok)", "",
             "Read by this run's probes; `opsverify credentials --env NAME` lists every credential of an environment.",
             ""]
    grid = table(creds)
    lines.append("| " + " | ".join(grid[0]) + " |")
    lines.append("|" + "---|" * len(grid[0]))
    for line in grid[1:]:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |")
    lines.append("")
    return lines
