"""Vault / OpenBao stored-data probes: a KV secret's metadata (its age and versions) and the enabled
audit devices.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from opsverify.config.vault import VaultSecret, VaultTarget
from opsverify.engine import ProbeContext
from opsverify.errors import UnexpectedResponse
from opsverify.probes.vault.api import _Api, _time
from opsverify.probes.vault.facts import VaultAudit, VaultKvSecret
from opsverify.probes.vault.server import _ready


async def kv_secret(ctx: ProbeContext[VaultTarget]) -> VaultKvSecret:
    """``<mount>/metadata/<path>``: when the current version of a KV v2 secret was written."""
    item: VaultSecret = ctx.item
    doing = f"read the metadata of {item.full_path}"
    api = _Api(ctx)
    await _ready(ctx, doing)
    path = f"{item.mount}/metadata/{item.path}"
    status, body = await api.call("GET", path, token=api.checker_token())
    if status == 404:
        return VaultKvSecret(
            item.full_path, False, f"no such secret (nothing at {path}; is {item.mount}/ a KV version 2 mount?)"
        )
    if status != 200 or not isinstance((body or {}).get("data"), dict):
        raise api.refuse(status, body, path, doing)
    data: dict[str, Any] = body["data"]
    current = int(data.get("current_version") or 0)
    version = (data.get("versions") or {}).get(str(current)) or {}
    # The current version's creation is the rotation time; updated_time also moves on metadata-only
    # edits (max_versions, custom_metadata), which would hide rotation drift.
    written = _time(version.get("created_time")) or _time(data.get("updated_time"))
    if written is None:
        raise UnexpectedResponse(f"{path} on {api.where}: metadata has no version timestamps")
    age = (datetime.now(timezone.utc) - written).total_seconds()
    return VaultKvSecret(
        path=item.full_path,
        found=True,
        current_version=current,
        written=written,
        metadata_updated=_time(data.get("updated_time")),
        age_s=max(age, 0.0),
        current_deleted=bool(_time(version.get("deletion_time"))) or bool(version.get("destroyed")),
    )


async def audit(ctx: ProbeContext[VaultTarget]) -> VaultAudit:
    """``GET sys/audit`` (needs ``sudo`` on sys/audit): the enabled audit devices."""
    doing = "list the audit devices"
    api = _Api(ctx)
    await _ready(ctx, doing)
    data = await api.data("GET", "sys/audit", doing, token=api.checker_token())
    devices = {
        str(path): str((info or {}).get("type", "?")) for path, info in data.items() if isinstance(info, dict)
    }
    return VaultAudit(devices=devices)
