"""The status page as one self-contained HTML file: no script, no CDN, no external font.

    html = render_history(Path("reports/history.sqlite"))      # the page as a string (serve shows it live)
    write(Path("reports/history.sqlite"), Path("reports/status"))   # -> reports/status/index.html

Drawn with Jinja2 (autoescaping on: target names, environment names and messages are user input),
from the template ``opsverify/templates/status.html.j2``; sparklines are inline SVG built here.
What it shows is :mod:`opsverify.status_page`.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from datetime import datetime
from functools import cache
from pathlib import Path

import jinja2

from opsverify import __version__
from opsverify.config.secrets import REDACTOR
from opsverify.errors import ReportWriteError
from opsverify.status_page import Series, StatusPage, Uptime, parse_at, status_of

SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 110, 28, 3


def when(at: str | None) -> str:
    """``2026-12-02 08:01:17 UTC`` (or ``never``)."""
    return f"{at[:19].replace('T', ' ')} UTC" if at else "never"


def ago(at: str | None, now: str) -> str:
    """How long before ``now`` ``at`` was, in the largest unit that fits: ``3 min``, ``2 h``, ``5 d``."""
    if not at:
        return ""
    seconds = max(0.0, (parse_at(now) - parse_at(at)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit}"
    return f"{seconds:.0f} s"


def uptime(window: Uptime) -> str:
    """``66.7 %`` (one decimal, never rounded up to 100 %), or an em dash when no run counted."""
    percent = window.percent
    if percent is None:
        return "—"
    shown = f"{percent:.1f}"
    if shown == "100.0" and window.healthy < window.runs:
        shown = "99.9"
    return f"{shown} %"


def readable(check: str) -> str:
    """A check's name as words: ``test_consumer_lag_within_limit`` -> ``consumer lag within limit``."""
    return check.removeprefix("test_").replace("_", " ")


def number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def spark_points(series: Series) -> str:
    """The SVG polyline points of ``series``, scaled into the sparkline's box (newest on the right)."""
    values = [value for _, value in series.points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (SPARK_WIDTH - 2 * SPARK_PAD) / max(1, len(values) - 1)
    coords = []
    for index, value in enumerate(values):
        x = SPARK_PAD + index * step if len(values) > 1 else SPARK_WIDTH / 2
        y = SPARK_HEIGHT - SPARK_PAD - (value - low) / span * (SPARK_HEIGHT - 2 * SPARK_PAD)
        coords.append(f"{x:.1f},{y:.1f}")
    return " ".join(coords)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("opsverify", "templates"),
        autoescape=True,  # every {{ }} is escaped: names and messages come from environment files and services
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, uptime=uptime, number=number, readable=readable, spark_points=spark_points)
    env.globals.update(ago=ago, spark_width=SPARK_WIDTH, spark_height=SPARK_HEIGHT, version=__version__)
    return env


def render(page: StatusPage, title: str = "opsverify status") -> str:
    """The page as an HTML string (messages pass through the redactor once more)."""
    html = _environment().get_template("status.html.j2").render(page=page, title=title)
    return REDACTOR.redact(html)


def render_connection(conn: sqlite3.Connection, title: str = "opsverify status", now: datetime | None = None) -> str:
    """The page for an open history connection (what ``opsverify serve`` shows live)."""
    return render(status_of(conn, now), title)


def render_history(path: Path, title: str = "opsverify status", now: datetime | None = None) -> str:
    """The page for the history file at ``path``; a missing or unreadable file is a ``HistoryError``."""
    from opsverify import history

    with history.connect(path) as conn:
        return render_connection(conn, title, now)


def write(path: Path, out: Path, title: str = "opsverify status", now: datetime | None = None) -> Path:
    """Write ``out/index.html`` for the history at ``path`` (atomically: a reader never sees half a
    page); returns the file written."""
    html = render_history(path, title, now)
    target = out / "index.html"
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=out, prefix=".index.", suffix=".html")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(html)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        raise ReportWriteError(f"{out}: the status page cannot be written ({exc.strerror or exc})") from exc
    return target
