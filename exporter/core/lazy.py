"""Package attributes imported from their modules on first use (PEP 562).

Each subpackage lists its public names and the module that defines each; importing the package
then loads only the modules a process uses (the span process, for one, never loads the metrics).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(namespace: dict[str, Any], modules: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for the package whose globals are `namespace`: each name in
    `modules` is imported from its module when first asked for, then kept in the package."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> object:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
