"""Self-tests of checks/test_object_storage.py against a real S3-compatible server: moto's standalone
``moto_server`` (PyPI ``moto[server]``; why moto: see sandbox/opsverify_sandbox/servers/s3.py), one process with a
bucket per fault: missing bucket, no lifecycle configuration, a rule with the wrong expiry, an
abort-multipart rule too long or only under a prefix, versioning never enabled or suspended, a stale
and an empty backup prefix, and a closed port.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from opsverify.config.model import load_environment
from opsverify.errors import ConfigError
from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.s3 import lifecycle_rule, s3_client, start_moto_s3
from tests.harness import SuiteRun, run_checks

CHECKS = ["checks/test_object_storage.py"]
EXISTS = "test_bucket_exists"
RULE = "test_lifecycle_rule_is_in_place"
ABORT = "test_incomplete_multipart_uploads_are_aborted"
FRESH = "test_newest_backup_is_recent"
VERSIONING = "test_bucket_versioning_is_as_expected"
STALE_S = 3.0


@dataclass
class S3:
    port: int
    proc: ManagedProcess

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _wait_until_older_than(s3: Any, bucket: str, key: str, seconds: float) -> None:
    """Bounded wait (a precondition, not an assertion): until the object is ``seconds`` old."""
    deadline = time.monotonic() + seconds + 30
    while time.monotonic() < deadline:
        modified = s3.head_object(Bucket=bucket, Key=key)["LastModified"]
        if (datetime.now(timezone.utc) - modified).total_seconds() >= seconds:
            return
        time.sleep(0.2)
    raise AssertionError(f"{key} did not age {seconds} s")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    port = free_port()
    proc = start_moto_s3(tmp_path_factory.mktemp("moto"), port=port)
    try:
        client = s3_client(port)
        buckets: dict[str, list[dict[str, Any]] | None] = {
            "healthy": [lifecycle_rule("memory-retention", "memory/", expiration_days=30),
                        lifecycle_rule("abort-multipart", "", abort_days=3)],
            "norule": None,
            "wrongdays": [lifecycle_rule("memory-retention", "memory/", expiration_days=7),
                          lifecycle_rule("abort-multipart", "", abort_days=10)],
            "prefixed": [lifecycle_rule("memory-retention", "other/", expiration_days=30),
                         lifecycle_rule("abort-tmp", "tmp/", abort_days=1)],
        }
        for bucket, rules in buckets.items():
            client.create_bucket(Bucket=bucket)
            if rules is not None:
                client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
        client.put_bucket_versioning(Bucket="healthy", VersioningConfiguration={"Status": "Enabled"})
        client.put_bucket_versioning(Bucket="wrongdays", VersioningConfiguration={"Status": "Suspended"})
        client.put_object(Bucket="healthy", Key="old/db-1.dump", Body=b"old")
        client.put_object(Bucket="healthy", Key="pg/db-1.dump", Body=b"one")
        client.put_object(Bucket="healthy", Key="pg/db-2.dump", Body=b"two")
        _wait_until_older_than(client, "healthy", "old/db-1.dump", STALE_S)
        yield S3(port, proc)
    finally:
        proc.stop()


def _target(s3: S3, name: str, bucket: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "endpoint": s3.endpoint, "bucket": bucket, "access_key": {"env": "SELFTEST_S3_KEY"},
            "secret_key": {"env": "SELFTEST_S3_SECRET"}, "timeout_s": 20,
            "lifecycle_rules": [{"id": "memory-retention", "prefix": "memory/", "expiration_days": 30}],
            "max_abort_multipart_days": 3, "versioning": True, **extra}


@pytest.fixture(scope="module")
def suite(s3: S3, blackhole: int, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    backups = [{"name": "pg", "prefix": "pg/", "max_age": "1h"},
               {"name": "stale", "prefix": "old/", "max_age": {"warn": "0.5s", "critical": "1s"}},
               {"name": "empty", "prefix": "nothing/"}]
    env = {"object_storage": [
        _target(s3, "healthy", "healthy", backups=backups),
        _target(s3, "missing", "no-such-bucket", backups=[{"name": "pg", "prefix": "pg/"}]),
        _target(s3, "norule", "norule"),
        _target(s3, "wrongdays", "wrongdays"),
        _target(s3, "prefixed", "prefixed", versioning=False),
        _target(s3, "refused", "healthy", endpoint=f"http://127.0.0.1:{free_port()}", timeout_s=5),
        _target(s3, "stalled", "healthy", endpoint=f"http://127.0.0.1:{blackhole}", timeout_s=1),
    ]}
    return run_checks(tmp_path_factory.mktemp("suite"), env, paths=CHECKS,
                      env_vars={"SELFTEST_S3_KEY": "selftest-access", "SELFTEST_S3_SECRET": "selftest-secret-value"})


def test_healthy_bucket_passes_every_check(suite: SuiteRun) -> None:
    for check in (EXISTS, RULE, ABORT, VERSIONING):
        assert suite.outcome(check, "healthy") == "passed", suite.stdout[-3000:]
    assert suite.outcome(FRESH, "healthy", item="pg") == "passed"
    assert "Traceback" not in suite.stdout and "ProbeCrashed" not in suite.stdout


def test_missing_bucket_fails_and_the_checks_behind_it_error(suite: SuiteRun) -> None:
    assert suite.outcome(EXISTS, "missing") == "failed"
    assert suite.message(EXISTS, "missing").startswith(
        "selftest-missing: expected bucket s3://no-such-bucket on 127.0.0.1:")
    assert "got no such bucket (HeadBucket 404) — Create the bucket" in suite.message(EXISTS, "missing")
    assert suite.outcome(RULE, "missing", item="memory-retention") == "error"
    assert suite.cause(RULE, "missing", item="memory-retention") == (
        "BucketMissing: bucket no-such-bucket does not exist: cannot read its lifecycle rules")
    assert suite.cause(FRESH, "missing", item="pg") == (
        "BucketMissing: bucket no-such-bucket does not exist: cannot list the objects under pg/")
    assert suite.outcome(VERSIONING, "missing") == "error"


def test_bucket_without_lifecycle_fails_the_rule_and_abort_checks(suite: SuiteRun) -> None:
    assert suite.outcome(RULE, "norule", item="memory-retention") == "failed"
    assert suite.message(RULE, "norule", item="memory-retention").startswith(
        "selftest-norule-memory-retention: expected lifecycle rule memory-retention, prefix 'memory/', expiry after "
        "30 d, enabled, got no rule memory-retention (rules: no lifecycle configuration) — Re-apply the lifecycle")
    assert suite.outcome(ABORT, "norule") == "failed"
    assert ("expected an enabled bucket-wide rule aborting incomplete multipart uploads after <= 3 d, got no rule "
            "aborts incomplete multipart uploads" in suite.message(ABORT, "norule"))
    assert suite.outcome(VERSIONING, "norule") == "failed"
    assert "expected versioning Enabled on norule, got never enabled" in suite.message(VERSIONING, "norule")


def test_rule_with_wrong_days_and_slow_abort_and_suspended_versioning_fail(suite: SuiteRun) -> None:
    assert suite.outcome(RULE, "wrongdays", item="memory-retention") == "failed"
    assert "got rule memory-retention has expiry after 7 d" in suite.message(RULE, "wrongdays", item="memory-retention")
    assert suite.outcome(ABORT, "wrongdays") == "failed"
    assert suite.message(ABORT, "wrongdays").startswith(
        "selftest-wrongdays: expected days before rule abort-multipart aborts incomplete multipart uploads <= 3 d, "
        "got 10 d — Add (or shorten) an AbortIncompleteMultipartUpload rule")
    assert suite.outcome(VERSIONING, "wrongdays") == "failed"
    assert "got Suspended" in suite.message(VERSIONING, "wrongdays")


def test_rule_on_another_prefix_and_abort_only_under_a_prefix_fail(suite: SuiteRun) -> None:
    assert suite.outcome(RULE, "prefixed", item="memory-retention") == "failed"
    assert "got rule memory-retention has prefix 'other/'" in suite.message(RULE, "prefixed", item="memory-retention")
    assert suite.outcome(ABORT, "prefixed") == "failed"
    assert ("got only under a prefix: abort-tmp (prefix 'tmp/', enabled, aborts multipart after 1 d)"
            in suite.message(ABORT, "prefixed"))
    assert suite.outcome(VERSIONING, "prefixed") == "passed"  # versioning: false, and it was never enabled


def test_stale_and_missing_backups_fail(suite: SuiteRun) -> None:
    assert suite.outcome(FRESH, "healthy", item="stale") == "failed"
    message = suite.message(FRESH, "healthy", item="stale")
    assert message.startswith("selftest-healthy-stale: expected age of the newest backup under s3://healthy/old/ "
                              "<= 1 s, got ")
    assert "(old/db-1.dump, written " in message and "UTC, 1 object) — The backup job" in message
    assert suite.outcome(FRESH, "healthy", item="empty") == "failed"
    assert "expected backup objects under s3://healthy/nothing/, got none" in suite.message(
        FRESH, "healthy", item="empty")


def test_unreachable_endpoint_errors_every_check_with_one_cause(suite: SuiteRun) -> None:
    for check in (EXISTS, RULE, ABORT, VERSIONING):
        kw = {"item": "memory-retention"} if check == RULE else {}
        assert suite.outcome(check, "refused", **kw) == "error"
        message = suite.cause(check, "refused", **kw)
        assert message.startswith("Unreachable: cannot connect to http://127.0.0.1:"), message
        assert message.endswith("connection refused"), message


def test_stalled_endpoint_errors_with_a_timeout(suite: SuiteRun, blackhole: int) -> None:
    assert suite.outcome(EXISTS, "stalled") == "error"
    message = suite.message(EXISTS, "stalled")
    assert message.startswith("ProbeTimeout: ") and f"127.0.0.1:{blackhole}" in message and "1 s" in message, message
    assert suite.outcome(RULE, "stalled", item="memory-retention") == "error"


def test_no_secret_reaches_the_reports(suite: SuiteRun) -> None:
    reports = (suite.reports / "summary.json").read_text() + (suite.reports / "junit.xml").read_text()
    assert "selftest-secret-value" not in suite.stdout and "selftest-secret-value" not in reports


def test_config_needs_both_keys_and_unique_rules(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    base = {"name": "b", "bucket": "backups"}
    path.write_text(json.dumps({"name": "cfg", "object_storage": [{**base, "access_key": {"env": "A"}}]}))
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    assert "object_storage[0]" in str(caught.value) and "both 'access_key' and 'secret_key'" in str(caught.value)
    path.write_text(json.dumps({"name": "cfg", "object_storage": [
        {**base, "backups": [{"name": "pg", "prefix": "pg/"}]}]}))
    target = load_environment(path).object_storage[0]
    assert target.backups[0].max_age.critical == 26 * 3600 and target.where == "s3://backups on s3.us-east-1.amazonaws.com"
