"""The end of a `cdpio` process: what Python's own exit does that anyone can
see, without the teardown nobody can.

After the last atexit handler, Python's exit frees every object and module
one by one, with garbage collections in between: 15 ms of CPU at the end of
a 20,000-event replay (measured), a few ms after `cdpio --help`.  Nothing
cdpio writes depends on it: its files are closed where they are written.
So the process ends here as Python would end it (non-daemon threads waited
for, atexit handlers run, stdout and stderr flushed), then with `os._exit`.
Whenever that order cannot be kept exactly, Python's own exit runs instead.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_process(code: str | int | None) -> NoReturn:
    """End the process with `code` (a `sys.exit` argument)."""
    if code is None:
        code = 0
    if not isinstance(code, int) or not _only_thread_left():
        sys.exit(code)  # a message to print, or a thread Python's exit would wait for
    atexit._run_exitfuncs()  # what sys.exit runs next, in the same order (and clears them)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except Exception:  # a closed or broken stream: Python's exit reports it as it always has
        sys.exit(code)
    os._exit(code)


def _only_thread_left() -> bool:
    """No other thread Python's exit would wait for (daemon threads it does not)."""
    me = threading.current_thread()
    return all(t is me or t.daemon or not t.is_alive() for t in threading.enumerate())
