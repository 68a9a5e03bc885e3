"""The one-step gate: ``pytest -m predeploy --env staging --gate gates/production.yaml``.

:class:`Gate` is registered only when ``--gate`` (or ``--waivers``) is given. :meth:`Gate.configure`
validates the policy before anything is probed (a bad policy file is a usage error, exit 4, naming
the file and the key; a bad waivers file is judged with the results: it holds the release, exit 1);
once ``summary.json`` is written the gate judges it and its exit code becomes the run's (0 promote,
1 hold, 2 cannot decide); the checklist is printed at the end of the terminal summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsverify.errors import ConfigError
from opsverify.results import CheckRecord, RunInfo


def _paths(config: pytest.Config) -> tuple[Path | None, Path | None]:
    gate = config.getoption("gate", None)
    waivers = config.getoption("waivers", None)
    return (Path(gate) if gate else None), (Path(waivers) if waivers else None)


class Gate:
    """The promotion gate run on the run's own evidence (its ``summary.json``)."""

    def __init__(self) -> None:
        self.outcome: Any = None

    @staticmethod
    def configure(config: pytest.Config) -> None:
        """Fail fast on a bad ``--gate`` policy or ``--waivers`` without it (usage error, nothing probed)."""
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

    @pytest.hookimpl(trylast=True)
    def pytest_opsverify_reports_written(self, session: pytest.Session, run: RunInfo, records: list[CheckRecord],
                                         reports: Path, exitstatus: int) -> None:
        """Gate the run just written to ``reports``; its decision becomes the run's exit status.

        How the run ended (interrupted, internal error, stopped early ...) is in its summary's
        ``run.ended``, which the gate judges as it does in the two-step form."""
        policy_path, waivers_path = _paths(session.config)
        if policy_path is None:
            return
        from opsverify.gate import run_gate

        outcome = run_gate(policy_path, [reports / "summary.json"], waivers_path=waivers_path,
                           output=reports / "gate.json")
        summary_md = reports / "summary.md"
        if summary_md.exists():
            with summary_md.open("a", encoding="utf-8") as handle:
                handle.write("\n" + outcome.markdown + "\n")
        self.outcome = outcome
        session.exitstatus = outcome.exit_code

    def pytest_opsverify_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        """Print the checklist and the decision at the end of the run."""
        outcome = self.outcome
        if outcome is None:
            return
        decision = outcome.decision
        terminalreporter.section(f"opsverify gate: {decision.decision} (exit {outcome.exit_code})", sep="=",
                                 green=decision.decision == "promote", red=decision.decision != "promote")
        for line in outcome.markdown.splitlines():
            terminalreporter.line(line)
        if outcome.written is not None:
            terminalreporter.line(f"opsverify gate: decision written to {outcome.written}")
