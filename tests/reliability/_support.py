"""Helpers shared by the reliability suite."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.cli_helpers import Result, run_cli


def run_bounded(*args: str, timeout: float = 30, **kw) -> Result:
    """run_cli in a subprocess, so that a hang is a test failure with a clear
    message (the child is killed)."""
    try:
        return run_cli(*args, timeout=timeout, subprocess_=True, **kw)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`cdpio {' '.join(args)}` did not finish within {timeout}s (hang)")


def assert_clean_failure(res: Result, code: int) -> None:
    assert res.code == code, f"exit {res.code}, expected {code}\n{res.stderr}"
    assert "Traceback" not in res.output, res.stderr
    assert "internal error" not in res.stderr, res.stderr


def run_all(jobs: dict, workers: int = 4) -> dict:
    """Run many bounded CLI calls at once (each is mostly interpreter start-up);
    {key: (args, run_cli kwargs)} -> {key: Result, or None when it hung}.
    Each call is a subprocess: in-process calls share one environment."""
    from concurrent.futures import ThreadPoolExecutor

    def one(job):
        args, kw = job
        try:
            return run_cli(*args, subprocess_=True, **kw)
        except subprocess.TimeoutExpired:
            return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(jobs, pool.map(one, jobs.values()), strict=False))


def one_error_line(res: Result) -> str:
    """The whole stderr is one `cdpio: error: ...` line."""
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("cdpio: error: "), res.stderr
    return lines[0]


def msgs(n: int, prefix: str = "u", **extra) -> list[dict]:
    return [
        {"type": "track", "event": "Order Completed", "userId": f"{prefix}{i}", "properties": {"i": i}, **extra}
        for i in range(n)
    ]


def write_ndjson(path: Path, items) -> Path:
    path.write_text("".join(json.dumps(m) + "\n" for m in items), encoding="utf-8")
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (reads and
    discards what arrives), so a client can only time out."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._conns.append(conn)  # kept open, never answered

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._conns:
            conn.close()
        self.sock.close()
