"""The forked workers of lint (lint/parallel.py) and of replay's pre-pass
(replay/parallel_scan.py) never outlive a killed cdpio: each closes its copy
of the main process's pipe ends, so a SIGKILL of the main process ends it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.cli_helpers import clean_env
from tests.reliability._support import msgs, write_ndjson


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie has ended
    except OSError:
        return True


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc")
@pytest.mark.parametrize("command", [["lint"], ["replay", "--dry-run"]], ids=["lint", "replay"])
def test_a_killed_cdpio_leaves_no_worker_behind(tmp_path, command):
    # Past both thresholds: 20,000 records (lint) and 8 MB (replay).
    src = write_ndjson(tmp_path / "big.ndjson", msgs(60_000, pad="x" * 120))
    assert src.stat().st_size > 8 * 1024 * 1024
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpio_cli", "--json", "-q", *command, str(src)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while not workers:
            assert proc.poll() is None, "finished before its worker was seen"
            assert time.monotonic() < deadline, "no worker started"
            workers = _children(proc.pid)
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while not all(_gone(pid) for pid in workers):
            assert time.monotonic() < deadline, f"worker(s) {workers} still running after the main process was killed"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
