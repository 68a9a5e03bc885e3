"""The optional extras: which environment-file sections need a client library the core does not install.

``pip install opsverify`` brings what every suite needs (HTTP, TLS, DNS, NATS, Kubernetes, hosts ...);
a system whose client library only its own section uses comes with an extra:
``pip install 'opsverify[kafka]'``. An environment file with such a section, when the library is
missing, is a usage error naming the extra, before anything is probed::

    problem = missing_extra("kafka", target)   # "needs confluent_kafka, which is not installed here:
                                               #  pip install 'opsverify[kafka]'"  (None when it is)

The same words explain an import of a missing library at run time (:mod:`opsverify.lazy`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _always(target: Any) -> bool:
    return True


def _nats_signs(target: Any) -> bool:
    """A NATS credential signs the server's nonce with nkeys: a .creds file or an nkey seed."""
    credentials = [target, getattr(target, "previous", None)]
    return any(c is not None and (getattr(c, "creds", None) or getattr(c, "nkey_seed", None)) for c in credentials)


@dataclass(frozen=True)
class Extra:
    """An extra of the ``opsverify`` distribution and the modules it installs."""

    name: str
    modules: tuple[str, ...]
    needed_by: Callable[[Any], bool] = _always  # which targets of the section need it

    @property
    def remedy(self) -> str:
        return f"pip install 'opsverify[{self.name}]'"


NATS = Extra("nats", ("nkeys",), _nats_signs)
KAFKA = Extra("kafka", ("confluent_kafka",))
DATASTORES_REDIS = Extra("datastores", ("redis",))
DATASTORES_POSTGRES = Extra("datastores", ("psycopg",))
S3 = Extra("s3", ("boto3", "botocore"))

SECTION_EXTRAS: dict[str, Extra] = {
    "nats": NATS,
    "kafka": KAFKA,
    "redis": DATASTORES_REDIS,
    "postgres": DATASTORES_POSTGRES,
    "object_storage": S3,
}
"""The extra each environment-file section needs (sections not listed need only the core)."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extra(section: str, target: Any) -> str | None:
    """Why ``target`` of ``section`` cannot be checked with what is installed, or ``None``."""
    extra = SECTION_EXTRAS.get(section)
    if extra is None or not extra.needed_by(target):
        return None
    missing = [module for module in extra.modules if not _installed(module)]
    if not missing:
        return None
    return f"needs {', '.join(missing)}, which is not installed here: {extra.remedy}"


def extra_of_module(module: str) -> Extra | None:
    """The extra that installs ``module`` (dotted; its top-level package decides), or ``None``."""
    top = module.split(".", 1)[0]
    return next((extra for extra in SECTION_EXTRAS.values() if top in extra.modules), None)
