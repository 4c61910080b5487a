"""Deferred imports for the Blueprints.

Chalice needs every route registered when ``app`` is imported, but a route's
dependencies — pydantic wire models, the services, the settings — are only needed
when a request arrives. Both functions (the API and the trigger) import the same
``app``; the trigger never touches a façade's wire models, and an API request needs
only its own façade's. So Blueprint modules bind their heavy dependencies through
:func:`lazy_module`: the module is imported on first attribute access, once.
Type checkers see the real module (the binding is made under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any


class _LazyModule:
    __slots__ = ("_lock", "_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            with self._lock:
                if self._module is None:
                    self._module = importlib.import_module(self._name)
                module = self._module
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """A stand-in for ``import <name>`` that imports on first use."""
    return _LazyModule(name)
