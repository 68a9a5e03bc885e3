"""The ``analysis:`` block of an environment file: judge read-only checks over a window of samples.

Its keys: ``docs/environment/reference.md#top-level``; an example in the README ("Waiting and
windows").

The verdict follows Argo Rollouts' AnalysisRun (see :mod:`opsverify.analysis`). ``--samples N`` and
``--interval S`` on the command line override ``samples`` and ``interval_s``.
"""

from __future__ import annotations

from pydantic import Field

from opsverify.config.base import Strict

MAX_SAMPLES = 1000


class Analysis(Strict):
    """How many samples a read-only check is judged on, how far apart, and how many may go wrong."""

    samples: int = Field(default=1, ge=1, le=MAX_SAMPLES, description="times each read-only probe runs (--samples)")
    interval_s: float = Field(default=10.0, gt=0, le=86400, description="seconds between samples (--interval)")
    failure_limit: int = Field(default=0, ge=0, description="failed when more samples than this failed")
    consecutive_error_limit: int = Field(default=4, ge=1,
                                         description="error when this many samples in a row could not see the system")
