"""Secret files are read bounded: a device, a FIFO, a directory or a huge file is refused, never read.

``{file: /dev/zero}`` would fill memory and ``{file: <a FIFO>}`` would block the run forever. The
loader refuses such a reference with a one-line usage error naming the file and the key; a file that
turns into one after the run started makes only the checks that need it error, at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from opsverify.config.model import load_environment
from opsverify.config.secrets import MAX_SECRET_BYTES, SecretRef, read_secret_file
from opsverify.errors import ConfigError, SecretMissing
from tests.harness import ROOT, run_pytest

BASE = [f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}", "--no-reports"]


def _env(tmp_path: Path, secret: str) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text(
        f"name: files\nredis:\n  - name: cache\n    url: 'redis://127.0.0.1:1/0'\n    password: {{file: '{secret}'}}\n"
    )
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "secret.fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def huge(tmp_path: Path) -> Path:
    path = tmp_path / "huge"
    with path.open("wb") as handle:
        handle.truncate(MAX_SECRET_BYTES + 1)  # sparse: one byte past the limit
    return path


def _refusal(tmp_path: Path, secret: Path | str) -> str:
    env = _env(tmp_path, str(secret))
    with pytest.raises(ConfigError) as caught:
        load_environment(env)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"{env}: redis[0].password"), text
    return text


def test_a_device_is_refused_when_the_file_is_loaded(tmp_path: Path) -> None:
    assert "secret file /dev/zero is not a regular file" in _refusal(tmp_path, "/dev/zero")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path, fifo: Path) -> None:
    started = time.monotonic()
    assert f"secret file {fifo} is not a regular file" in _refusal(tmp_path, fifo)
    assert time.monotonic() - started < 5  # a blocking open would never return


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert "is not a regular file (a device, FIFO, socket or directory cannot hold a secret)" in _refusal(
        tmp_path, tmp_path)


def test_a_file_past_the_size_limit_is_refused_and_one_at_the_limit_is_read(tmp_path: Path, huge: Path) -> None:
    assert f"secret file {huge} is larger than 1024 KiB (1,048,577 bytes)" in _refusal(tmp_path, huge)
    at_limit = tmp_path / "at-limit"
    at_limit.write_text("s" * MAX_SECRET_BYTES)
    assert read_secret_file(at_limit) == "s" * MAX_SECRET_BYTES


def test_a_missing_file_is_left_to_the_checks_that_need_it(tmp_path: Path) -> None:
    env = load_environment(_env(tmp_path, str(tmp_path / "not-yet")))
    with pytest.raises(SecretMissing, match="cannot be read"):
        env.targets("redis")[0].password.reveal()


def test_a_file_that_becomes_a_fifo_after_loading_errors_at_once(tmp_path: Path) -> None:
    path = tmp_path / "later"
    path.write_text("tok-later-secret\n")
    ref = SecretRef(file=str(path))
    path.unlink()
    os.mkfifo(path)
    started = time.monotonic()
    with pytest.raises(SecretMissing, match="is not a regular file"):
        ref.reveal()
    assert time.monotonic() - started < 5


def test_a_non_utf8_file_is_refused_at_read(tmp_path: Path) -> None:
    path = tmp_path / "binary"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SecretMissing, match="is not UTF-8 text"):
        read_secret_file(path)


def test_pytest_stops_with_a_one_line_usage_error(tmp_path: Path, fifo: Path) -> None:
    env = _env(tmp_path, str(fifo))
    proc = run_pytest([*BASE, f"--env-file={env}"], timeout=60)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"ERROR: environment file {env}: redis[0].password (target 'cache'): "
                     f"secret file {fifo} is not a regular file (a device, FIFO, socket or directory cannot hold a "
                     "secret) (line 5)"], proc.stderr
