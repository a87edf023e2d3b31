"""cdpio replay vs segment-analytics-python, same file, same sandbox, one run.

    python benchmarks/replay_vs_segment.py [--events 200000]

Both clients run as their own processes against one `cdpio sandbox` process
and are timed from the outside (process start to exit, file reading
included).  The peer uses its defaults (`Client(write_key, host=...)`,
100 events per batch, one consumer thread); it enqueues every message and
calls `flush()`.  Its queue holds 10,000 messages by default and drops what
does not fit, so the driver waits while the queue is full: every message is
sent, which is what a replay must do.  Target: cdpio >= 4x the events/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay_common import PY, cdpio_replay, delivered, make_events, reset, run_measured, start_sandbox, stop_sandbox  # noqa: E402

WRITE_KEY = "cdpioSandboxWriteKey0000000000001"


def peer(url: str, path: str) -> None:
    """The segment-analytics-python side (runs in a child process)."""
    from datetime import datetime

    import orjson
    from segment.analytics import Client

    errors = []
    client = Client(WRITE_KEY, host=url + "/segment", on_error=lambda e, batch: errors.append(len(batch)))
    queue = client.queue
    sent = 0
    with open(path, "rb") as fh:
        for line in fh:
            m = orjson.loads(line)
            ts = datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
            while queue.full():          # default max_queue_size=10000 would drop the rest
                time.sleep(0.0005)
            common = dict(user_id=m.get("userId"), anonymous_id=m.get("anonymousId"),
                          context=m.get("context"), timestamp=ts, message_id=m.get("messageId"))
            kind = m["type"]
            if kind == "track":
                client.track(event=m["event"], properties=m.get("properties") or {}, **common)
            elif kind == "identify":
                client.identify(traits=m.get("traits") or {}, **common)
            elif kind == "page":
                client.page(name=m.get("name"), properties=m.get("properties") or {}, **common)
            else:
                raise SystemExit(f"unexpected type {kind}")
            sent += 1
    client.flush()
    client.join()
    print(orjson.dumps({"sent": sent, "failed_batches": len(errors)}).decode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--peer", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        peer(*args.peer)
        return

    with tempfile.TemporaryDirectory(prefix="cdpio-bench-") as tmp:
        path = make_events(Path(tmp) / "events.ndjson", args.events)
        size_mb = path.stat().st_size / 1e6
        proc, url = start_sandbox()
        try:
            print(f"{args.events:,} events ({size_mb:.0f} MB NDJSON), sandbox {url} (separate process)")

            reset(url)
            cd = cdpio_replay(url, path, "--rate", "0", "--batch-size", str(args.batch_size),
                              "--concurrency", str(args.concurrency), cwd=tmp)
            cd_got = delivered(url)
            s = cd["summary"]
            cd_eps = args.events / cd["wall"]
            print(f"cdpio replay     : {cd['wall']:7.2f} s  {cd_eps:10,.0f} events/s  "
                  f"(accepted {s['accepted']:,}, delivered {cd_got['delivered']:,}, "
                  f"{s['requests']:,} requests, p50 {s['latency_ms']['p50']} ms; "
                  f"send phase {s['events_per_second']:,.0f} events/s)")

            reset(url)
            pe = run_measured([PY, __file__, "--peer", url, str(path)], cwd=tmp)
            if pe["code"] != 0:
                raise SystemExit(f"peer failed: {pe['stderr'][-2000:]}")
            pe_got = delivered(url)
            pe_eps = args.events / pe["wall"]
            print(f"analytics-python : {pe['wall']:7.2f} s  {pe_eps:10,.0f} events/s  "
                  f"(delivered {pe_got['delivered']:,}; {pe['stdout'].strip()})")
            ratio = cd_eps / pe_eps
            print(f"ratio            : {ratio:.1f}x  (target >= 4x) {'OK' if ratio >= 4 else 'MISSED'}")
        finally:
            stop_sandbox(proc)


if __name__ == "__main__":
    main()
