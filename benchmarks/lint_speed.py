"""Lint speed: generate N realistic messages as NDJSON, lint them, print messages/s.

    .venv/bin/python benchmarks/lint_speed.py [N]        (default 200,000)

Reads through fixtures.iter_records (the real NDJSON path), so the number
includes parsing.  Prints the CPU seconds too (this process, and the worker
that lints on two cores past 20,000 records: cdpio_cli/lint/parallel.py), and
peak RSS (aggregates must stay small).
"""

from __future__ import annotations

import os
import random
import resource
import sys
import tempfile
import time

import orjson

from cdpio_cli import fixtures, lint

EVENTS = [
    "Signed Up",
    "Viewed Pricing",
    "Clicked CTA",
    "Order Completed",
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Trial Started",
    "Plan Upgraded",
]


def generate(n: int, path: str, users: int = 50_000) -> None:
    rnd = random.Random(7)
    with open(path, "wb") as fh:
        for i in range(n):
            u = rnd.randrange(users)
            uid = f"user-{u:06d}"
            ts = f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.000Z"
            kind = i % 10
            if kind == 0:
                msg = {
                    "type": "identify",
                    "userId": uid,
                    "anonymousId": f"anon-{u}",
                    "timestamp": ts,
                    "messageId": f"m{i}",
                    "traits": {
                        "email": f"{uid}@example.com",
                        "firstName": "Ada",
                        "plan_type": "pro",
                        "is_trial": False,
                        "seats": 3,
                    },
                }
            elif kind == 1:
                msg = {
                    "type": "page",
                    "userId": uid,
                    "name": "Pricing",
                    "timestamp": ts,
                    "messageId": f"m{i}",
                    "properties": {"url": "https://example.com/pricing", "title": "Pricing", "path": "/pricing"},
                }
            else:
                msg = {
                    "type": "track",
                    "userId": uid,
                    "event": EVENTS[i % len(EVENTS)],
                    "timestamp": ts,
                    "messageId": f"m{i}",
                    "properties": {"plan_type": "pro", "revenue": 19.99, "currency": "USD", "order_id": f"o{i}"},
                    "context": {"library": {"name": "analytics-python", "version": "2.3.0"}},
                }
            fh.write(orjson.dumps(msg) + b"\n")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.ndjson")
        generate(n, path)
        started, cpu, before = time.perf_counter(), time.process_time(), os.times()
        result = lint.lint_records(fixtures.iter_records([path]))
        elapsed, cpu, after = time.perf_counter() - started, time.process_time() - cpu, os.times()
    worker_cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"linted {result.messages:,} messages in {elapsed:.2f}s: {result.messages / elapsed:,.0f} messages/s; "
        f"CPU {cpu:.2f}s (worker {worker_cpu:.2f}s); "
        f"findings {result.summary()['findings']}; peak RSS {rss_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
