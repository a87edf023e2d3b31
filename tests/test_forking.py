"""When lint and replay fork a worker onto a second core (cdpio_cli/forking.py)."""

from __future__ import annotations

import os
import threading

import pytest

from cdpio_cli import forking


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity call on this OS")
def test_one_usable_core_means_no_worker_even_on_a_larger_machine(monkeypatch):
    # A container or `taskset -c 0` leaves one core: a worker would only add work.
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # pytest-xdist runs threads of its own
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert forking.usable_cores() == 1
    assert forking.forkable() is False
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert forking.usable_cores() == 2
    assert forking.forkable() is ("fork" in __import__("multiprocessing").get_all_start_methods())


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity call on this OS")
def test_another_thread_running_means_no_fork(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert forking.forkable() is False
    finally:
        stop.set()
        thread.join()
