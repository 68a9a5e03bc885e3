"""``summary.json``: the machine interface the gate and other tools read."""

from __future__ import annotations

import json
from pathlib import Path

from opsverify.config.secrets import REDACTOR
from opsverify.results import CheckRecord, RunInfo, summary_document


def write(path: Path, run: RunInfo, records: list[CheckRecord]) -> Path:
    """Write the summary document (redacted) to ``path``."""
    document = REDACTOR.redact_obj(summary_document(run, records))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path
