"""How close does `cdpio replay --rate R` get to R, against a sandbox that
throttles at exactly R (429 + Retry-After above it)?

    python benchmarks/rate_accuracy.py [--rates 50 200 500] [--seconds 8]

Each message is its own request (--batch-size 1) and 8 senders compete for
the token bucket.  The achieved rate is measured by the server: the arrival
times of the first and last request.  Target: within 3% of R and zero 429s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay_common import cdpio_replay, make_events, start_sandbox, stop_sandbox  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", type=float, nargs="+", default=[50.0, 200.0, 500.0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    worst = 0.0
    any_429 = False
    with tempfile.TemporaryDirectory(prefix="cdpio-bench-") as tmp:
        for rate in args.rates:
            n = int(rate * args.seconds) + 1
            path = make_events(Path(tmp) / f"events-{rate:g}.ndjson", n, seed=int(rate))
            proc, url = start_sandbox("--throttle", f"{rate:g}")
            try:
                res = cdpio_replay(
                    url,
                    path,
                    "--rate",
                    f"{rate:g}",
                    "--batch-size",
                    "1",
                    "--concurrency",
                    str(args.concurrency),
                    cwd=tmp,
                )
                s = res["summary"]
                rows = httpx.get(url + "/_sandbox/deliveries", timeout=120).json()["deliveries"]
                stamps = sorted(r["receivedAt"] for r in rows)
                achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0])
                err = (achieved - rate) / rate * 100.0
                n429 = s["status_counts"].get("429", 0)
                worst = max(worst, abs(err))
                any_429 = any_429 or n429 > 0
                print(
                    f"rate {rate:7.1f} req/s: achieved {achieved:8.2f} req/s ({err:+.2f}%), "
                    f"{len(stamps):,} requests, 429s: {n429}, statuses {s['status_counts']}"
                )
            finally:
                stop_sandbox(proc)
    ok = worst <= 3.0 and not any_429
    print(
        f"worst deviation {worst:.2f}% (target <= 3%), 429s: {'some' if any_429 else 'none'} "
        f"-> {'OK' if ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
