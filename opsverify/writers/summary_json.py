"""``summary.json``: the machine interface the gate and other tools read.

The document is redacted, then sealed (:mod:`opsverify.integrity`: a digest, and an HMAC signature
when ``$OPSVERIFY_EVIDENCE_KEY`` is set), then written whole or not at all (a temporary file renamed
into place), so a run that dies while writing leaves no half a summary behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from opsverify.config.secrets import REDACTOR
from opsverify.integrity import KEY_ENV, seal
from opsverify.results import CheckRecord, RunInfo, summary_document


def write(path: Path, run: RunInfo, records: list[CheckRecord]) -> Path:
    """Write the summary document (redacted and sealed) to ``path``."""
    key = os.environ.get(KEY_ENV) or None
    if key:
        REDACTOR.add(key)
    document = seal(REDACTOR.redact_obj(summary_document(run, records)), key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    os.replace(partial, path)
    return path
