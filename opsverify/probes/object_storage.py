"""S3-compatible object storage probes (boto3, in the engine's worker threads).

Calls used, all read-only: ``HeadBucket``, ``GetBucketLifecycleConfiguration``,
``GetBucketVersioning``, ``ListObjectsV2`` (paginated, at most :data:`MAX_LISTED` keys per prefix).

Every probe but :func:`bucket` first awaits the target's ``HeadBucket`` result (``ctx.depend``): an
unreachable endpoint errors every check with one cause, and a missing bucket fails the
bucket check while the others error with :class:`BucketMissing` ("cannot read its lifecycle").
What the checks exist to catch comes back as data: no lifecycle configuration (an empty rule list),
versioning never enabled, no object under a backup prefix.

Example::

    info = await bucket(ctx)              # .exists, .status
    rules = await lifecycle(ctx)          # .rules: [LifecycleRule(id, prefix, enabled, expiration_days, abort_days)]
    newest = await newest_object(ctx)     # ctx.item is a BackupPrefix; .key, .age_s, .count
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsverify.config.object_storage import BackupPrefix, ObjectStorageTarget
from opsverify.engine import ProbeContext
from opsverify.errors import BucketMissing, CouldNotVerify, ProbeTimeout, StorageDenied, UnexpectedResponse, Unreachable
from opsverify.lazy import lazy_module
from opsverify.net.tls import base_dir

if TYPE_CHECKING:
    import boto3
    import botocore.config as botocore_config
    import botocore.exceptions as boto_errors
    from botocore.exceptions import ClientError
else:
    boto3 = lazy_module("boto3")
    botocore_config = lazy_module("botocore.config")
    boto_errors = lazy_module("botocore.exceptions")

MAX_LISTED = 100_000
BUCKET_PROBE = "object_storage_bucket"


@dataclass
class BucketInfo:
    """``HeadBucket``: does the bucket exist (HTTP status of the answer)."""

    bucket: str
    exists: bool
    status: int


@dataclass
class LifecycleRule:
    """One rule of the bucket's lifecycle configuration, flattened."""

    id: str
    prefix: str
    enabled: bool
    expiration_days: int | None
    abort_days: int | None

    def describe(self) -> str:
        parts = [f"prefix {self.prefix!r}", "enabled" if self.enabled else "disabled"]
        if self.expiration_days is not None:
            parts.append(f"expires after {self.expiration_days} d")
        if self.abort_days is not None:
            parts.append(f"aborts multipart after {self.abort_days} d")
        return f"{self.id or '(no id)'} ({', '.join(parts)})"


@dataclass
class Lifecycle:
    """The bucket's lifecycle rules (empty when it has no lifecycle configuration)."""

    rules: list[LifecycleRule] = field(default_factory=list)

    def rule(self, rule_id: str) -> LifecycleRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


@dataclass
class Versioning:
    """``GetBucketVersioning``: ``Enabled``, ``Suspended`` or ``never enabled``."""

    status: str

    @property
    def enabled(self) -> bool:
        return self.status == "Enabled"


@dataclass
class NewestObject:
    """The newest object under a prefix (``key`` None: nothing there)."""

    prefix: str
    count: int
    key: str | None = None
    last_modified: datetime | None = None
    size: int | None = None
    truncated: bool = False

    @property
    def age_s(self) -> float | None:
        if self.last_modified is None:
            return None
        return max((datetime.now(timezone.utc) - self.last_modified).total_seconds(), 0.0)


def _client(ctx: ProbeContext[ObjectStorageTarget]) -> Any:
    target = ctx.target
    verify: bool | str = target.verify_tls
    if target.verify_tls and target.ca_bundle:
        path = Path(os.path.expandvars(target.ca_bundle))
        base = base_dir(ctx.env)
        verify = str(path if path.is_absolute() or not base else Path(base) / path)
    config = botocore_config.Config(
        connect_timeout=max(target.timeout, 0.5), read_timeout=max(target.timeout, 0.5),
        retries={"max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": target.addressing},
        signature_version="s3v4",
    )
    kwargs: dict[str, Any] = {"region_name": target.region, "config": config, "verify": verify}
    if target.endpoint:
        kwargs["endpoint_url"] = target.endpoint
    if target.access_key is not None and target.secret_key is not None:
        kwargs["aws_access_key_id"] = target.access_key.reveal().strip()
        kwargs["aws_secret_access_key"] = target.secret_key.reveal().strip()
    return boto3.session.Session().client("s3", **kwargs)


def _code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return str(error.get("Code", "")), status


