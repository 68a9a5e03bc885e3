"""``object_storage:`` section: an S3-compatible bucket (AWS S3, MinIO ...) - lifecycle, backups, versioning.

Durations (``max_age``) are written as ``45s``, ``30m``, ``26h``, ``7d`` or a number of days.

Its keys: ``docs/environment/reference.md#object_storage``;
an example and its checks: ``docs/environment/object-storage.md``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from opsverify.config.base import NAME_MAX, NAME_PATTERN, Strict, Target, section
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import Threshold
from opsverify.config.vault import MaxDuration
from opsverify.config.values import HttpUrl


class LifecycleRuleSpec(Strict):
    """A lifecycle rule that must be present and enabled: its id, prefix and expiry days."""

    id: str = Field(min_length=1)
    prefix: str | None = Field(default=None, description="the rule's filter prefix ('' = whole bucket)")
    expiration_days: int | None = Field(default=None, ge=1)

    @property
    def name(self) -> str:
        return self.id


class BackupPrefix(Strict):
    """Objects under ``prefix``: the newest must be younger than ``max_age``."""

    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)
    prefix: str = ""
    max_age: MaxDuration = Field(default=None, description="default 26h (a nightly job plus slack)")

    @model_validator(mode="after")
    def _default_age(self) -> BackupPrefix:
        if self.max_age is None:
            self.max_age = Threshold(critical=26 * 3600.0)
        return self


class ObjectStorageTarget(Target):
    """One bucket on an S3-compatible endpoint and what must be true of it."""

    bucket: str = Field(min_length=3, max_length=63)
    endpoint: HttpUrl | None = Field(default=None, pattern=r"^https?://[^/]+/?$")
    region: str = "us-east-1"
    access_key: SecretRef | None = None
    secret_key: SecretRef | None = None
    addressing: Literal["path", "virtual"] = "path"
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    lifecycle_rules: list[LifecycleRuleSpec] = Field(default_factory=list)
    max_abort_multipart_days: int | None = Field(default=None, ge=1)
    backups: list[BackupPrefix] = Field(default_factory=list)
    versioning: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ObjectStorageTarget:
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("set both 'access_key' and 'secret_key', or neither (the default credential chain)")
        if self.endpoint:
            self.endpoint = self.endpoint.rstrip("/")
        for key, names in (("lifecycle_rules", [r.id for r in self.lifecycle_rules]),
                           ("backups", [b.name for b in self.backups])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{key}: duplicate {dupes[0]!r}")
        return self

    @property
    def where(self) -> str:
        """``bucket@host`` as messages name it."""
        host = (self.endpoint or f"s3.{self.region}.amazonaws.com").split("://")[-1]
        return f"s3://{self.bucket} on {host}"


section(
    "object_storage",
    ObjectStorageTarget,
    system="object_storage",
    doc="S3-compatible buckets: exist, lifecycle rules (expiry, abort multipart), fresh backups, versioning",
)
