"""Lint speed: generate N realistic messages as NDJSON, lint them with and
without a tracking plan, print messages/s.

    .venv/bin/python benchmarks/lint_speed.py [N]        (default 1,000,000)

From the suite: `measure(n)` returns the figures as a dict (lint and lint
--plan side by side, the time for 1M messages, peak RSS).

Reads through fixtures.iter_rows (what `cdpio lint` reads), so the numbers
include parsing.  Each pass runs in a fresh forked process, so its peak RSS is
its own; CPU seconds are given per process (the main process, and the worker
that keeps the data set past 20,000 records: cdpio_cli/lint/parallel.py).
`implied_messages_per_s` is messages / the busier process's CPU seconds: the
rate on two quiet cores, steadier than wall time on a shared machine.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from typing import Any

import orjson

from cdpio_cli import fixtures, lint, plan

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


def _one_pass(path: str, plan_path: str | None, conn: Any) -> None:
    """In a forked child: lint `path` (with the plan), send the figures back."""
    tracking_plan = plan.load_plan(plan_path) if plan_path else None
    started, cpu, before = time.perf_counter(), time.process_time(), os.times()
    result = lint.lint_records(fixtures.iter_rows([path]), plan=tracking_plan)
    wall, cpu, after = time.perf_counter() - started, time.process_time() - cpu, os.times()
    worker_cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    n = result.messages
    conn.send(
        {
            "messages": n,
            "wall_s": round(wall, 3),
            "messages_per_s": round(n / wall),
            "main_cpu_s": round(cpu, 3),
            "worker_cpu_s": round(worker_cpu, 3),
            "implied_messages_per_s": round(n / max(cpu, worker_cpu, 1e-9)),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "findings": {str(getattr(k, "value", k)): v for k, v in result.summary()["findings"].items()},
        }
    )


def run_pass(path: str, plan_path: str | None = None) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_one_pass, args=(path, plan_path, send))
    child.start()
    send.close()
    figures: dict[str, Any] = recv.recv()
    child.join()
    return figures


def write_plan(path: str, plan_path: str, sample: int = 20_000) -> None:
    """A plan inferred from the first messages (`cdpio plan infer`'s code): every message is planned."""
    inferrer = plan.Inferrer()
    for record in itertools.islice(fixtures.iter_records([path]), sample):
        inferrer.add(record)
    with open(plan_path, "w", encoding="utf-8") as fh:
        fh.write(inferrer.to_yaml())


def measure(n: int = 1_000_000) -> dict[str, Any]:
    """lint and lint --plan over the same N generated messages, one pass each.

    Returns {"messages", "lint": {...}, "lint_plan": {...}, "seconds_for_1m",
    "plan_cpu_ratio"}; each pass: wall_s, messages_per_s, main_cpu_s,
    worker_cpu_s, implied_messages_per_s (2 quiet cores), peak_rss_mb.
    seconds_for_1m is the plain pass's wall time scaled to 1,000,000 messages
    (measured when n is 1,000,000)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.ndjson")
        plan_path = os.path.join(tmp, "plan.yaml")
        generate(n, path)
        write_plan(path, plan_path)
        plain = run_pass(path)
        planned = run_pass(path, plan_path)
    busiest = max(plain["main_cpu_s"], plain["worker_cpu_s"])
    return {
        "messages": n,
        "lint": plain,
        "lint_plan": planned,
        "seconds_for_1m": round(plain["wall_s"] * 1_000_000 / n, 2),
        "plan_cpu_ratio": round(max(planned["main_cpu_s"], planned["worker_cpu_s"]) / busiest, 2),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    figures = measure(n)
    for name in ("lint", "lint_plan"):
        f = figures[name]
        print(
            f"{name.replace('_', ' --'):12} {f['messages']:,} messages in {f['wall_s']:.2f}s: "
            f"{f['messages_per_s']:,} messages/s; CPU main {f['main_cpu_s']:.2f}s, worker {f['worker_cpu_s']:.2f}s "
            f"(two quiet cores: {f['implied_messages_per_s']:,}/s); peak RSS {f['peak_rss_mb']:.0f} MB; "
            f"findings {f['findings']}"
        )
    print(
        f"1M messages: {figures['seconds_for_1m']:.2f}s; --plan costs {figures['plan_cpu_ratio']:.2f}x plain lint's "
        f"busiest-process CPU; load average {figures['load_average']} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
