"""``metrics.prom``: the run as a Prometheus textfile (node_exporter's textfile collector reads it).

Per check (labels ``env``, ``system``, ``check``, ``target``, ``item``)::

    opsverify_check_success           1 passed, 0 failed or could not verify (skipped: not exported)
    opsverify_check_error             1 when the check could not verify the system (outcome error)
    opsverify_check_warnings          number of warnings the check recorded
    opsverify_check_duration_seconds  how long the check took
    opsverify_check_measured_value    a measured value (+ labels measure, unit), e.g. days to expiry
    opsverify_check_threshold         its thresholds (+ measure, unit, level=warn|critical, direction)
    opsverify_check_measured_level    0 ok, 1 past warn, 2 past critical (+ measure)

Per run and environment: ``opsverify_run_timestamp_seconds`` (when the run finished),
``opsverify_run_duration_seconds``, ``opsverify_run_checks{outcome}`` and ``opsverify_run_info``.
Example alert rules: ``deploy/alerts/opsverify-rules.yaml``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile

from opsverify.config.secrets import REDACTOR
from opsverify.results import OUTCOMES, CheckRecord, RunInfo

CHECK_LABELS = ("env", "system", "check", "target", "item")
LEVELS = {"ok": 0, "warn": 1, "critical": 2}


def measure_name(name: str) -> str:
    """A stable label value for a measured quantity: the description without its (details)."""
    base = re.sub(r"\([^)]*\)", "", name).strip().lower()
    slug = re.sub(r"[^a-z0-9]+", "_", base).strip("_")
    return slug[:80] or "value"


def _epoch(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def registry_for(run: RunInfo, records: list[CheckRecord]) -> CollectorRegistry:
    """A registry holding every metric of the run (for ``generate_latest`` or a textfile)."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, (*CHECK_LABELS, *extra), registry=registry)

    success = gauge("opsverify_check_success", "1 when the check passed, 0 when it failed or could not verify")
    error = gauge("opsverify_check_error", "1 when the check could not verify the system (outcome error)")
    warnings = gauge("opsverify_check_warnings", "Warnings the check recorded (past a warn threshold)")
    duration = gauge("opsverify_check_duration_seconds", "Time the check took, setup to teardown")
    value = gauge("opsverify_check_measured_value", "A value the check measured", ("measure", "unit"))
    threshold = gauge("opsverify_check_threshold", "The threshold a measured value is judged against",
                      ("measure", "unit", "level", "direction"))
    level = gauge("opsverify_check_measured_level",
                  "Where the measured value stands: 0 ok, 1 past warn, 2 past critical", ("measure",))
    for record in records:
        if record.env is None or record.outcome == "skipped":
            continue
        labels: dict[str, Any] = {
            "env": record.env, "system": record.system or "", "check": record.check,
            "target": record.target or "", "item": record.item or "",
        }
        labels = {k: REDACTOR.redact(str(v)) for k, v in labels.items()}
        success.labels(**labels).set(1 if record.outcome == "passed" else 0)
        error.labels(**labels).set(1 if record.outcome == "error" else 0)
        warnings.labels(**labels).set(len(record.warnings))
        duration.labels(**labels).set(round(record.duration_s, 6))
        for measured in record.measured:
            measure = measure_name(str(measured.get("name", "")))
            unit = str(measured.get("unit") or "")
            value.labels(**labels, measure=measure, unit=unit).set(float(measured["value"]))
            level.labels(**labels, measure=measure).set(LEVELS.get(str(measured.get("level")), 0))
            for which in ("warn", "critical"):
                bound = measured.get(which)
                if bound is not None:
                    threshold.labels(**labels, measure=measure, unit=unit, level=which,
                                     direction=str(measured.get("direction", "at_most"))).set(float(bound))

    run_labels = ("env",)
    finished = Gauge("opsverify_run_timestamp_seconds", "When the run finished (Unix time)", run_labels,
                     registry=registry)
    took = Gauge("opsverify_run_duration_seconds", "How long the whole run took", run_labels, registry=registry)
    counts = Gauge("opsverify_run_checks", "Checks of the run by outcome", (*run_labels, "outcome"),
                   registry=registry)
    info = Gauge("opsverify_run_info", "The opsverify version and git commit of the run (value 1)",
                 (*run_labels, "version", "commit"), registry=registry)
    end, start = _epoch(run.finished_at), _epoch(run.started_at)
    for env in run.environments:
        mine = [r for r in records if r.env in (env, None)]
        if end is not None:
            finished.labels(env=env).set(end)
            if start is not None:
                took.labels(env=env).set(round(max(end - start, 0.0), 3))
        for outcome in OUTCOMES:
            counts.labels(env=env, outcome=outcome).set(sum(1 for r in mine if r.outcome == outcome))
        info.labels(env=env, version=run.opsverify_version, commit=run.git_commit or "").set(1)
    return registry


def render(run: RunInfo, records: list[CheckRecord]) -> str:
    """The textfile's content (Prometheus exposition format)."""
    return generate_latest(registry_for(run, records)).decode()


def write(path: Path, run: RunInfo, records: list[CheckRecord]) -> Path:
    """Write ``metrics.prom`` atomically (textfile collectors never read a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry_for(run, records))
    return path
