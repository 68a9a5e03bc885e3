"""The ``/metrics`` exposition: the checks' series of the latest completed run, and the loop's own.

The checks' series are those of ``metrics.prom`` (:func:`opsverify.writers.metrics_prom.registry_for`:
``opsverify_check_*``, ``opsverify_run_timestamp_seconds``, ``opsverify_run_duration_seconds`` ...),
rendered once after each run, so a scrape while probes are in flight only copies bytes. The loop's
series (rendered per scrape, a handful of samples)::

    opsverify_serve_runs_total{result}            runs finished: completed | not_completed | interrupted
    opsverify_serve_overruns_total                runs that took longer than the interval (the next started late)
    opsverify_serve_interval_seconds              the configured interval
    opsverify_serve_last_run_timestamp_seconds    when the latest run finished (Unix time)
    opsverify_serve_last_run_duration_seconds     how long the latest run took
    opsverify_serve_last_run_completed            1 when the latest run completed, 0 when it did not
    opsverify_serve_healthy                       1 while /healthz answers 200
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from opsverify.serve.runner import RunDone
from opsverify.writers import metrics_prom

RESULTS = ("completed", "not_completed", "interrupted")


class LoopMetrics:
    """The ``opsverify_serve_*`` series (prometheus_client objects, safe to update from any thread)."""

    def __init__(self, interval_s: float) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter("opsverify_serve_runs", "Runs finished, by result", ("result",), registry=self.registry)
        for result in RESULTS:
            self.runs.labels(result=result)
        self.overruns = Counter("opsverify_serve_overruns", "Runs that took longer than the interval",
                                registry=self.registry)
        Gauge("opsverify_serve_interval_seconds", "The interval between run starts",
              registry=self.registry).set(interval_s)
        self.finished = Gauge("opsverify_serve_last_run_timestamp_seconds", "When the latest run finished",
                              registry=self.registry)
        self.took = Gauge("opsverify_serve_last_run_duration_seconds", "How long the latest run took",
                          registry=self.registry)
        self.completed = Gauge("opsverify_serve_last_run_completed", "1 when the latest run completed",
                               registry=self.registry)
        self.healthy = Gauge("opsverify_serve_healthy", "1 while /healthz answers 200", registry=self.registry)

    def observe(self, done: RunDone, finished_epoch: float, overran: bool, healthy: bool) -> None:
        """Count one finished run."""
        result = "completed" if done.completed else "interrupted" if done.exit_code == 2 else "not_completed"
        self.runs.labels(result=result).inc()
        if overran:
            self.overruns.inc()
        self.finished.set(finished_epoch)
        self.took.set(round(done.duration_s, 3))
        self.completed.set(1 if done.completed else 0)
        self.healthy.set(1 if healthy else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def checks_exposition(done: RunDone) -> bytes:
    """The checks' series of one completed run (the ``metrics.prom`` content)."""
    return generate_latest(metrics_prom.registry_for(done.run, done.records))
