"""Load typer's help renderer without the two rich modules cdpio's help never uses.

`typer.rich_utils` imports `rich.markdown` (markdown-it, pygments) for
`rich_markup_mode="markdown"` and `rich.traceback` (rich.pretty, attrs) for
typer's pretty exception hook.  cdpio uses the default "rich" markup mode and
reports errors itself (`app.main`), so neither is ever drawn, yet importing
them was about a third of the CPU time of `cdpio --help`.  While
`typer.rich_utils` is imported, those two modules are stand-ins whose class
imports the real one on first use, so nothing breaks if typer does use them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_DEFERRED = (("rich.markdown", "Markdown"), ("rich.traceback", "Traceback"))


class _Deferred(type):
    """The metaclass of a stand-in: calling it or reading an attribute loads the real class."""

    _module: str

    def _real(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls._real(), name)


def _stand_in(module: str, name: str) -> types.ModuleType:
    stand_in = types.ModuleType(module)
    setattr(stand_in, name, _Deferred(name, (), {"_module": module}))
    return stand_in


def import_help_renderer() -> None:
    """Import `typer.rich_utils` (once) with the unused rich modules deferred."""
    if "typer.rich_utils" in sys.modules:
        return
    stand_ins = {module: _stand_in(module, name) for module, name in _DEFERRED if module not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        importlib.import_module("typer.rich_utils")
    finally:
        for module, stand_in in stand_ins.items():
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]
