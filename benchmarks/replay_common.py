"""Shared helpers for the replay benchmarks (not a benchmark itself).

The sandbox always runs as a separate `python -m cdpio_cli sandbox` process,
so the server never shares the GIL with the client being measured; every
client also runs in its own process, measured from the outside.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

PY = sys.executable


def start_sandbox(*args: str) -> tuple[subprocess.Popen, str]:
    """Start `cdpio sandbox --port 0 ARGS` in its own process; return (process, base URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDPIO_")}
    proc = subprocess.Popen(
        [PY, "-m", "cdpio_cli", "sandbox", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 20
    url = None
    while time.monotonic() < deadline and url is None:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError("the sandbox exited")
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            url = m.group(1)
    if url is None:
        proc.kill()
        raise RuntimeError("the sandbox did not start")
    # Keep reading stderr so the pipe never fills.
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    for _ in range(200):
        try:
            if httpx.get(url + "/_sandbox/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url


def stop_sandbox(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def reset(url: str) -> None:
    httpx.post(url + "/_sandbox/reset", timeout=60)


def delivered(url: str) -> dict:
    return httpx.get(url + "/_sandbox/deliveries", params={"limit": 0}, timeout=600).json()["summary"]


def make_events(path: Path, n: int, *, seed: int = 1, with_ids: bool = True, users: int = 5000) -> Path:
    """A realistic mixed NDJSON file: 70% track, 15% identify, 15% page,
    about 520 bytes each.  Every event has its own timestamp (one second
    apart), which the raw sink uses to count Customer.io operations."""
    rng = random.Random(seed)
    start = datetime(2024, 3, 1, tzinfo=timezone.utc)
    events = ["Signed Up", "Viewed Pricing", "Clicked CTA", "Order Completed", "Trial Started"]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            user = f"user-{rng.randrange(users)}"
            ts = (start + timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            context = {
                "ip": f"10.0.{i % 250}.{i % 200}",
                "library": {"name": "fixture", "version": "1.0"},
                "locale": "en-US",
                "timezone": "Europe/Berlin",
                "os": {"name": "Mac OS X", "version": "10.15.7"},
                "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36",
            }
            kind = i % 20
            if kind < 3:
                msg = {
                    "type": "identify",
                    "userId": user,
                    "traits": {
                        "email": f"{user}@example.com",
                        "plan_type": rng.choice(["Free", "Pro", "Team"]),
                        "is_trial": rng.random() < 0.3,
                        "company": "Example Inc",
                        "seats": rng.randrange(1, 50),
                        "first_name": "Ada",
                        "last_name": "Lovelace",
                    },
                }
            elif kind < 6:
                msg = {
                    "type": "page",
                    "userId": user,
                    "name": "Pricing",
                    "properties": {
                        "url": "https://example.com/pricing?ref=nav",
                        "path": "/pricing",
                        "title": "Pricing - Example",
                        "referrer": "https://google.com/",
                        "search": "?ref=nav",
                    },
                }
            else:
                msg = {
                    "type": "track",
                    "userId": user,
                    "event": rng.choice(events),
                    "properties": {
                        "plan_type": rng.choice(["Free", "Pro", "Team"]),
                        "value": round(rng.random() * 100, 2),
                        "currency": "USD",
                        "order_id": f"o-{i}",
                        "coupon": None,
                        "category": "billing",
                        "source": "web",
                    },
                }
            msg["timestamp"] = ts
            msg["context"] = context
            if with_ids:
                msg["messageId"] = f"bench-{seed}-{i:08d}"
            fh.write(json.dumps(msg, separators=(",", ":")) + "\n")
    return path


def run_measured(cmd: list[str], *, env: dict | None = None, cwd: str | None = None) -> dict:
    """Run a child process; return wall time, exit code, stdout and its max RSS (MB)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CDPIO_")}
    full_env.update(env or {})
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=cwd)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    # communicate() reaped the child; RUSAGE_CHILDREN has the max over reaped
    # children, so measure each child's RSS with wait4 instead where needed.
    return {"wall": wall, "code": proc.returncode, "stdout": out.decode(), "stderr": err.decode()}


def run_with_rss(cmd: list[str], *, env: dict | None = None, cwd: str | None = None) -> dict:
    """Like run_measured, but with this child's own max RSS from wait4()."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CDPIO_")}
    full_env.update(env or {})
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=full_env, cwd=cwd)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return {"wall": wall, "code": proc.returncode, "stdout": out.decode(), "max_rss_mb": usage.ru_maxrss / 1024.0}


def cdpio_replay(url: str, path: Path, *args: str, cwd: str | None = None) -> dict:
    cmd = [PY, "-m", "cdpio_cli", "--sandbox-url", url, "--json", "-q", "replay", str(path), *args]
    res = run_measured(cmd, cwd=cwd)
    if res["code"] not in (0, 1):
        raise RuntimeError(f"cdpio replay failed ({res['code']}): {res['stderr'][-2000:]}")
    res["summary"] = json.loads(res["stdout"])["summary"]
    return res
