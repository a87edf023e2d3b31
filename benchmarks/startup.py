"""Start-up cost: `cdpio --help` and the imports of a replay run, in CPU time.

`python benchmarks/startup.py [--runs N] [--baseline DIR]`

Each round runs, in turn: a bare `python -c pass`, `cdpio --help`, and a
20-event replay to the raw sink under `-X importtime` (whose top-level import
times, summed, are the replay run's imports), twice: with no config file, and
with `examples/cdpio.yaml` (its variables set to dummy keys) as ./cdpio.yaml.
What the interpreter imports on its own (site, encodings, the editable-install
finder: `python -X importtime -c pass`, measured the same way in the same
round) is subtracted, so the figure is what cdpio adds before its first byte;
the gross sum is printed beside it.  Every process is timed from
outside in CPU seconds (user + sys, `os.wait4`), which a loaded machine
inflates far less than wall time.  Bytecode caching is on, as in any
installed package (pip compiles on install): PYTHONDONTWRITEBYTECODE is
dropped from the children's environment and one warm-up round writes the
caches.  With --baseline DIR the same rounds also run with PYTHONPATH=DIR
(for example `git archive REF cdpio_cli | tar -x -C DIR`), interleaved.
`-X importtime` measures wall time: on a loaded machine it is inflated too.
With --instructions, `cdpio --help`, `python -c pass`, the replay run (whole
process, without and with the config) and the replay run's imports alone also
run once under valgrind's callgrind: instruction counts do not move with the
machine's load.
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
# examples/cdpio.yaml reads these; dummy values (the raw sink accepts any key).
CONFIG_VARS = {
    "SEGMENT_WRITE_KEY": "benchmarkwritekey0123456789abcdef",
    "CUSTOMERIO_SITE_ID": "benchmarksiteid00001",
    "CUSTOMERIO_TRACK_API_KEY": "benchmarktrackapikey0001",
}


def _env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CI", "CDPIO_CONFIG")}
    env.update(PYTHONPATH=str(tree), COLUMNS="100", NO_COLOR="1", **CONFIG_VARS)
    return env


# `python -m` puts the working directory first on sys.path: each process runs
# in a folder of its own (`cwd`, the tree itself unless a config is tried), the tree on PYTHONPATH.
def cpu_seconds(argv: list[str], tree: Path, cwd: Path | None = None) -> tuple[float, str]:
    """(user + sys CPU seconds of the process, its stderr)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=_env(tree), cwd=cwd or tree, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} failed: {stderr[-1000:]}")
    return usage.ru_utime + usage.ru_stime, stderr


