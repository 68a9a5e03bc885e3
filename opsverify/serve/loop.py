"""The schedule of ``opsverify serve``: one run at a time, every interval, until SIGTERM or Ctrl-C.

Example::

    code = serve(settings)      # blocks; 0 after a clean stop, 2 when the first run cannot start

Runs never overlap: they run one after the other on this (the main) thread. A run that takes longer
than the interval delays the next one, which then starts at once; it is logged and counted
(``opsverify_serve_overruns_total``). SIGTERM and SIGINT end the wait at once; during a run they
interrupt it (pytest ends it as interrupted, its results are not published), then the port closes.
With ``--history``, every completed run is appended to the history file.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

import pytest

from opsverify import history
from opsverify.errors import ConfigError, HistoryError
from opsverify.serve.runner import RunDone, run_once
from opsverify.serve.settings import ServeSettings
from opsverify.serve.state import ServeState
from opsverify.serve.web import start_web

FATAL_FIRST = {4: "usage error", 5: "no check selected", 3: "internal error"}


def log(text: str) -> None:
    print(f"opsverify serve: {text}", file=sys.stderr, flush=True)


def validate_environments(settings: ServeSettings) -> None:
    """Load every environment file once before anything listens: a bad one is a usage error."""
    from opsverify.session import OvSession

    try:
        session = OvSession.create(settings.root, list(settings.envs), list(settings.env_files), 1)
    except pytest.UsageError as exc:
        raise ConfigError(str(exc), "", "fix it and start again") from None
    session.engine.shutdown()


def summary(done: RunDone) -> str:
    counted: dict[str, int] = {}
    for record in done.records:
        counted[record.outcome] = counted.get(record.outcome, 0) + 1
    parts = ", ".join(f"{counted.get(k, 0)} {k}" for k in ("passed", "failed", "error", "skipped"))
    return f"run {done.number} took {done.duration_s:.1f} s: {parts}"


def serve(settings: ServeSettings) -> int:
    """Run the checks every interval and serve the results until stopped."""
    validate_environments(settings)
    if settings.history is not None:
        try:
            with history.connect(settings.history, create=True):
                pass
        except HistoryError as exc:
            raise ConfigError("--history", "", str(exc)) from None
    state = ServeState(settings)
    web = start_web(state, settings.host, settings.port, status_page=_status_page(settings))
    stop = threading.Event()
    running = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()
        if running.is_set():
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    unraisable = sys.unraisablehook

    def quiet_stop(args: sys.UnraisableHookArgs) -> None:
        # the stop's KeyboardInterrupt can land in a finaliser (a weakref callback), where Python
        # prints "Exception ignored" with a traceback: it is the stop asked for, not a fault
        if not (stop.is_set() and isinstance(args.exc_value, KeyboardInterrupt)):
            unraisable(args)

    sys.unraisablehook = quiet_stop
    log(f"listening on http://{settings.host}:{settings.port} (/metrics /healthz); "
        f"a run every {settings.interval_s:g} s")
    code = 0
    try:
        code = _loop(settings, state, stop, running)
    except KeyboardInterrupt:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = unraisable
        web.stop()
    log("stopped")
    return code


def _loop(settings: ServeSettings, state: ServeState, stop: threading.Event, running: threading.Event) -> int:
    number = 0
    while not stop.is_set():
        number += 1
        started = time.monotonic()
        state.begin(number)
        running.set()
        try:
            done = run_once(settings, number)
        finally:
            running.clear()
        if stop.is_set():
            log(f"run {number} interrupted by the stop; its results are not published")
            return 0
        if number == 1 and done.exit_code in FATAL_FIRST:
            log(f"the first run could not run the checks: pytest exit {done.exit_code} "
                f"({FATAL_FIRST[done.exit_code]}); see above")
            return 2
        late = done.duration_s - settings.interval_s
        verdict = state.finish(done, overran=late > 0)
        line = f"{summary(done)}; /healthz {verdict.status}"
        if not done.completed:
            line += f" (the run did not complete: pytest exit {done.exit_code})"
        log(line)
        if late > 0:
            log(f"run {number} took longer than the interval ({settings.interval_s:g} s): "
                f"the next run starts now, {late:.1f} s late")
        if done.completed and settings.history is not None:
            try:
                history.append(settings.history, done.run, done.records, settings.history_keep_days)
            except HistoryError as exc:
                log(f"history not written: {exc}")
        stop.wait(max(0.0, settings.interval_s - (time.monotonic() - started)))
    return 0


def _status_page(settings: ServeSettings) -> Callable[[], str] | None:
    """The live status page (the one ``opsverify status`` writes), read from ``--history`` on each ask."""
    if settings.history is None:
        return None
    history_path = settings.history

    def page() -> str:
        from opsverify.writers import status_html

        return status_html.render_history(history_path, title="opsverify serve")

    return page