async def _call(ctx: ProbeContext[ObjectStorageTarget], doing: str, fn: Any) -> Any:
    """Run ``fn(client)`` in a worker thread within the probe's timeout; translate boto errors."""
    target = ctx.target
    ctx.phase = doing

    def run() -> Any:
        return fn(_client(ctx))

    try:
        return await asyncio.wait_for(ctx.run_sync(run), target.timeout)
    except asyncio.TimeoutError:
        raise ProbeTimeout(f"{target.where} did not answer within {target.timeout:g} s ({doing})") from None
    except boto_errors.EndpointConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc.__context__ or exc).lower() else str(exc)
        raise Unreachable(f"cannot connect to {target.endpoint or 'S3'}: {reason}") from None
    except (boto_errors.ConnectTimeoutError, boto_errors.ReadTimeoutError):
        raise ProbeTimeout(f"{target.where} did not answer within {target.timeout:g} s ({doing})") from None
    except boto_errors.NoCredentialsError:
        raise StorageDenied(f"no S3 credentials for {target.where}: set access_key/secret_key") from None
    except boto_errors.ClientError:
        raise
    except boto_errors.BotoCoreError as exc:
        raise Unreachable(f"{target.where}: {exc}") from None


def _refused(target: ObjectStorageTarget, exc: ClientError, doing: str) -> CouldNotVerify:
    code, status = _code(exc)
    if status == 403 or code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
        return StorageDenied(f"{target.where} refused the checker's credentials ({code or status}): cannot {doing}")
    return UnexpectedResponse(f"{target.where}: {code or 'error'} (HTTP {status}): cannot {doing}")


async def bucket(ctx: ProbeContext[ObjectStorageTarget]) -> BucketInfo:
    """``HeadBucket``: 200 exists, 404 does not (data); 403 and anything else could not tell."""
    target = ctx.target
    try:
        await _call(ctx, "HeadBucket", lambda s3: s3.head_bucket(Bucket=target.bucket))
    except boto_errors.ClientError as exc:
        code, status = _code(exc)
        if status == 404 or code in {"404", "NoSuchBucket", "NotFound"}:
            return BucketInfo(target.bucket, False, 404)
        raise _refused(target, exc, "tell whether the bucket exists") from None
    return BucketInfo(target.bucket, True, 200)


async def _require_bucket(ctx: ProbeContext[ObjectStorageTarget], doing: str) -> None:
    target = ctx.target
    info: BucketInfo = await ctx.depend(BUCKET_PROBE)
    if not info.exists:
        raise BucketMissing(f"bucket {target.bucket} does not exist: cannot {doing}")


def _rule(raw: dict[str, Any]) -> LifecycleRule:
    filt = raw.get("Filter") or {}
    prefix = filt.get("Prefix", (filt.get("And") or {}).get("Prefix", raw.get("Prefix", "")))
    expiration = (raw.get("Expiration") or {}).get("Days")
    abort = (raw.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
    return LifecycleRule(
        id=str(raw.get("ID", "")), prefix=str(prefix or ""), enabled=raw.get("Status") == "Enabled",
        expiration_days=int(expiration) if expiration is not None else None,
        abort_days=int(abort) if abort is not None else None,
    )


async def lifecycle(ctx: ProbeContext[ObjectStorageTarget]) -> Lifecycle:
    """``GetBucketLifecycleConfiguration`` (no configuration at all: no rules)."""
    target = ctx.target
    doing = "read its lifecycle rules"
    await _require_bucket(ctx, doing)
    try:
        answer = await _call(ctx, "GetBucketLifecycleConfiguration",
                             lambda s3: s3.get_bucket_lifecycle_configuration(Bucket=target.bucket))
    except boto_errors.ClientError as exc:
        if _code(exc)[0] == "NoSuchLifecycleConfiguration":
            return Lifecycle([])
        raise _refused(target, exc, doing) from None
    return Lifecycle([_rule(r) for r in answer.get("Rules", [])])


async def versioning(ctx: ProbeContext[ObjectStorageTarget]) -> Versioning:
    """``GetBucketVersioning``: no ``Status`` in the answer means versioning was never enabled."""
    target = ctx.target
    doing = "read its versioning state"
    await _require_bucket(ctx, doing)
    try:
        answer = await _call(ctx, "GetBucketVersioning", lambda s3: s3.get_bucket_versioning(Bucket=target.bucket))
    except boto_errors.ClientError as exc:
        raise _refused(target, exc, doing) from None
    return Versioning(str(answer.get("Status") or "never enabled"))


async def newest_object(ctx: ProbeContext[ObjectStorageTarget]) -> NewestObject:
    """The newest object under the backup prefix (``ctx.item``), by ``LastModified``."""
    target = ctx.target
    item: BackupPrefix = ctx.item
    doing = f"list the objects under {item.prefix or '/'}"
    await _require_bucket(ctx, doing)

    def scan(s3: Any) -> NewestObject:
        found = NewestObject(prefix=item.prefix, count=0)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=item.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                found.count += 1
                modified = obj["LastModified"]
                if found.last_modified is None or modified > found.last_modified:
                    found.key, found.last_modified, found.size = obj["Key"], modified, int(obj.get("Size", 0))
            if found.count >= MAX_LISTED:
                found.truncated = True
                break
        return found

    try:
        result: NewestObject = await _call(ctx, "ListObjectsV2", scan)
    except boto_errors.ClientError as exc:
        raise _refused(target, exc, doing) from None
    return result
