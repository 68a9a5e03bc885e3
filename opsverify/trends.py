"""Consumer trends over an analysis window, judged like LinkedIn's Burrow judges a consumer group.

A lag threshold sees one snapshot: a consumer that died with a small backlog passes it. A trend
check instead keeps, for each partition (a Kafka partition, or a JetStream consumer as a whole),
what every sample of the window saw — the committed offset (Kafka) or the ack floor (JetStream)
and the lag — and judges the series:

- **caught up**: a partition whose lag was 0 in any sample is fine (Burrow's first rule);
- **stalled**: lag > 0 in every sample and the committed offset never moved across the window;
- **no commit for too long**: the committed offset stayed where it was, with lag > 0 all along,
  for longer than ``max_commit_age_s`` (Kafka) / ``max_ack_age_s`` (JetStream), when set. The age
  is what the samples saw: from the first sample that saw the offset to the last, so it is never
  more than the truth;
- **lag growing**: the lag rose from each sample to the next (at least 3 samples: 2 rises), the
  consumer moving but falling behind.

Each is a failure that lists the offsets seen, whatever the lag threshold says. One snapshot
cannot show a trend: with fewer than 2 samples the check is **skipped** with the reason "needs
--samples >= 2" (it never passes on one sample; it does not take a window of its own, which would
make every single run as long as a window).

Every sample's quiet evaluation adds one :class:`Observation` per partition to the check's
:class:`Series` (kept in the pytest item, so it lives across the window's samples); the window's
verdict for a ``trend`` check is its last sample's, which judged the whole series
(:mod:`opsverify.analysis`).

Example::

    @pytest.mark.trend
    def test_consumer_group_keeps_up_over_the_window(kafka_group_lag, trend_series, target_item, expect):
        trend_series.add(kafka_group_lag, {str(p): (p.committed, p.lag) for p in kafka_group_lag.partitions})
        trend_series.judge(expect, f"consumer group {target_item.name}", "committed offset",
                           max_age_s=target_item.max_commit_age_s)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from opsverify.expect import Expect

MIN_SAMPLES = 2
MIN_GROWING_SAMPLES = 3
SHOWN_SAMPLES = 8  # offsets listed in a message
SHOWN_PARTITIONS = 3  # partitions named in a message
NEEDS_WINDOW = ("needs --samples >= 2: a trend is judged over a window of samples "
                "(e.g. --samples 5 --interval 30s, or an analysis: block)")


@dataclass(frozen=True)
class Observation:
    """What one sample saw of one partition: when (monotonic seconds), the committed offset, the lag."""

    at: float
    committed: int
    lag: int


@dataclass(frozen=True)
class Finding:
    """One partition judged not healthy over the window."""

    rule: str  # stalled | lag growing | no commit (no ack)
    partition: str
    text: str


@dataclass
class Series:
    """One check's observations over the window, per partition, in sample order."""

    samples: int = 0
    partitions: dict[str, list[Observation]] = field(default_factory=dict)
    _last_source: Any = None

    def add(self, source: Any, seen: dict[str, tuple[int, int]], at: float | None = None) -> None:
        """Add one sample: ``seen`` maps a partition to (committed offset, lag).

        ``source`` is the probe result the values come from: the same result given twice (a check
        evaluated again on probes that were not re-run) is one sample, not two.
        """
        if source is not None and source is self._last_source:
            return
        self._last_source = source
        moment = time.monotonic() if at is None else at
        self.samples += 1
        for partition, (committed, lag) in seen.items():
            self.partitions.setdefault(partition, []).append(Observation(moment, int(committed), int(lag)))

    def findings(self, offset_name: str, max_age_s: float | None, moved_by: str = "commit") -> list[Finding]:
        """Every partition that is stalled, falling behind or not committing (see the module)."""
        found: list[Finding] = []
        for partition, seen in self.partitions.items():
            finding = judge_partition(partition, seen, offset_name, max_age_s, moved_by)
            if finding is not None:
                found.append(finding)
        return found

    def judge(self, expect: Expect, what: str, offset_name: str, *, max_age_s: float | None = None,
              moved_by: str = "commit") -> None:
        """Skip with fewer than 2 samples; fail naming every unhealthy partition; record the trend.

        ``offset_name`` is what the consumer moves ("committed offset", "ack floor"); ``moved_by``
        what moves it ("commit", "ack"), as the messages say it.
        """
        if self.samples < MIN_SAMPLES:
            pytest.skip(NEEDS_WINDOW)
        lags = [seen[-1].lag for seen in self.partitions.values() if seen]
        expect.record("lag at the end of the window", float(sum(lags)), unit="messages")
        most = max((len(seen) for seen in self.partitions.values()), default=0)
        expect.that(  # a trend needs one partition seen twice: fewer is no evidence of keeping up
            most >= MIN_SAMPLES,
            expected=f"the {offset_name} of {what} seen in at least {MIN_SAMPLES} samples of the window",
            actual=f"no {offset_name} seen in any of {self.samples} samples" if not most
            else f"its {offset_name} seen in only 1 of {self.samples} samples",
        )
        found = self.findings(offset_name, max_age_s, moved_by)
        if self.samples < MIN_GROWING_SAMPLES:
            expect.warn(f"lag growth is judged on {MIN_GROWING_SAMPLES} samples or more; this window had "
                        f"{self.samples}")
        if found:
            shown = "; ".join(f.text for f in found[:SHOWN_PARTITIONS])
            more = f"; and {len(found) - SHOWN_PARTITIONS} more partitions" if len(found) > SHOWN_PARTITIONS else ""
            expect.fail(
                expected=f"{what} keeping up over {self.samples} samples (not stalled, lag not growing in every "
                f"sample{_age_clause(max_age_s, offset_name)})",
                actual=f"{shown}{more}",
            )


