"""What the port shows, shared between the run loop (writer) and the HTTP thread (reader).

Example::

    state = ServeState(settings)
    state.begin(3); ...; state.finish(done, overran=False)
    state.exposition(), state.verdict(), state.liveness()
"""

from __future__ import annotations

import threading
import time

from opsverify.serve.health import Verdict, judge
from opsverify.serve.metrics import LoopMetrics, checks_exposition
from opsverify.serve.runner import RunDone
from opsverify.serve.settings import ServeSettings

STUCK_AFTER_INTERVALS = 10
STUCK_AFTER_MIN_S = 600.0


class ServeState:
    """The latest run, the checks' rendered series and the loop's metrics (thread-safe)."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.loop_metrics = LoopMetrics(settings.interval_s)
        self._lock = threading.Lock()
        self._latest: RunDone | None = None
        self._checks = b""
        self._running: tuple[int, float] | None = None

    def begin(self, number: int) -> None:
        with self._lock:
            self._running = (number, time.monotonic())

    def finish(self, done: RunDone, overran: bool) -> Verdict:
        """Publish a finished run (the checks' series only when it completed); returns its verdict."""
        rendered = checks_exposition(done) if done.completed else None
        verdict = judge(done, self.settings.healthz_severity)
        with self._lock:
            self._running = None
            self._latest = done
            if rendered is not None:
                self._checks = rendered
        self.loop_metrics.observe(done, time.time(), overran, verdict.healthy)
        return verdict

    def exposition(self) -> bytes:
        with self._lock:
            checks = self._checks
        return checks + self.loop_metrics.render()

    def verdict(self) -> Verdict:
        with self._lock:
            latest = self._latest
        return judge(latest, self.settings.healthz_severity)

    def liveness(self) -> tuple[bool, str]:
        """Alive unless one run has been going far longer than any run should (a stuck checker)."""
        limit = max(STUCK_AFTER_MIN_S, STUCK_AFTER_INTERVALS * self.settings.interval_s)
        with self._lock:
            running = self._running
        if running is None:
            return True, "alive: waiting for the next run"
        number, since = running
        took = time.monotonic() - since
        if took > limit:
            return False, f"stuck: run {number} has been running for {took:.0f} s (limit {limit:.0f} s)"
        return True, f"alive: run {number} in progress for {took:.1f} s"
