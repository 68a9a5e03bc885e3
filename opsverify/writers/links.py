"""Where a runbook link points: the repository file, absolute when the run knows where it lives.

``runbook_url("runbooks/vault.md#vault-sealed")`` is

- ``BASE/runbooks/vault.md#vault-sealed`` when a base URL is given: ``--runbook-base-url BASE``,
  else ``$OPSVERIFY_RUNBOOK_BASE_URL`` (e.g. ``https://github.com/acme/ops/blob/main``, or the web
  server that publishes the repository's runbooks next to the Allure report),
- ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/blob/$GITHUB_SHA/runbooks/...`` inside GitHub Actions,
- the relative path otherwise (it resolves when the report is read next to the repository; a
  served Allure report needs one of the above).

A base URL must be ``http(s)://host[/path]`` without credentials, query or fragment: a bad one is a
usage error before anything is probed (:func:`configure`).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

ENV_VAR = "OPSVERIFY_RUNBOOK_BASE_URL"
_chosen: str | None = None  # --runbook-base-url, once validated


def base_url_problem(value: str) -> str | None:
    """Why ``value`` cannot be a runbook base URL, or ``None`` when it can."""
    if any(ch.isspace() for ch in value):
        return "contains whitespace"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL with a host (e.g. https://github.com/acme/ops/blob/main)"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@): every report would show them"
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        return "must not have a query or fragment (the runbook path and anchor are appended)"
    return None


def _shown(value: str) -> str:
    """``value`` for an error message, any ``user:password@`` masked."""
    scheme, sep, rest = value.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return repr((scheme + sep + rest)[:200])


def add_options(group: Any) -> None:
    """``--runbook-base-url URL`` in the plugin's option group."""
    group.addoption("--runbook-base-url", default=None, metavar="URL",
                    help=f"make runbook links in the reports absolute: URL/runbooks/<file>#<step> (or ${ENV_VAR})")


def configure(config: Any) -> None:
    """Validate ``--runbook-base-url`` and ``$OPSVERIFY_RUNBOOK_BASE_URL``; a bad one is a usage error."""
    import pytest

    global _chosen
    chosen = config.getoption("runbook_base_url", None)
    for where, value in (("--runbook-base-url", chosen), (ENV_VAR, os.environ.get(ENV_VAR, "").strip() or None)):
        problem = base_url_problem(value) if value is not None else None
        if problem and value is not None:
            raise pytest.UsageError(f"{where}: {_shown(value)} {problem}")
    _chosen = chosen


def base_url() -> str | None:
    """The runbook base URL in force: the option, else the environment variable, else ``None``."""
    chosen = _chosen or os.environ.get(ENV_VAR, "").strip()
    return chosen or None


def runbook_url(link: str) -> str:
    """The URL of a runbook step, given its repository-relative link."""
    if not link or "://" in link:
        return link
    base = base_url()
    if base:
        return f"{base.rstrip('/')}/{link.lstrip('/')}"
    server, repo = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if server and repo:
        ref = os.environ.get("GITHUB_SHA") or "HEAD"
        return f"{server.rstrip('/')}/{repo}/blob/{ref}/{link.lstrip('/')}"
    return link


def strip_runbook_tag(message: str, step_id: str | None) -> str:
    """A failure message without its trailing ``[runbook ID]`` (shown as a link instead)."""
    if step_id:
        tag = f" [runbook {step_id}]"
        if message.endswith(tag):
            return message[: -len(tag)]
    return message
