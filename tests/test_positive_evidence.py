"""A pass needs positive evidence: values that only looked healthy because of how they were computed
now fail with their reason, against real servers and files.

* a backup whose modification time is in the future had its age clamped to 0 (the freshest backup
  there could be): now it fails, naming the timestamp as no evidence;
* a consumer group whose committed offset is past the log end (its topic recreated under it) had
  its lag clamped to 0 (fully caught up): now it fails, its lag unknown;
* a body longer than what is read, and an HTML page where JSON is expected: ``tests/test_outcomes.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from opsverify_sandbox.servers.kafka import commit_offsets, create_topic, produce, start_kafka
from tests.harness import run_checks

RECENT = "test_newest_backup_is_recent"
PRUNED = "test_old_backups_are_pruned"
LAG = "test_consumer_group_lag_within_threshold"
PARTITION_LAG = "test_consumer_group_partition_lag_within_threshold"
HOUR, DAY = 3600, 86400


def _dump(path: Path, age_s: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 2048)
    when = time.time() - age_s
    os.utime(path, (when, when))


def test_a_backup_modified_in_the_future_is_no_evidence_of_a_recent_one(tmp_path: Path) -> None:
    _dump(tmp_path / "skewed" / "app-1.dump", 5 * DAY)   # the real last backup: 5 days old
    _dump(tmp_path / "skewed" / "app-2.dump", -2 * DAY)  # stamped two days ahead
    _dump(tmp_path / "skew-ok" / "app-1.dump", -30)      # 30 s ahead: clock skew, taken as now
    _dump(tmp_path / "fresh" / "app-1.dump", HOUR)
    spec = {"max_age": "26h", "max_oldest_age": "30d"}
    env = {"backups": [{"name": name, "path": str(tmp_path / name / "*.dump"), **spec}
                       for name in ("skewed", "skew-ok", "fresh")]}
    (tmp_path / "run").mkdir()
    run = run_checks(tmp_path / "run", env, "-k", "backup", paths=["checks/test_datastores.py"])
    assert run.outcome(RECENT, "fresh") == "passed", run.stdout[-3000:]
    assert run.outcome(RECENT, "skew-ok") == "passed"
    assert run.outcome(RECENT, "skewed") == "failed"
    message = run.message(RECENT, "skewed")
    assert message.startswith("selftest-skewed: expected the newest backup (app-2.dump) modified in the past, got "
                              "modified 1 d 23 h in the future (a wrong clock or timestamp: its age is no evidence of "
                              "when it was written) — check the clock of the host that writes the backups"), message
    assert run.outcome(PRUNED, "skewed") == "passed"  # its oldest (5 d) is real and within 30 d
    assert run.outcome(PRUNED, "fresh") == "passed"


def test_a_commit_past_the_log_end_is_an_unknown_lag_not_zero(tmp_path: Path) -> None:
    with start_kafka(tmp_path / "kafka") as kafka:
        b = kafka.bootstrap
        create_topic(b, "orders", 1)
        produce(b, "orders", 4, partition=0)
        commit_offsets(b, "orders", "caught-up", {0: 4})
        commit_offsets(b, "orders", "recreated-under-it", {0: 250})  # offsets kept from the deleted topic
        groups = [{"name": g, "max_lag": 10, "max_partition_lag": 10} for g in ("caught-up", "recreated-under-it")]
        (tmp_path / "run").mkdir()
        run = run_checks(tmp_path / "run", {"kafka": [{"name": "k", "bootstrap": b, "groups": groups}]},
                         "-k", "lag", paths=["checks/test_kafka.py"])
    for check in (LAG, PARTITION_LAG):
        assert run.outcome(check, "k", item="caught-up") == "passed", run.stdout[-3000:]
        assert run.outcome(check, "k", item="recreated-under-it") == "failed"
        message = run.message(check, "k", item="recreated-under-it")
        assert ("expected committed offsets of group recreated-under-it within the log (at most its high "
                "watermark), got orders[0] committed 250, high watermark 4 — the commit is past the log end, so "
                "the lag is unknown, not zero — the topic was recreated or truncated") in message, message
