"""Object storage retention and backups: the bucket exists, its lifecycle rules expire old data and abort
stale multipart uploads, the newest backup is recent, and versioning is as intended.
"""

from __future__ import annotations

import pytest



def _human(seconds: float) -> str:
    """``2 d 4 h``, ``3 h 5 min``, ``42 s`` (two units at most)."""
    left = int(seconds)
    for unit, size, small_unit, small_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60),
                                               ("min", 60, "s", 1)):
        if left >= size:
            big, rest = divmod(left, size)
            small = rest // small_size
            return f"{big} {unit}" + (f" {small} {small_unit}" if small else "")
    return f"{seconds:.0f} s"


def _judge_age(expect, seconds: float, threshold, *, what: str, note: str) -> None:
    __tracebackhide__ = True
    level = threshold.judge_at_most(seconds)
    expect.record("newest backup age", seconds, unit="s", threshold=threshold, direction="at_most", level=level)
    if level == "critical":
        expect.fail(expected=f"{what} <= {_human(threshold.critical)}", actual=f"{_human(seconds)}{note}")
    if level == "warn" and threshold.warn is not None:
        expect.warn(f"{what} is {_human(seconds)}, past the warning level {_human(threshold.warn)}{note}")


@pytest.mark.smoke
@pytest.mark.runbook("storage#bucket-exists")
@pytest.mark.severity("critical")
def test_bucket_exists(object_storage_bucket, target, expect):
    expect.that(object_storage_bucket.exists, expected=f"bucket {target.where}",
                actual="no such bucket (HeadBucket 404)")


@pytest.mark.smoke
@pytest.mark.each("lifecycle_rules")
@pytest.mark.runbook("storage#lifecycle-rule")
def test_lifecycle_rule_is_in_place(object_storage_lifecycle, target, target_item, expect):
    want = target_item
    rule = object_storage_lifecycle.rule(want.id)
    wanted = [f"lifecycle rule {want.id}"]
    if want.prefix is not None:
        wanted.append(f"prefix {want.prefix!r}")
    if want.expiration_days is not None:
        wanted.append(f"expiry after {want.expiration_days} d")
    expected = ", ".join(wanted) + ", enabled"
    present = ", ".join(r.describe() for r in object_storage_lifecycle.rules) or "no lifecycle configuration"
    expect.that(rule is not None, expected=expected, actual=f"no rule {want.id} (rules: {present})")
    assert rule is not None
    wrong = []
    if want.prefix is not None and rule.prefix != want.prefix:
        wrong.append(f"prefix {rule.prefix!r}")
    if want.expiration_days is not None and rule.expiration_days != want.expiration_days:
        wrong.append("no expiry" if rule.expiration_days is None else f"expiry after {rule.expiration_days} d")
    if not rule.enabled:
        wrong.append("disabled")
    expect.that(not wrong, expected=expected, actual=f"rule {want.id} has " + ", ".join(wrong))


@pytest.mark.smoke
@pytest.mark.configured("max_abort_multipart_days")
@pytest.mark.runbook("storage#abort-multipart")
def test_incomplete_multipart_uploads_are_aborted(object_storage_lifecycle, target, expect):
    limit = target.max_abort_multipart_days
    aborting = [r for r in object_storage_lifecycle.rules if r.enabled and r.abort_days is not None]
    bucket_wide = [r for r in aborting if r.prefix == ""]
    expected = f"an enabled bucket-wide rule aborting incomplete multipart uploads after <= {limit} d"
    if not bucket_wide:
        actual = ("only under a prefix: " + ", ".join(r.describe() for r in aborting)) if aborting \
            else "no rule aborts incomplete multipart uploads"
        expect.fail(expected=expected, actual=actual)
    best = min(bucket_wide, key=lambda r: r.abort_days or 0)
    assert best.abort_days is not None
    expect.at_most(best.abort_days, limit, what=f"days before rule {best.id} aborts incomplete multipart uploads",
                   unit="d")


@pytest.mark.smoke
@pytest.mark.each("backups")
@pytest.mark.runbook("storage#backup-fresh")
@pytest.mark.severity("critical")
def test_newest_backup_is_recent(object_storage_newest_backup, target, target_item, expect):
    newest = object_storage_newest_backup
    where = f"s3://{target.bucket}/{target_item.prefix}"
    expect.that(newest.key is not None, expected=f"backup objects under {where}", actual="none")
    assert newest.age_s is not None and newest.last_modified is not None
    expect.fact("newest_backup", newest.key)
    _judge_age(expect, newest.age_s, target_item.max_age, what=f"age of the newest backup under {where}",
               note=f" ({newest.key}, written {newest.last_modified:%Y-%m-%d %H:%M:%S} UTC, "
                        f"{newest.count} object{'s' if newest.count != 1 else ''})")


@pytest.mark.configured("versioning")
@pytest.mark.runbook("storage#versioning")
def test_bucket_versioning_is_as_expected(object_storage_versioning, target, expect):
    seen = object_storage_versioning
    want = "Enabled" if target.versioning else "not enabled (never enabled or Suspended)"
    expect.that(seen.enabled == target.versioning, expected=f"versioning {want} on {target.bucket}",
                actual=seen.status)
