"""A real headless Chromium (Debian ``chromium``) for the self-tests that check what a person sees.

Each call starts a fresh browser with a new profile directory, inside its own network namespace
(``unshare -rn``: a page can reach nothing, and nothing the browser does leaves the machine), with
everything that phones home switched off::

    dom = dump_dom(page)                    # the DOM after rendering, as HTML text
    screenshot(page, tmp / "page.png")      # what a person sees

``scripts/tools/chromium.sh`` installs it; where it is absent the tests that need it are skipped
with that reason.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars"]
MISSING = "Debian chromium is not installed: bash scripts/tools/chromium.sh (apt-get install chromium, as root)"


def chromium() -> str | None:
    """The browser's path (Debian's chromium; Google Chrome, as GitHub's Ubuntu runners have it, does
    as well), or ``None`` when none is installed."""
    return next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)


def _run(page: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    browser = chromium()
    assert browser, MISSING
    with tempfile.TemporaryDirectory(prefix="opsverify-chromium-") as profile:
        argv = [browser, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
        netns = ["unshare", "-rn", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh"]
        proc = subprocess.run([*netns, *argv], capture_output=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return proc


def dump_dom(page: Path) -> str:
    """The page's DOM once Chromium has loaded and laid it out (``--dump-dom``)."""
    return _run(page, "--dump-dom").stdout.decode()


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 900) -> tuple[int, int]:
    """A PNG of the page as drawn; returns its (width, height).

    (Chromium's command line cannot draw a page with scripts disabled: ``--blink-settings=
    scriptEnabled=false`` makes ``--screenshot`` and ``--dump-dom`` write nothing. A test that
    means "readable without JavaScript" asserts that the page holds no script at all.)
    """
    _run(page, f"--window-size={width},{height}", f"--screenshot={out}")
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{out} is not a PNG"
    return struct.unpack(">II", head[16:24])
