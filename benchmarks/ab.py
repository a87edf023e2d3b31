"""Interleaved A/B runs against the raw sink, with delivery counted per key.

Every side is its own process, timed from the outside (start to exit:
imports and file reading included).  Before each run the sink is reset;
after it, the sink's counts are checked against the keys the file holds:
each exactly once, nothing else.  Pairs alternate their order (AB, BA, ...)
after one warm-up pair that is not counted, and the ratio of each pair is
kept, so the load of a shared machine weighs on both sides alike.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import orjson

HERE = Path(__file__).resolve().parent
# Runs argv[2:], waits for it and writes its wall time, CPU seconds and peak RSS to argv[1].
_RSS_HELPER = """
import os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[2:])
_, status, u = os.wait4(p.pid, 0)
wall = time.perf_counter() - t0
open(sys.argv[1], "w").write('{"wall": %f, "cpu": %f, "rss_mb": %f}' % (wall, u.ru_utime + u.ru_stime,
                                                                       u.ru_maxrss / 1024))
sys.exit(os.waitstatus_to_exitcode(status))
"""
PY = sys.executable


def start_sink() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [PY, str(HERE / "raw_sink.py")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the raw sink did not start")


def expected_keys(path: Path, kind: str, limit: int | None = None) -> list:
    """What the sink must count once each: messageIds (segment) or the
    operations' unix timestamps (customerio)."""
    keys = []
    with open(path, "rb") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                break
            m = orjson.loads(line)
            if kind == "segment":
                keys.append(m["messageId"])
            else:
                keys.append(int(datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00")).timestamp()))
    return keys


@dataclass
class Side:
    name: str
    cmd: list[str]
    kind: str  # "segment" | "customerio": how the sink keys its deliveries
    events: int
    env: dict = field(default_factory=dict)  # extra environment (e.g. PYTHONPATH)
    runs: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # the side's own CPU seconds per run
    rss_mb: list[float] = field(default_factory=list)  # its peak RSS per run

    @property
    def rate(self) -> float:
        return self.events / statistics.median(self.runs)


class Bench:
    def __init__(self, sink_url: str, workdir: str):
        self.url = sink_url
        self.workdir = workdir
        self.http = httpx.Client(timeout=600)
        self._expected: dict = {}

    def run(self, side: Side, file: Path) -> float:
        self.http.post(self.url + "/_reset")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDPIO_")}
        env.update(side.env)
        with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as rss:
            # Peak RSS through a small exec'd helper: a child forked from this
            # (large) process would inherit its high-water mark.
            cmd = [PY, "-c", _RSS_HELPER, rss.name, *side.cmd]
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=self.workdir)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                err.seek(0)
                raise SystemExit(f"{side.name} failed ({code}): {err.read().decode()[-2000:]}")
            child = orjson.loads(rss.read() or b"{}")
            wall = child.get("wall", wall)  # the side alone, without the helper's start
        side.cpu.append(child.get("cpu", usage.ru_utime + usage.ru_stime))
        side.rss_mb.append(child.get("rss_mb", 0.0))
        stats = self.http.get(self.url + "/_stats").json()
        self.check(side, file, stats)
        side.cpu_us.append(stats["cpu_us_per_request"] or 0.0)
        return wall

    def check(self, side: Side, file: Path, stats: dict) -> None:
        key = (str(file), side.kind, side.events)
        if key not in self._expected:
            self._expected[key] = {str(k) for k in expected_keys(file, side.kind, side.events)}
        want = self._expected[key]
        got = stats["keys"]
        missing = len(want - got.keys())
        unexpected = len(got.keys() - want)
        repeated = sum(1 for k, n in got.items() if n != 1)
        if missing or unexpected or repeated or stats["unkeyed"]:
            raise SystemExit(
                f"{side.name}: delivery check failed: {missing} missing, {unexpected} unexpected, "
                f"{repeated} delivered more than once, {stats['unkeyed']} unkeyed requests "
                f"(expected {len(want):,} each exactly once)"
            )

    def pairs(self, a: Side, b: Side, file: Path, n: int, b_file: Path | None = None) -> dict:
        """One warm-up pair, then `n` pairs alternating AB / BA; the ratio is
        B's time over A's time per pair, normalised by events (A's speed-up)."""
        b_file = b_file or file
        self.run(a, file)
        self.run(b, b_file)
        for side in (a, b):  # the warm-up pair is not counted
            side.cpu_us.clear(), side.cpu.clear(), side.rss_mb.clear()
        ratios = []
        for i in range(n):
            order = [(a, file), (b, b_file)] if i % 2 == 0 else [(b, b_file), (a, file)]
            walls = {}
            for side, f in order:
                walls[side.name] = self.run(side, f)
            a.runs.append(walls[a.name])
            b.runs.append(walls[b.name])
            ratios.append((a.events / walls[a.name]) / (b.events / walls[b.name]))
        return {"ratios": ratios, "median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def fmt_side(side: Side) -> str:
    return (
        f"{side.name:<34} {side.events:>8,} events  median {statistics.median(side.runs):6.2f} s "
        f"({min(side.runs):.2f}-{max(side.runs):.2f})  {side.rate:>9,.0f} events/s  "
        f"CPU {statistics.median(side.cpu):.2f} s  peak RSS {max(side.rss_mb):.0f} MB  "
        f"sink CPU {statistics.median(side.cpu_us):,.0f} us/request"
    )


def fmt_ratio(label: str, r: dict, target: float, unit: str = "x") -> str:
    ok = "MET" if r["median"] >= target else "NOT MET"
    if unit == "%":
        return (
            f"{label:<58} {r['median'] * 100:5.0f}%  ({r['min'] * 100:.0f}-{r['max'] * 100:.0f}%)  "
            f"target >= {target * 100:.0f}%  {ok}"
        )
    return f"{label:<58} {r['median']:5.2f}x  ({r['min']:.2f}-{r['max']:.2f})  target >= {target:g}x  {ok}"
