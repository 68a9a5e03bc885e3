"""The sandbox's object storage: moto's standalone S3 server (see :mod:`opsverify_sandbox.servers.s3` for why).

Port (fixed, as ``environments/local.yaml`` names it): 18330. At start it creates the bucket
``opsverify-backups`` with versioning enabled, the lifecycle rules ``memory-retention`` (prefix
``memory/``, 30 days) and ``abort-multipart`` (whole bucket, 3 days - the AI platform's 72 hours),
and writes one backup object under ``pg/``. Moto accepts any access key; the local environment
still reads the generated pair from ``<state>/s3/`` by reference, as a real deployment would.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path

from opsverify_sandbox.files import write_private
from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.servers.s3 import lifecycle_rule, s3_client, start_moto_s3

PORT = 18330
BUCKET = "opsverify-backups"


def _secret(path: Path, value: str) -> None:
    write_private(path, value + "\n")


@service("object-storage", order=83)
def start_object_storage_sandbox(directory: Path) -> Started:
    """moto S3 server: bucket opsverify-backups with lifecycle rules, versioning and a fresh pg/ backup."""
    workdir = directory / "s3"
    workdir.mkdir(parents=True, exist_ok=True)
    access, secret = "sandbox" + secrets.token_hex(6), secrets.token_urlsafe(30)
    _secret(workdir / "access-key", access)
    _secret(workdir / "secret-key", secret)
    proc = start_moto_s3(workdir, port=PORT)
    try:
        s3 = s3_client(PORT, access, secret)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [
            lifecycle_rule("memory-retention", "memory/", expiration_days=30),
            lifecycle_rule("abort-multipart", "", abort_days=3),
        ]})
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        s3.put_object(Bucket=BUCKET, Key=f"pg/opsverify-{stamp}.dump", Body=b"-- sandbox pg_dump\n")
    except BaseException:
        proc.stop()
        raise
    return Started([proc], {"http": PORT}, {"endpoint": f"http://127.0.0.1:{PORT}", "bucket": BUCKET})
