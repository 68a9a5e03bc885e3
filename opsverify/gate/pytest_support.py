"""The one-step form: ``pytest -m predeploy --env staging --gate gates/production.yaml``.

The plugin calls these: :func:`configure` validates the policy before anything is probed (a bad
policy file is a usage error, exit 4, naming the file and the key; a bad waivers file is judged
with the results: it holds the release, exit 1); :func:`after_reports` runs the gate on the run's own
``summary.json`` once it is written and makes the gate's exit code the run's (0 promote, 1 hold,
2 cannot decide); :func:`terminal` prints the checklist at the end of the terminal summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsverify.errors import ConfigError

OUTCOME_KEY = pytest.StashKey[Any]()


def _paths(config: pytest.Config) -> tuple[Path | None, Path | None]:
    gate = config.getoption("gate", None)
    waivers = config.getoption("waivers", None)
    return (Path(gate) if gate else None), (Path(waivers) if waivers else None)


def configure(config: pytest.Config) -> None:
    """Fail fast on a bad ``--gate`` policy or ``--waivers`` file (usage error, nothing probed)."""
    policy_path, waivers_path = _paths(config)
    if policy_path is None:
        if waivers_path is not None:
            raise pytest.UsageError("--waivers needs --gate POLICY (or pass it to `opsverify gate`)")
        return
    if config.getoption("no_reports"):
        raise pytest.UsageError("--gate judges the run's summary.json: it cannot be used with --no-reports")
    from opsverify.gate import load_policy

    try:
        load_policy(policy_path)
    except ConfigError as exc:
        raise pytest.UsageError(f"--gate: bad policy: {exc}") from None


def after_reports(session: pytest.Session, reports: Path, exitstatus: int) -> None:
    """Gate the run just written to ``reports/``; its decision becomes the run's exit status.

    How the run ended (interrupted, internal error, stopped early ...) is in its summary's
    ``run.ended``, which the gate judges as it does in the two-step form."""
    config = session.config
    policy_path, waivers_path = _paths(config)
    if policy_path is None or config.option.collectonly:
        return
    from opsverify.gate import run_gate

    outcome = run_gate(policy_path, [reports / "summary.json"], waivers_path=waivers_path,
                       output=reports / "gate.json")
    summary_md = reports / "summary.md"
    if summary_md.exists():
        with summary_md.open("a", encoding="utf-8") as handle:
            handle.write("\n" + outcome.markdown + "\n")
    config.stash[OUTCOME_KEY] = outcome
    session.exitstatus = outcome.exit_code


def terminal(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the checklist and the decision at the end of the run."""
    outcome = config.stash.get(OUTCOME_KEY, None)
    if outcome is None:
        return
    decision = outcome.decision
    terminalreporter.section(f"opsverify gate: {decision.decision} (exit {outcome.exit_code})", sep="=",
                             green=decision.decision == "promote", red=decision.decision != "promote")
    for line in outcome.markdown.splitlines():
        terminalreporter.line(line)
    if outcome.written is not None:
        terminalreporter.line(f"opsverify gate: decision written to {outcome.written}")
