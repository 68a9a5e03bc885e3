"""Where a runbook link points: the repository file, absolute when the run knows where it lives.

``runbook_url("runbooks/vault.md#vault-sealed")`` is

- ``$OPSVERIFY_RUNBOOK_BASE_URL/runbooks/vault.md#vault-sealed`` when that variable is set,
- ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/blob/$GITHUB_SHA/runbooks/...`` inside GitHub Actions,
- the relative path otherwise (it resolves when the report is read next to the repository).
"""

from __future__ import annotations

import os


def runbook_url(link: str) -> str:
    """The URL of a runbook step, given its repository-relative link."""
    if not link or "://" in link:
        return link
    base = os.environ.get("OPSVERIFY_RUNBOOK_BASE_URL", "").strip()
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
