"""What opsverify adds to allure-pytest's results: categories, runbook links, severity labels.

- ``categories.json`` separates "System unhealthy" (the check failed: the system is not as the
  runbook expects) from "Could not verify" (an error whose message names one of the
  :class:`~opsverify.errors.CouldNotVerify` types: unreachable, timeout, missing secret ...) and
  from "Check crashed" (any other error: a bug in a check or probe).
- Each check's runbook step becomes an Allure link (absolute with a runbook base URL, see
  :mod:`opsverify.writers.links`), and its ``severity`` marker Allure's severity label (both as
  allure-pytest markers, added at collection); the Behaviors and Suites labels, readable
  parameters and the probe's duration are :mod:`opsverify.writers.allure_shape`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsverify.errors import CouldNotVerify
from opsverify.writers.links import runbook_url

ALLURE_SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial")


def could_not_verify_types() -> list[str]:
    """Names of every error type meaning "the system could not be seen"."""
    names: list[str] = []
    pending: list[type[BaseException]] = [CouldNotVerify]
    while pending:
        current = pending.pop()
        names.append(current.__name__)
        pending.extend(current.__subclasses__())
    return sorted(set(names))


def categories() -> list[dict[str, Any]]:
    """Allure categories, first match wins."""
    names = "|".join(could_not_verify_types())
    return [
        {
            "name": "Could not verify",
            "description": "The check could not see the system (refused, timeout, DNS, missing secret): "
            "fix the path to the system or the check's configuration, then rerun.",
            "matchedStatuses": ["broken"],
            "messageRegex": rf"(?s).*\b({names})\b.*",
        },
        {
            "name": "System unhealthy",
            "description": "The system is not as the runbook expects: follow the linked runbook step.",
            "matchedStatuses": ["failed"],
        },
        {
            "name": "Check crashed",
            "description": "A check or probe raised something opsverify did not expect: a bug to report.",
            "matchedStatuses": ["broken"],
        },
    ]


def write_categories(directory: Path) -> Path:
    """Write ``categories.json`` into the Allure results directory."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "categories.json"
    path.write_text(json.dumps(categories(), indent=2) + "\n")
    return path


def check_severity(item: pytest.Item) -> None:
    """At collection: refuse an unknown ``severity`` (a usage error, whether Allure writes or not)."""
    severity = item.get_closest_marker("severity")
    if severity is not None and (not severity.args or severity.args[0] not in ALLURE_SEVERITIES):
        raise pytest.UsageError(
            f"{item.nodeid}: unknown severity {severity.args[0] if severity.args else None!r} "
            f"(known: {', '.join(ALLURE_SEVERITIES)})"
        )


def collect_item(item: pytest.Item, runbooks: Any) -> None:
    """At collection, when Allure writes: add the check's runbook link, severity and Behaviors/Suites labels."""
    from opsverify.session import case_of
    from opsverify.writers.allure_shape import label_markers

    closest = item.get_closest_marker("runbook")
    step = runbooks.step(closest.args[0]) if closest and closest.args else None
    add_markers(item, step.id if step else None, step.link if step else None)
    case = case_of(item)
    if case is not None:
        label_markers(item, case)


def add_markers(item: pytest.Item, step_id: str | None, step_link: str | None) -> None:
    """Give one check its runbook link and severity label, the way allure-pytest reads them."""
    if step_id and step_link:
        item.add_marker(pytest.mark.allure_link(runbook_url(step_link), name=f"runbook {step_id}", link_type="link"))
    severity = item.get_closest_marker("severity")
    if severity and severity.args and severity.args[0] in ALLURE_SEVERITIES:
        item.add_marker(pytest.mark.allure_label(severity.args[0], label_type="severity"))


def enabled(config: pytest.Config) -> bool:
    """Whether allure-pytest is writing results in this run (its markers are then registered)."""
    return bool(getattr(config.option, "allure_report_dir", None))