def _age_clause(max_age_s: float | None, offset_name: str) -> str:
    return "" if max_age_s is None else f", its {offset_name} moving at least every {max_age_s:g} s while behind"


def judge_partition(partition: str, seen: list[Observation], offset_name: str,
                    max_age_s: float | None, moved_by: str = "commit") -> Finding | None:
    """The first rule ``seen`` (one partition's observations, in order) breaks, or ``None``.

    Rules in order: a zero lag in any sample clears the partition; committed offset unchanged in
    every sample with lag > 0 is *stalled*; the offset unchanged with lag > 0 for longer than
    ``max_age_s`` at the end of the window is *no commit* (exactly ``max_age_s`` is not longer);
    lag rising between every two samples (3 or more) is *lag growing*.
    """
    if len(seen) < MIN_SAMPLES or any(o.lag == 0 for o in seen):
        return None
    span = seen[-1].at - seen[0].at
    offsets = _listed([o.committed for o in seen])
    lags = _listed([o.lag for o in seen])
    if all(o.committed == seen[0].committed for o in seen):
        return Finding("stalled", partition, f"{partition} stalled: {offset_name} {seen[0].committed:,} unchanged "
                       f"across {len(seen)} samples over {span:.1f} s while the lag was {lags}")
    if max_age_s is not None:
        first = len(seen) - 1
        while first > 0 and seen[first - 1].committed == seen[-1].committed:
            first -= 1
        age = seen[-1].at - seen[first].at
        if age > max_age_s:
            return Finding(f"no {moved_by}", partition, f"{partition} no {moved_by} for {age:.3f} s (more than "
                           f"{max_age_s:g} s): {offset_name} {offsets}, lag {lags}")
    if len(seen) >= MIN_GROWING_SAMPLES and all(b.lag > a.lag for a, b in zip(seen, seen[1:])):
        return Finding("lag growing", partition, f"{partition} lag growing in every sample: {lags} "
                       f"({offset_name} {offsets}) over {span:.1f} s")
    return None


def _listed(values: list[int]) -> str:
    shown = [f"{v:,}" for v in values]
    if len(shown) > SHOWN_SAMPLES:
        half = SHOWN_SAMPLES // 2
        shown = [*shown[:half], "…", *shown[-half:]]
    return " → ".join(shown)


SERIES_KEY = pytest.StashKey[Series]()


def series_of(item: pytest.Item) -> Series:
    """The check's series, kept in its item across the window's samples."""
    series = item.stash.get(SERIES_KEY, None)
    if series is None:
        series = item.stash[SERIES_KEY] = Series()
    return series
