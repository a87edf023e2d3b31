"""Is replay's memory flat in the size of the input?

    python benchmarks/replay_memory.py [--events 1000000] [--skip-send]

Replays 100k and 1M generated events (a dry run, then a real send to a
`cdpio sandbox` process) and reports each cdpio process's max RSS, from
wait4() on that process alone.  Target: 1M events under 100 MB.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay_common import PY, make_events, run_with_rss, start_sandbox, stop_sandbox  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--skip-send", action="store_true", help="dry runs only")
    args = ap.parse_args()
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="cdpio-bench-") as tmp:
        sizes = sorted({min(100_000, args.events), args.events})
        files = {n: make_events(Path(tmp) / f"events-{n}.ndjson", n, seed=n) for n in sizes}
        base = [PY, "-m", "cdpio_cli", "--json", "-q"]
        for n, path in files.items():
            mb = path.stat().st_size / 1e6
            res = run_with_rss([*base, "replay", str(path), "--dry-run"], cwd=tmp)
            s = json.loads(res["stdout"])["summary"]
            worst = max(worst, res["max_rss_mb"])
            print(
                f"dry run  {n:>9,} events ({mb:5.0f} MB): max RSS {res['max_rss_mb']:6.1f} MB, "
                f"{res['wall']:6.1f} s, would send {s['would_send']:,}"
            )
        if not args.skip_send:
            proc, url = start_sandbox()
            try:
                for n, path in files.items():
                    httpx_reset(url)
                    res = run_with_rss(
                        [
                            *base,
                            "--sandbox-url",
                            url,
                            "replay",
                            str(path),
                            "--rate",
                            "0",
                            "--batch-size",
                            "500",
                            "--concurrency",
                            "4",
                            "--checkpoint",
                            str(Path(tmp) / f"ck-{n}"),
                        ],
                        cwd=tmp,
                    )
                    s = json.loads(res["stdout"])["summary"]
                    worst = max(worst, res["max_rss_mb"])
                    print(
                        f"sent     {n:>9,} events: max RSS {res['max_rss_mb']:6.1f} MB, {res['wall']:6.1f} s, "
                        f"accepted {s['accepted']:,}, {s['events_per_second']:,.0f} events/s (send phase)"
                    )
            finally:
                stop_sandbox(proc)
    print(f"largest max RSS {worst:.1f} MB (target < 100 MB) -> {'OK' if worst < 100 else 'MISSED'}")


def httpx_reset(url: str) -> None:
    import httpx

    httpx.post(url + "/_sandbox/reset", timeout=120)


if __name__ == "__main__":
    main()
