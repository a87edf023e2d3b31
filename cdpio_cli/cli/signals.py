"""Signals a command treats as Ctrl-C.

SIGTERM (a CI job cancelled, `docker stop`, `timeout`) stops every command
the way Ctrl-C does: what it started is cleaned up, the report says so where
the command writes one (replay's resume hint and JUnit file), and cdpio says
`cdpio: interrupted` and exits 130.  `interrupted` records that either signal
came, since typer turns a KeyboardInterrupt into a silent exit code.  SIGXFSZ
is ignored so that a file-size limit is an error on the write, not a kill.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, Literal


class InterruptSignals:
    def __init__(self) -> None:
        self.interrupted = False
        self._saved: dict[signal.Signals, Any] = {}

    def __enter__(self) -> InterruptSignals:
        stop = (("SIGINT", self._interrupt), ("SIGTERM", self._interrupt), ("SIGXFSZ", signal.SIG_IGN))
        for name, handler in stop:
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    self._saved[sig] = signal.signal(sig, handler)
                except ValueError:  # not the main thread (embedded use): leave signals alone
                    pass
        return self

    def _interrupt(self, _signum: int, _frame: FrameType | None) -> None:
        self.interrupted = True
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> Literal[False]:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        return False
