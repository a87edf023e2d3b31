"""When a command may fork a worker onto the second core (lint's and replay's
pre-pass): only where it pays and is safe."""

from __future__ import annotations

import os
import threading


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, which a container's
    or `taskset`'s limit narrows), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: no affinity call
        return os.cpu_count() or 1


def forkable() -> bool:
    """A forked worker can run beside this process: a second core to run it on
    (on one core it only adds work), fork available, and no other thread here
    (a fork copies only the calling thread; a lock another thread held stays held)."""
    if usable_cores() < 2:
        return False
    import multiprocessing  # only when a worker is considered: not on every start-up path

    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
