"""Client libraries imported on first use, so a suite pays only for the systems it checks.

Every ``fixtures/*.py`` module is loaded by every pytest run, and each imports its probe module; a
probe module that imported its client library (nats, boto3, psycopg ...) at module level would make
a suite of HTTP checks pay for all of them at startup. A probe module therefore names its library
through a proxy that imports it on the first attribute access, while mypy sees the real module::

    if TYPE_CHECKING:
        import jwt
    else:
        jwt = lazy_module("jwt")

    ...
    except jwt.PyJWTError:      # resolved when the clause is evaluated, i.e. at call time

Names used only in annotations are imported under ``if TYPE_CHECKING:`` alone. Nothing at module
level may touch the proxy's attributes (that would import the library at once); such constants
live in a cached function instead. ``tests/test_startup.py`` guards this.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``; imports it on the first attribute access, then forwards."""

    def __init__(self, name: str) -> None:
        self._lazy_name = name
        self._lazy_module: ModuleType | None = None

    def _load(self) -> ModuleType:
        if self._lazy_module is None:
            self._lazy_module = importlib.import_module(self._lazy_name)
        return self._lazy_module

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_lazy_"):
            raise AttributeError(attr)
        module = self._load()
        try:
            return getattr(module, attr)
        except AttributeError:
            # a submodule its package does not import itself (``nats.js.errors``)
            return importlib.import_module(f"{self._lazy_name}.{attr}")

    def __repr__(self) -> str:
        state = "loaded" if self._lazy_module is not None else "not loaded yet"
        return f"<lazy module {self._lazy_name!r} ({state})>"


def lazy_module(name: str) -> Any:
    """A proxy for the module ``name`` (dotted), imported when one of its attributes is first used."""
    return LazyModule(name)
