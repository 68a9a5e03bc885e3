"""Allure's ``environment.properties`` (which environments, version and commit a run covered) and,
inside GitHub Actions, ``executor.json`` (which workflow run it was: the Trend panel labels each
point with it and links back to the run)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from opsverify.config.secrets import REDACTOR
from opsverify.results import RunInfo


def write(directory: Path, run: RunInfo, tiers: dict[str, str]) -> Path:
    """Write ``environment.properties`` into the Allure results directory."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"opsverify.version={run.opsverify_version}",
        f"environments={','.join(run.environments)}",
        f"started_at={run.started_at}",
    ]
    lines += [f"tier.{name}={tier}" for name, tier in sorted(tiers.items())]
    if run.git_commit:
        lines.append(f"git.commit={run.git_commit}")
    if run.phase:
        lines.append(f"rotation.phase={run.phase}")
    path = directory / "environment.properties"
    path.write_text(REDACTOR.redact("\n".join(lines) + "\n"))
    return path


def write_executor(directory: Path) -> Path | None:
    """Write ``executor.json`` when the run is a GitHub Actions job; returns the file, or ``None``."""
    server, repo = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    run_id, number = os.environ.get("GITHUB_RUN_ID"), os.environ.get("GITHUB_RUN_NUMBER", "")
    if not (server and repo and run_id and number.isdigit()):
        return None
    workflow = os.environ.get("GITHUB_WORKFLOW") or "workflow"
    executor = {"name": "GitHub Actions", "type": "github", "buildOrder": int(number),
                "buildName": f"{workflow} #{number}", "buildUrl": f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "executor.json"
    path.write_text(REDACTOR.redact(json.dumps(executor, indent=2)) + "\n")
    return path
