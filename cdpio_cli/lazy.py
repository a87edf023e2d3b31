"""A package's public names loaded on first use (PEP 562 module __getattr__),
so importing the package stays cheap for a run that never needs them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, namespace: dict[str, Any], sources: dict[str, str]) -> Callable[[str], Any]:
    """The `__getattr__` for `package`: `sources` maps a name to the submodule
    that defines it; a name is imported once, then kept in `namespace`."""

    def __getattr__(name: str) -> Any:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
