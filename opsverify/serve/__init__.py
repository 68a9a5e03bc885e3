"""Continuous mode: ``opsverify serve`` runs the selected checks on an interval and serves the results.

    opsverify serve --env staging --interval 60s --listen 127.0.0.1:9464 -m smoke

One port answers ``/metrics`` (Prometheus exposition: the series of ``metrics.prom`` plus the
``opsverify_serve_*`` series of the loop itself), ``/healthz`` (200 while every check of the chosen
severity passed in the latest run, 503 otherwise, with a body saying why), ``/livez`` (the process
and its run loop are alive) and ``/status`` (a status page, when one is plugged in:
:func:`opsverify.serve.web.start_web`'s ``status_page``).

How a run is made (the decision): each interval calls ``pytest.main`` in this process with a small
collector plugin (:mod:`opsverify.serve.runner`). The checks are pytest functions whose assertions
are the judgement (thresholds, messages, safety classes, parametrization): running the engine
without pytest would mean a second implementation of all of that. In-process, a run of the checks
costs what the checks cost (no interpreter start, no re-import of pytest, the clients' libraries
and the check modules: ~0.3 s against ~2 s for a subprocess, measured on this project's machine);
pytest's terminal output is discarded and one line per run is logged instead. What pytest leaves
behind between runs is released after each one (the plugin's ``gc.freeze()`` is undone).

Modules: :mod:`~opsverify.serve.settings` (arguments, validated), :mod:`~opsverify.serve.runner`
(one run), :mod:`~opsverify.serve.health` (the ``/healthz`` verdict), :mod:`~opsverify.serve.state`
(what the port shows), :mod:`~opsverify.serve.web` (the HTTP side, aiohttp in its own thread),
:mod:`~opsverify.serve.loop` (the schedule, signals, history).
"""
