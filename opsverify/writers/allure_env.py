"""Allure's ``environment.properties``: which environments, version and commit a run covered."""

from __future__ import annotations

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
