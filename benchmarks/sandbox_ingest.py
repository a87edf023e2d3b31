"""How fast the sandbox ingests through /segment/v1/batch.  Target: 50,000 events/s on one core.

The sandbox runs as `cdpio sandbox` in its own process (one event loop: one
core).  This process pre-builds batches of unique events (so nothing is
deduped away), then posts them over several keep-alive connections from
threads and reports:

- ingest: events answered 200 (parsed, size-checked, deduped, queued) per
  wall-clock second and per CPU-second of the sandbox process, over the send
  phase.  The target refers to this figure: it is what a replay sees.
- end to end: the same plus mapping every event into the in-memory
  Customer.io workspace (the sandbox does that between requests and before
  any read), until the deliveries read returns.

    python benchmarks/sandbox_ingest.py [--events 200000] [--batch 500] [--connections 4]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

import orjson

TARGET = 50_000
WRITE_KEY = "cdpioSandboxWriteKey0000000000001"


def make_event(i: int, run: str) -> dict:
    user = f"user-{i % 2000}"
    common = {
        "messageId": f"{run}-{i}",
        "userId": user,
        "anonymousId": f"anon-{i % 2000}",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "context": {"library": {"name": "cdpio-bench", "version": "1"}, "ip": "203.0.113.9"},
    }
    kind = i % 20
    if kind == 0:
        return {
            "type": "identify",
            **common,
            "traits": {"email": f"{user}@example.com", "plan_type": "Pro", "is_trial": False},
        }
    if kind == 1:
        return {
            "type": "page",
            **common,
            "name": "Pricing",
            "properties": {"url": "https://example.com/pricing", "title": "Pricing"},
        }
    return {
        "type": "track",
        **common,
        "event": "Product Viewed",
        "properties": {
            "product_id": f"p-{i % 500}",
            "price": 19.99,
            "currency": "USD",
            "category": "shoes",
            "position": i % 10,
        },
    }


def build_bodies(events: int, batch: int) -> list[bytes]:
    run = uuid.uuid4().hex[:8]
    bodies = []
    for start in range(0, events, batch):
        items = [make_event(i, run) for i in range(start, min(start + batch, events))]
        bodies.append(orjson.dumps({"batch": items, "writeKey": WRITE_KEY}))
    return bodies


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_sandbox() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpio_cli", "sandbox", "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stderr:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, m.group(1)
    raise SystemExit("the sandbox did not start")


def post_all(url: str, bodies: list[bytes], connections: int) -> tuple[int, list[int]]:
    parts = urlsplit(url)
    lock = threading.Lock()
    queue = list(reversed(bodies))
    statuses: list[int] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            conn.request("POST", "/segment/v1/batch", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            with lock:
                statuses.append(resp.status)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(bodies), statuses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()

    bodies = build_bodies(args.events, args.batch)
    mean_kb = sum(map(len, bodies)) / len(bodies) / 1024
    proc, url = start_sandbox()
    try:
        conn = http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port)
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        _, statuses = post_all(url, bodies, args.connections)
        send_wall = time.perf_counter() - t0
        cpu_send = cpu_seconds(proc.pid) - cpu0
        # Reading deliveries drains whatever is still queued into the workspace.
        conn.request("GET", "/_sandbox/deliveries?limit=1")
        summary = orjson.loads(conn.getresponse().read())["summary"]
        total_wall = time.perf_counter() - t0
        cpu_total = cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    ok = statuses.count(200)
    n = args.events
    print(
        f"events {n:,} in {len(bodies)} batches of {args.batch} (~{mean_kb:.0f} KB), "
        f"{args.connections} connections; {ok}/{len(statuses)} requests answered 200"
    )
    print(f"delivered {summary['delivered']:,}, dropped {summary['dropped']:,} {summary['drop_reasons']}")
    print(
        f"ingest:      {n / send_wall:>10,.0f} events/s wall   "
        f"{n / max(cpu_send, 1e-9):>10,.0f} events/s per sandbox CPU-second"
    )
    print(
        f"end to end:  {n / total_wall:>10,.0f} events/s wall   "
        f"{n / max(cpu_total, 1e-9):>10,.0f} events/s per sandbox CPU-second"
        "  (incl. mapping into the workspace)"
    )
    rate = n / max(cpu_send, 1e-9)
    print(
        f"target: ingest {TARGET:,} events/s on one core -> {'met' if rate >= TARGET else 'NOT met'} "
        f"({rate / TARGET:.1f}x)"
    )


if __name__ == "__main__":
    main()
