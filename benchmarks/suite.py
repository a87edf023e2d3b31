"""Run the side-by-side benchmarks: `python -m benchmarks [--quick] [--pairs N] [--only NAME ...]`.

Every comparison runs against one raw sink (benchmarks/raw_sink.py, not the
sandbox) in its own process, with the same events and the same count on both
sides, one warm-up pair and then interleaved pairs; each run's deliveries are
checked per key at the sink.  Ratios are medians over the pairs (min-max in
brackets); absolute times on a shared machine are noise, ratios much less so.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab import PY, Bench, Side, fmt_ratio, fmt_side, start_sink  # noqa: E402
from lint_speed import generate as make_lint_corpus  # noqa: E402
from lint_speed import write_plan  # noqa: E402
from replay_common import make_events  # noqa: E402
from startup import measure as measure_startup  # noqa: E402

PEERS = str(Path(__file__).resolve().parent / "peers.py")
COMPARISONS = ("segment", "customerio", "customerio-calls", "floor", "memory", "lint", "startup", "baseline")
RSS_TARGET_MB = 80  # issue 17: peak RSS at any --concurrency up to 32, flat in the number of events


def cdpio(url: str, file: Path, route: str, events: int, *extra: str) -> Side:
    return Side(
        " ".join([f"cdpio replay --route {route}", *extra]),
        kind="segment" if route == "segment" else "customerio",
        events=events,
        cmd=[
            PY,
            "-m",
            "cdpio_cli",
            "--sandbox-url",
            url,
            "--json",
            "-q",
            "replay",
            str(file),
            "--route",
            route,
            "--rate",
            "0",
            *extra,
        ],
    )


def _timed(cmd: list[str], cwd: str) -> float:
    """Wall seconds of one process (its forked lint worker included); lint exits 0 or 1 (findings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDPIO_")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return wall


def measure_lint(tmp: str, n: int, pairs: int) -> list[str]:
    """`cdpio lint` and `cdpio lint --plan` as a user runs them (a process each,
    start-up and output included) over the same N generated messages
    (benchmarks/lint_speed.py's corpus, the plan inferred from its first 20,000),
    one warm-up pair, then `pairs` pairs alternating their order."""
    corpus, plan_file = os.path.join(tmp, "lint.ndjson"), os.path.join(tmp, "lint-plan.yaml")
    make_lint_corpus(n, corpus)
    write_plan(corpus, plan_file)
    base = [PY, "-m", "cdpio_cli", "--json", "-q", "lint"]
    sides = {"lint": [*base, corpus], "lint --plan": [*base, "--plan", plan_file, corpus]}
    walls: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(pairs + 1):
        for name in sides if i % 2 == 0 else reversed(list(sides)):
            wall = _timed(sides[name], tmp)
            if i:  # the first pair warms up
                walls[name].append(wall)
    os.unlink(corpus)
    lines = []
    for name, target in (("lint", 200_000), ("lint --plan", 100_000)):
        rates = [n / w for w in walls[name]]
        median = statistics.median(rates)
        lines.append(
            f"{'cdpio ' + name + f' ({n:,} messages)':<58} {median:>9,.0f} messages/s "
            f"({min(rates):,.0f}-{max(rates):,.0f})  target >= {target:,}/s  {'MET' if median >= target else 'NOT MET'}"
        )
    per_million = statistics.median(walls["lint"]) * 1_000_000 / n
    lines.append(
        f"{'cdpio lint, time for 1,000,000 messages':<58} {per_million:9.2f} s"
        f"{'' if n == 1_000_000 else f' (scaled from {n:,})'}  target < 8 s  {'MET' if per_million < 8 else 'NOT MET'}"
    )
    return lines


def measure_memory(bench: Bench, url: str, files: dict[int, Path]) -> list[str]:
    """Peak RSS of `cdpio replay` (Segment route) at --concurrency 4, 16 and 32,
    and at 32 on a file five times larger: one run each (RSS barely moves
    between runs), deliveries checked like every other run."""
    n, big = min(files), max(files)
    runs = [(n, c) for c in (4, 16, 32)] + [(big, 32)]
    peaks: dict[tuple[int, int], float] = {}
    for events, concurrency in runs:
        side = cdpio(url, files[events], "segment", events, "--concurrency", str(concurrency))
        bench.run(side, files[events])
        peaks[events, concurrency] = side.rss_mb[-1]
        print(f"{side.name:<50} {events:>9,} events  peak RSS {peaks[events, concurrency]:5.1f} MB", flush=True)
    worst = max(peaks.values())
    growth = peaks[big, 32] / peaks[n, 32]
    ok = worst < RSS_TARGET_MB and growth < 1.1
    return [
        f"{'replay peak RSS, --concurrency 4/16/32 (' + f'{n:,}' + ' events)':<58} "
        + " / ".join(f"{peaks[n, c]:.0f}" for c in (4, 16, 32))
        + f" MB; at 32 with {big:,} events {peaks[big, 32]:.0f} MB ({growth:.2f}x)  "
        f"target < {RSS_TARGET_MB} MB and flat  {'MET' if ok else 'NOT MET'}"
    ]


def peer(mode: str, url: str, file: Path, kind: str, events: int) -> Side:
    return Side(f"peer: {mode}", kind=kind, events=events, cmd=[PY, PEERS, mode, url, str(file)])


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, load average {load[0]:.1f} at start"
    )


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("--quick", action="store_true", help="20,000 events (2,000 one call each), a smoke run")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--only", nargs="+", choices=COMPARISONS)
    ap.add_argument(
        "--baseline",
        metavar="DIR",
        help="also compare replay with the cdpio_cli package in DIR (e.g. an older checkout, "
        "`git archive REF cdpio_cli | tar -x -C DIR`)",
    )
    args = ap.parse_args()
    n = args.events or (20_000 if args.quick else 200_000)
    n_calls = max(1, n // 10)
    only = set(args.only or COMPARISONS)

    print(machine())
    print(
        f"{n:,} events ({n_calls:,} for one call per event), {args.pairs} interleaved pairs after one "
        "warm-up pair; cdpio runs with --rate 0 and its defaults (--batch-size 100, --concurrency 4)"
    )
    results: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cdpio-bench-") as tmp:
        big = make_events(Path(tmp) / "events.ndjson", n)
        small = make_events(Path(tmp) / "events-small.ndjson", n_calls)
        print(f"events: {big.stat().st_size / n:.0f} bytes each on average (70% track, 15% identify, 15% page)")
        proc, url = start_sink()
        try:
            bench = Bench(url, tmp)

            def compare(a: Side, b: Side, label: str, target: float, unit: str = "x") -> None:
                r = bench.pairs(a, b, big if a.events == n else small, args.pairs, big if b.events == n else small)
                print(fmt_side(a))
                print(fmt_side(b))
                line = fmt_ratio(label, r, target, unit)
                print(line, flush=True)
                results.append(line)
                for side in (a, b):
                    side.runs.clear(), side.cpu_us.clear(), side.cpu.clear(), side.rss_mb.clear()

            if "segment" in only:
                compare(
                    cdpio(url, big, "segment", n),
                    peer("segment-default", url, big, "segment", n),
                    "segment route vs segment-analytics-python (defaults)",
                    10,
                )
                compare(
                    cdpio(url, big, "segment", n),
                    peer("segment-tuned", url, big, "segment", n),
                    "segment route vs segment-analytics-python (tuned)",
                    8,
                )
            if "customerio" in only:
                compare(
                    cdpio(url, big, "customerio", n),
                    peer("cio-batch", url, big, "customerio", n),
                    "customerio route vs customerio batch() (1 thread)",
                    2,
                )
                compare(
                    cdpio(url, big, "customerio", n),
                    peer("cio-batch4", url, big, "customerio", n),
                    "customerio route vs customerio batch() (4 threads)",
                    2,
                )
            if "customerio-calls" in only:
                compare(
                    cdpio(url, small, "customerio", n_calls),
                    peer("cio-calls", url, small, "customerio", n_calls),
                    "customerio route vs customerio one call per event",
                    40,
                )
            if "floor" in only:
                compare(
                    cdpio(url, big, "segment", n),
                    peer("floor", url, big, "segment", n),
                    "replay (segment route) as a share of the floor",
                    0.6,
                    "%",
                )
            if "memory" in only:
                larger = make_events(Path(tmp) / "events-5x.ndjson", 5 * n, seed=5)
                for line in measure_memory(bench, url, {n: big, 5 * n: larger}):
                    print(line)
                    results.append(line)
                larger.unlink()
            if args.baseline and "baseline" in only:
                for route in ("segment", "customerio"):
                    old = cdpio(url, big, route, n)
                    old.name, old.env = f"cdpio replay --route {route} (baseline)", {"PYTHONPATH": args.baseline}
                    compare(cdpio(url, big, route, n), old, f"{route} route: this tree vs the baseline", 1.0)
            if "lint" in only:
                for line in measure_lint(tmp, 100_000 if args.quick else 1_000_000, args.pairs):
                    print(line, flush=True)
                    results.append(line)
            if "startup" in only:
                baseline_tree = Path(args.baseline) if args.baseline else None
                for line in measure_startup(args.pairs, url, baseline_tree):
                    print(line)
                    results.append(line)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print("\nsummary (median ratio over the pairs, min-max in brackets):")
    for line in results:
        print("  " + line)


if __name__ == "__main__":
    main()
