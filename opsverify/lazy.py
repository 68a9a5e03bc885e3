"""Client libraries imported on first use, so a suite pays only for the systems it checks.

Every ``fixtures/*.py`` module is loaded by every pytest run; a facade that imported its probe
module, or a probe module that imported its client library (nats, boto3, psycopg ...), at module
level would make a suite of HTTP checks pay for all of them at startup. A facade therefore names its
probe modules, and a probe module its library, through a proxy that imports it on the first attribute
access, while mypy sees the real module::

    if TYPE_CHECKING:
        import jwt
    else:
        jwt = lazy_module("jwt")

    ...
    except jwt.PyJWTError:      # resolved when the clause is evaluated, i.e. at call time

Names used only in annotations are imported under ``if TYPE_CHECKING:`` alone. Nothing at module
level may touch the proxy's attributes (that would import the library at once); such constants
live in a cached function instead. ``tests/test_startup.py`` guards this.

The probe engine must not import anything while probes are in flight (an import holds the loop for
tens to hundreds of milliseconds, billed to every probe waiting on it). So every proxy is recorded
under the module that declared it, and :func:`load_for` imports the probe modules and libraries the
facades of a run's selected checks use, after collection and before the wave. A module whose library is imported
inside functions declares it with :func:`needs` (``needs("kubernetes.client")``).

A library one of the extras installs (:mod:`opsverify.extras`) that is missing raises
:class:`~opsverify.errors.ExtraMissing` on first use, naming the extra; an environment file using it
is refused before that, when it is loaded.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``; imports it on the first attribute access, then forwards."""

    def __init__(self, name: str) -> None:
        self._lazy_name = name
        self._lazy_module: ModuleType | None = None

    def _load(self) -> ModuleType:
        if self._lazy_module is None:
            self._lazy_module = import_library(self._lazy_name)
        return self._lazy_module

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            # it stands for the module's public names only: what looks for private ones (pytest
            # scanning a facade for fixtures asks every name for ``_mock_name``, ``__wrapped__``)
            # must not import it
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


def import_library(name: str) -> ModuleType:
    """Import the client library ``name``; one an extra installs, when missing, raises
    :class:`~opsverify.errors.ExtraMissing` naming it (``pip install 'opsverify[kafka]'``)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        from opsverify.errors import ExtraMissing
        from opsverify.extras import extra_of_module

        extra = extra_of_module(exc.name or name)
        if extra is None:
            raise
        raise ExtraMissing(f"{exc.name or name} is not installed here: {extra.remedy}") from None


_DECLARED: dict[str, list[str]] = {}


def _declarer() -> str:
    return str(sys._getframe(2).f_globals.get("__name__", ""))


def lazy_module(name: str) -> Any:
    """A proxy for the module ``name`` (dotted), imported when one of its attributes is first used."""
    _DECLARED.setdefault(_declarer(), []).append(name)
    return LazyModule(name)


def needs(*names: str) -> None:
    """Declare libraries the calling module imports inside its functions (loaded by :func:`load_for`)."""
    _DECLARED.setdefault(_declarer(), []).extend(names)


def load_for(modules: Iterable[str]) -> list[str]:
    """Import every library declared by ``modules`` and by the ``opsverify`` modules they import or
    name lazily (a facade's probe modules are imported here, with their own libraries).

    Returns the libraries imported (already loaded ones too); one that is not installed is left for
    the probe to report when it runs.
    """
    seen: set[str] = set()
    todo = list(modules)
    libraries: list[str] = []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for declared in _DECLARED.get(name, []):
            if declared.startswith("opsverify."):
                importlib.import_module(declared)  # a probe module a facade names lazily: walk it too
                todo.append(declared)
            else:
                libraries.append(declared)
        module = sys.modules.get(name)
        for value in vars(module).values() if module is not None else ():
            if isinstance(value, ModuleType) and value.__name__.startswith("opsverify."):
                todo.append(value.__name__)
    for library in dict.fromkeys(libraries):
        try:
            importlib.import_module(library)
        except ImportError:
            pass
    return list(dict.fromkeys(libraries))
