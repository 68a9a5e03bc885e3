"""Integrity of the evidence: the run seals ``summary.json``, the gate recomputes the seal.

The seal is the document's ``integrity`` block, computed over the canonical JSON of everything else
in it (schema, run, totals, checks)::

    "integrity": {"algorithm": "sha256", "digest": "<hex>"}
    "integrity": {"algorithm": "sha256", "digest": "<hex>",
                  "signature": {"algorithm": "hmac-sha256", "key": "$OPSVERIFY_EVIDENCE_KEY", "value": "<hex>"}}

The digest catches a summary edited by hand or cut short (a record flipped from failed to passed,
a marker removed, records deleted and the totals fixed). It does not stop someone who recomputes
it: where results cross a trust boundary (built by one job, judged by another), set the same secret
as ``$OPSVERIFY_EVIDENCE_KEY`` for the run and as the policy's ``evidence.key`` for the gate; the run
then signs with HMAC-SHA256 and the gate holds anything not signed with that key.

Example::

    document = seal(document, key=os.environ.get(KEY_ENV))
    problem = verify(document, key=None)      # "" when intact
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

KEY_ENV = "OPSVERIFY_EVIDENCE_KEY"
DIGEST = "sha256"
SIGNATURE = "hmac-sha256"


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes the seal covers: the document without its ``integrity`` block, keys sorted."""
    body = {key: value for key, value in document.items() if key != "integrity"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _sign(body: bytes, key: str) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def seal(document: dict[str, Any], key: str | None = None, key_label: str = f"${KEY_ENV}") -> dict[str, Any]:
    """``document`` with its ``integrity`` block (a digest; with ``key``, also an HMAC signature)."""
    body = canonical(document)
    block: dict[str, Any] = {"algorithm": DIGEST, "digest": hashlib.sha256(body).hexdigest()}
    if key:
        block["signature"] = {"algorithm": SIGNATURE, "key": key_label, "value": _sign(body, key)}
    return {**document, "integrity": block}


def verify(document: dict[str, Any], key: str | None = None, key_label: str = "") -> str:
    """Why ``document``'s seal does not hold ("" when it does). With ``key``, a valid signature
    made with that key is required too."""
    block = document.get("integrity")
    if not isinstance(block, dict) or block.get("algorithm") != DIGEST or not isinstance(block.get("digest"), str):
        return "it carries no integrity digest (written by hand, or by an opsverify without one)"
    body = canonical(document)
    if not hmac.compare_digest(block["digest"], hashlib.sha256(body).hexdigest()):
        return "its integrity digest does not match its contents (edited or cut short after the run)"
    if key is None:
        return ""
    signature = block.get("signature")
    if not isinstance(signature, dict) or signature.get("algorithm") != SIGNATURE \
            or not isinstance(signature.get("value"), str):
        return f"it is not signed, and the policy accepts only evidence signed with {key_label}"
    if not hmac.compare_digest(signature["value"], _sign(body, key)):
        return f"its signature was not made with {key_label} (another key, or the contents were changed)"
    return ""
