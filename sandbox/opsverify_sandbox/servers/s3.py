"""A real S3-compatible server for the sandbox and the self-tests: moto's standalone server (``moto_server``).

Why moto: it is on PyPI (``moto[server]``), starts in a few seconds without root or a container, and
its S3 implements the calls the checks make - HeadBucket, Get/PutBucketLifecycleConfiguration
(with ``Filter``/``Prefix``, ``Expiration.Days``, ``AbortIncompleteMultipartUpload``),
Get/PutBucketVersioning, ListObjectsV2 - through the same HTTP API and SigV4 signing as AWS S3 and
MinIO, so boto3 talks to it exactly as to those. MinIO's server binary is not on any registry this
project may use. The standalone server (a separate process, stopped by PID) rather than the
in-process ``ThreadedMotoServer`` because the sandbox needs it to outlive ``opsverify sandbox up``,
and the self-tests run the checks in a pytest subprocess anyway.

Facts that bite (moto 5.2): it accepts ANY access key (no authentication unless IAM emulation is
switched on), so a wrong-credential fault cannot be shown here; ``LastModified`` is the real time of
the PUT and cannot be set, so a "stale backup" is an object older than a short ``max_age``; a
bucket's lifecycle answer keeps the ``Filter`` shape it was given.

Example::

    proc = start_moto_s3(tmp_path, port=free_port())
    s3 = s3_client(port)
    s3.create_bucket(Bucket="backups")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsverify_sandbox.process import ManagedProcess, venv_bin

REGION = "us-east-1"


def start_moto_s3(workdir: Path, *, port: int, name: str = "moto-s3") -> ManagedProcess:
    """Start ``moto_server -H 127.0.0.1 -p port``; returns once it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"AWS_ACCESS_KEY_ID": "opsverify", "AWS_SECRET_ACCESS_KEY": "opsverify", "AWS_DEFAULT_REGION": REGION}
    proc = ManagedProcess.start([venv_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                log_path=workdir / f"{name}.log", name=name, env=env)
    proc.wait_for_port("127.0.0.1", port, timeout_s=60)
    return proc


def s3_client(port: int, access_key: str = "opsverify", secret_key: str = "opsverify") -> Any:
    """A boto3 S3 client for the server on 127.0.0.1:``port`` (path-style addressing)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, connect_timeout=10, read_timeout=30),
    )


def lifecycle_rule(rule_id: str, prefix: str = "", *, expiration_days: int | None = None,
                   abort_days: int | None = None, enabled: bool = True) -> dict[str, Any]:
    """One rule in PutBucketLifecycleConfiguration's shape."""
    rule: dict[str, Any] = {"ID": rule_id, "Filter": {"Prefix": prefix},
                            "Status": "Enabled" if enabled else "Disabled"}
    if expiration_days is not None:
        rule["Expiration"] = {"Days": expiration_days}
    if abort_days is not None:
        rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": abort_days}
    return rule