def instructions(argv: list[str], tree: Path, cwd: Path | None = None) -> int:
    """Instructions the process executes (valgrind --tool=callgrind)."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env=_env(tree),
        cwd=cwd or tree,
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


def top_level_modules(importtime: str) -> list[str]:
    """The modules `-X importtime` lists at the top level, in the order they were imported."""
    names = []
    for line in importtime.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|", 2)
            if cumulative.strip().isdigit() and not name.startswith("  "):
                names.append(name.strip())
    return names


def one_round(tree: Path, url: str, events: Path, config_dir: Path) -> dict[str, float]:
    bare, _ = cpu_seconds([PY, "-c", "pass"], tree)
    _, bare_importtime = cpu_seconds([PY, "-X", "importtime", "-c", "pass"], tree)
    help_cpu, _ = cpu_seconds([PY, "-m", "cdpio_cli", "--help"], tree)
    replay = [PY, "-X", "importtime", "-m", "cdpio_cli", "--sandbox-url", url, "--json", "-q", "replay", str(events)]
    _, importtime = cpu_seconds([*replay, "--route", "segment", "--rate", "0"], tree)
    _, with_config = cpu_seconds([*replay, "--route", "segment", "--rate", "0"], tree, cwd=config_dir)
    interpreter = import_seconds(bare_importtime)
    return {
        "bare": bare,
        "help": help_cpu,
        "imports_gross": import_seconds(importtime),
        "imports": import_seconds(importtime) - interpreter,
        "imports_config": import_seconds(with_config) - interpreter,
        "interpreter": interpreter,
    }


def _config_dir(name: str, tmp: Path) -> Path:
    """A folder with examples/cdpio.yaml as ./cdpio.yaml (the package still comes from PYTHONPATH)."""
    folder = tmp / f"with-config-{name.replace(' ', '-')}"
    folder.mkdir()
    (folder / "cdpio.yaml").write_text((ROOT / "examples" / "cdpio.yaml").read_text())
    return folder


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


def measure(runs: int, url: str, baseline: Path | None = None) -> list[str]:
    """Lines of figures: medians over `runs` interleaved rounds, min-max in brackets."""
    trees = {"this tree": ROOT, **({"baseline": baseline} if baseline else {})}
    with tempfile.TemporaryDirectory() as tmp:
        events = make_events(Path(tmp) / "events.ndjson", 20)
        dirs = {name: _config_dir(name, Path(tmp)) for name in trees}
        for name, tree in trees.items():  # warm-up: bytecode caches, page cache
            one_round(tree, url, events, dirs[name])
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for i in range(runs):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for name in order:
                rounds[name].append(one_round(trees[name], url, events, dirs[name]))
    lines = []
    for name, results in rounds.items():
        column = {key: [r[key] for r in results] for key in results[0]}
        helps, imports = column["help"], column["imports"]
        lines.append(
            f"{name}: cdpio --help CPU {fmt(helps)} (target < {HELP_TARGET} s: "
            f"{'MET' if statistics.median(helps) < HELP_TARGET else 'NOT MET'}); bare python CPU {fmt(column['bare'])}"
        )
        lines.append(
            f"{name}: imports of a replay run (--json -q, no config), what cdpio adds: {fmt(imports)} (-X importtime "
            f"less the bare interpreter's own {fmt(column['interpreter'])}; gross {fmt(column['imports_gross'])}); "
            f"target < {IMPORTS_TARGET} s: {'MET' if statistics.median(imports) < IMPORTS_TARGET else 'NOT MET'}"
        )
        lines.append(f"{name}: the same with examples/cdpio.yaml as ./cdpio.yaml {fmt(column['imports_config'])}")
    return lines


def count_instructions(url: str, baseline: Path | None) -> list[str]:
    """Instruction counts (callgrind), which a loaded machine does not move: `cdpio --help`,
    a bare interpreter, the 20-event replay run (whole process) without and with a config,
    and the replay run's imports alone: a process importing the modules the run's
    `-X importtime` lists at the top level, less a bare interpreter (what cdpio adds)."""
    trees = {"this tree": ROOT, **({"baseline": baseline} if baseline else {})}
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        events = make_events(Path(tmp) / "events.ndjson", 20)
        replay = [PY, "-m", "cdpio_cli", "--sandbox-url", url, "--json", "-q", "replay", str(events)]
        replay += ["--route", "segment", "--rate", "0"]
        for name, tree in trees.items():
            config_dir = _config_dir(name, Path(tmp))
            help_count = instructions([PY, "-m", "cdpio_cli", "--help"], tree)
            bare_count = instructions([PY, "-c", "pass"], tree)
            run = instructions(replay, tree)
            run_config = instructions(replay, tree, cwd=config_dir)
            _, importtime = cpu_seconds([PY, "-X", "importtime", *replay[1:]], tree)
            modules = top_level_modules(importtime)
            code = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)"
            imports = instructions([PY, "-c", code], tree) - bare_count
            lines.append(
                f"{name}: cdpio --help {help_count / 1e6:,.0f}M instructions (bare python {bare_count / 1e6:,.0f}M); "
                f"a 20-event replay run {run / 1e6:,.0f}M, with examples/cdpio.yaml {run_config / 1e6:,.0f}M; "
                f"the replay run's imports less the bare interpreter {imports / 1e6:,.0f}M"
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
        if args.instructions:
            for line in count_instructions(url, args.baseline):
                print(line)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
