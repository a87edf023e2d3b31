"""cdpio replay --route customerio vs the `customerio` client, one request per event.

    python benchmarks/replay_vs_customerio.py [--events 50000] [--peer-events 2000]

Same file shape, same `cdpio sandbox` process, one run.  cdpio maps each
message the way the Customer.io (Actions) destination does and posts Track v2
`/api/v2/batch` requests; the official client sends what an integration
without batching does: one Track v1 call per event (identify, track,
pageview).  The slow peer sends a prefix of the file; rates are compared.
The client only speaks https, so its base_url is pointed at the plain-http
sandbox after construction.  Target: cdpio >= 20x the events/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay_common import PY, cdpio_replay, make_events, reset, run_measured, start_sandbox, stop_sandbox  # noqa: E402

SITE_ID = "c0ffee0000000000000a"
TRACK_API_KEY = "c0ffee0000000000000b"


def peer(url: str, path: str, limit: int) -> None:
    """The `customerio` client side (runs in a child process)."""
    import time

    import orjson
    from customerio import CustomerIO

    cio = CustomerIO(SITE_ID, TRACK_API_KEY)
    cio.base_url = url + "/track/api/v1"     # the client builds https:// URLs only
    sent = 0
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        for line in fh:
            if sent >= limit:
                break
            m = orjson.loads(line)
            kind, user = m["type"], m["userId"]
            if kind == "identify":
                cio.identify(id=user, **m.get("traits", {}))
            elif kind == "page":
                cio.pageview(user, m["properties"]["url"], **m.get("properties", {}))
            else:
                cio.track(user, m["event"], data=m.get("properties"), id=m.get("messageId"))
            sent += 1
    print(orjson.dumps({"sent": sent, "seconds": time.perf_counter() - t0}).decode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--peer-events", type=int, default=2_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--peer", nargs=3, metavar=("URL", "FILE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        peer(args.peer[0], args.peer[1], int(args.peer[2]))
        return

    with tempfile.TemporaryDirectory(prefix="cdpio-bench-") as tmp:
        path = make_events(Path(tmp) / "events.ndjson", args.events)
        proc, url = start_sandbox()
        try:
            print(f"{args.events:,} events for cdpio, {args.peer_events:,} for the peer; sandbox {url}")
            reset(url)
            cd = cdpio_replay(url, path, "--route", "customerio", "--rate", "0",
                              "--batch-size", str(args.batch_size), "--concurrency", str(args.concurrency),
                              cwd=tmp)
            s = cd["summary"]
            cd_eps = args.events / cd["wall"]
            print(f"cdpio --route customerio : {cd['wall']:7.2f} s  {cd_eps:9,.0f} events/s  "
                  f"(accepted {s['accepted']:,}, failed {s['failed']:,}, {s['requests']:,} requests, "
                  f"p50 {s['latency_ms']['p50']} ms)")

            reset(url)
            pe = run_measured([PY, __file__, "--peer", url, str(path), str(args.peer_events)], cwd=tmp)
            if pe["code"] != 0:
                raise SystemExit(f"peer failed: {pe['stderr'][-2000:]}")
            pe_eps = args.peer_events / pe["wall"]
            print(f"customerio client        : {pe['wall']:7.2f} s  {pe_eps:9,.0f} events/s  "
                  f"({pe['stdout'].strip()})")
            ratio = cd_eps / pe_eps
            print(f"ratio                    : {ratio:.1f}x  (target >= 20x) {'OK' if ratio >= 20 else 'MISSED'}")
        finally:
            stop_sandbox(proc)


if __name__ == "__main__":
    main()
