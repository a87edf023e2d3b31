"""Start-up cost: `cdpio --help` and the imports of a replay run, in CPU time.

`python benchmarks/startup.py [--runs N] [--baseline DIR]`

Each round runs, in turn: a bare `python -c pass`, `cdpio --help`, and a
20-event replay to the raw sink under `-X importtime` (whose top-level import
times, summed, are the replay run's imports).  Every process is timed from
outside in CPU seconds (user + sys, `os.wait4`), which a loaded machine
inflates far less than wall time.  Bytecode caching is on, as in any
installed package (pip compiles on install): PYTHONDONTWRITEBYTECODE is
dropped from the children's environment and one warm-up round writes the
caches.  With --baseline DIR the same rounds also run with PYTHONPATH=DIR
(for example `git archive REF cdpio_cli | tar -x -C DIR`), interleaved.
With --instructions, `cdpio --help` and `python -c pass` also run once under
valgrind's callgrind: instruction counts do not move with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab import PY, start_sink  # noqa: E402
from replay_common import make_events  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HELP_TARGET = 0.15  # seconds (issue 17)
IMPORTS_TARGET = 0.10


def _env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CI")}
    env.update(PYTHONPATH=str(tree), COLUMNS="100", NO_COLOR="1")
    return env


# Each process runs in its tree: `python -m` puts the working directory first on sys.path.
def cpu_seconds(argv: list[str], tree: Path) -> tuple[float, str]:
    """(user + sys CPU seconds of the process, its stderr)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=_env(tree), cwd=tree, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} failed: {stderr[-1000:]}")
    return usage.ru_utime + usage.ru_stime, stderr


def instructions(argv: list[str], tree: Path) -> int:
    """Instructions the process executes (valgrind --tool=callgrind)."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env=_env(tree),
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind: {proc.stderr[-500:]}")
    return int(found.group(1))


def import_seconds(importtime: str) -> float:
    """The sum of the top-level cumulative import times in `-X importtime` output."""
    total = 0
    for line in importtime.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|", 2)
            if cumulative.strip().isdigit() and not name.startswith("  "):
                total += int(cumulative)
    return total / 1e6


def one_round(tree: Path, url: str, events: Path) -> dict[str, float]:
    bare, _ = cpu_seconds([PY, "-c", "pass"], tree)
    help_cpu, _ = cpu_seconds([PY, "-m", "cdpio_cli", "--help"], tree)
    replay = [PY, "-X", "importtime", "-m", "cdpio_cli", "--sandbox-url", url, "-q", "replay", str(events)]
    _, importtime = cpu_seconds([*replay, "--rate", "0"], tree)
    return {"bare": bare, "help": help_cpu, "imports": import_seconds(importtime)}


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


def measure(runs: int, url: str, baseline: Path | None = None) -> list[str]:
    """Lines of figures: medians over `runs` interleaved rounds, min-max in brackets."""
    trees = {"this tree": ROOT, **({"baseline": baseline} if baseline else {})}
    with tempfile.TemporaryDirectory() as tmp:
        events = make_events(Path(tmp) / "events.ndjson", 20)
        for tree in trees.values():  # warm-up: bytecode caches, page cache
            one_round(tree, url, events)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for i in range(runs):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for name in order:
                rounds[name].append(one_round(trees[name], url, events))
    lines = []
    for name, results in rounds.items():
        bare = [r["bare"] for r in results]
        helps = [r["help"] for r in results]
        imports = [r["imports"] for r in results]
        lines.append(
            f"{name}: cdpio --help CPU {fmt(helps)} (target < {HELP_TARGET} s: "
            f"{'MET' if statistics.median(helps) < HELP_TARGET else 'NOT MET'}); bare python CPU {fmt(bare)}"
        )
        lines.append(
            f"{name}: imports of a replay run {fmt(imports)} (-X importtime; target < {IMPORTS_TARGET} s: "
            f"{'MET' if statistics.median(imports) < IMPORTS_TARGET else 'NOT MET'})"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(prog="python benchmarks/startup.py")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--baseline", metavar="DIR", type=Path, help="also measure the cdpio_cli package in DIR")
    ap.add_argument("--instructions", action="store_true", help="also count instructions under callgrind (slow)")
    args = ap.parse_args()
    proc, url = start_sink()
    try:
        for line in measure(args.runs, url, args.baseline):
            print(line)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    if args.instructions:
        trees = {"this tree": ROOT, **({"baseline": args.baseline} if args.baseline else {})}
        for name, tree in trees.items():
            help_count = instructions([PY, "-m", "cdpio_cli", "--help"], tree)
            bare_count = instructions([PY, "-c", "pass"], tree)
            print(f"{name}: cdpio --help {help_count / 1e6:,.0f}M instructions (bare python {bare_count / 1e6:,.0f}M)")


if __name__ == "__main__":
    main()
