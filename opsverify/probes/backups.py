"""Backup artifacts on a file system: the files a path glob matches, newest and oldest, with sizes.

Used by the ``backups:`` section and by a ``postgres:`` target's ``backup:`` key. The file system
work (a glob over a possibly slow network mount) runs in a worker thread, bounded by the timeout.

No match is data (the checks fail: the backup is missing); a directory that exists but cannot be
read is an error (:class:`~opsverify.errors.Unreachable`: the check could not look).

Example::

    found = await newest_artifact(ctx, spec)     # spec: a BackupSpec (path, max_age, min_size)
    found.count, found.newest, found.newest_age_s, found.newest_size
"""

from __future__ import annotations

import asyncio
import glob
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsverify.config.datastores import BackupSpec
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, Unreachable
from opsverify.net.tls import base_dir

MAX_FILES = 100_000  # a glob that matches more is a mistake in the pattern, not a backup set
CLOCK_SKEW_S = 60.0  # a modification time at most this far ahead of the checker's clock is taken as "now"


@dataclass
class BackupArtifacts:
    """What the path glob matched (regular files only); ages in seconds, sizes in bytes.

    An age is negative when the file's modification time is ahead of the checker's clock: such an
    age is no evidence of a recent backup (see :meth:`from_the_future`).
    """

    pattern: str
    count: int
    newest: str | None = None
    newest_age_s: float | None = None
    newest_size: int | None = None
    oldest: str | None = None
    oldest_age_s: float | None = None
    missing_dir: str | None = None  # the directory the glob starts from does not exist

    @staticmethod
    def from_the_future(age_s: float | None) -> bool:
        """Whether a file of age ``age_s`` was modified further ahead of the checker's clock than skew explains."""
        return age_s is not None and age_s < -CLOCK_SKEW_S

    @property
    def newest_name(self) -> str:
        return Path(self.newest).name if self.newest else "(none)"


def resolve_pattern(ctx: ProbeContext[Any], path: str) -> str:
    """``path`` with ``${VAR}``/``~`` expanded, relative to the environment file's directory."""
    expanded = os.path.expanduser(os.path.expandvars(path))
    base = base_dir(ctx.env)
    if not os.path.isabs(expanded) and base:
        expanded = os.path.join(base, expanded)
    return expanded


def _fixed_prefix(pattern: str) -> Path:
    """The deepest directory of ``pattern`` without glob characters."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def scan(pattern: str) -> BackupArtifacts:
    """Glob ``pattern`` (``**`` recurses) and describe the newest and oldest regular files."""
    start_dir = _fixed_prefix(pattern)
    if not start_dir.is_dir():
        return BackupArtifacts(pattern=pattern, count=0, missing_dir=str(start_dir))
    if not os.access(start_dir, os.R_OK | os.X_OK):
        raise Unreachable(f"cannot read directory {start_dir}: permission denied")
    now = time.time()
    files: list[tuple[float, int, str]] = []
    for index, name in enumerate(glob.iglob(pattern, recursive=True)):
        if index >= MAX_FILES:
            raise Unreachable(f"{pattern} matches more than {MAX_FILES:,} entries; narrow the pattern")
        try:
            stat = os.stat(name)
        except OSError:
            continue  # removed while we looked (rotation running)
        if os.path.isfile(name):
            files.append((stat.st_mtime, stat.st_size, name))
    if not files:
        return BackupArtifacts(pattern=pattern, count=0)
    files.sort()
    oldest, newest = files[0], files[-1]
    return BackupArtifacts(
        pattern=pattern,
        count=len(files),
        newest=newest[2],
        newest_age_s=now - newest[0],  # negative: modified in the future (the checks say so, no clamp)
        newest_size=newest[1],
        oldest=oldest[2],
        oldest_age_s=now - oldest[0],
    )


async def artifacts(ctx: ProbeContext[Any], spec: BackupSpec) -> BackupArtifacts:
    """The artifacts ``spec.path`` matches, looked up in a worker thread within ``ctx.timeout``."""
    pattern = resolve_pattern(ctx, spec.path)
    ctx.phase = f"listing {pattern}"
    try:
        return await asyncio.wait_for(ctx.run_sync(scan, pattern), ctx.timeout)
    except (asyncio.TimeoutError, TimeoutError):
        raise ProbeTimeout(f"listing {pattern} took longer than {ctx.timeout:g} s") from None
    except PermissionError as exc:
        raise Unreachable(f"cannot read {exc.filename or pattern}: permission denied") from None
