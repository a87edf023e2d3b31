"""`lint --plan` next to plain `lint`, on the same generated NDJSON, in one run.

    .venv/bin/python benchmarks/plan_lint_speed.py [N [REPEAT]]   (default 1,000,000 messages, 2 rounds)

Generates N messages (benchmarks/lint_speed.py's generator), infers a plan from
the first 20,000 (`cdpio plan infer`'s code, so every message is planned and
checked), then times, through fixtures.iter_records (parsing included):
plain lint and lint with the plan, alternately, REPEAT times each (best time
kept; CPU seconds of this process and of lint's worker), and the plan checks
alone on parsed messages.
Memory: the process's current RSS at 1/4, 1/2 and all of each pass (the
`--plan` pass must track plain lint's: the plan keeps no per-message state).  Compare the rates
as ratios when the machine is shared.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lint_speed import generate  # noqa: E402

from cdpio_cli import fixtures, lint, plan  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def sampled(records, n: int, samples: dict):
    marks = {n // 4: "25%", n // 2: "50%", n: "100%"}
    for i, record in enumerate(records, 1):
        yield record
        if i in marks:
            samples[marks[i]] = rss_mb()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.ndjson")
        generate(n, path)
        inferrer = plan.Inferrer()
        for record in itertools.islice(fixtures.iter_records([path]), 20_000):
            inferrer.add(record)
        plan_path = os.path.join(tmp, "plan.yaml")
        with open(plan_path, "w", encoding="utf-8") as fh:
            fh.write(inferrer.to_yaml())
        tracking_plan = plan.load_plan(plan_path)

        # Alternate the passes and keep each one's best time: on a shared machine
        # the load changes between passes.  CPU time is what the processes spent:
        # this one (process_time) and lint's worker past 20,000 records (os.times()
        # children), so its ratio is the steadier one under load.
        inf = float("inf")
        best = {"lint": [inf, inf, inf, inf], "plan": [inf, inf, inf, inf]}
        plain_samples: dict[str, float] = {}
        samples: dict[str, float] = {}
        for _ in range(repeat):
            for name, kwargs, marks in (("lint", {}, plain_samples), ("plan", {"plan": tracking_plan}, samples)):
                w0, c0, t0 = time.perf_counter(), time.process_time(), os.times()
                result = lint.lint_records(sampled(fixtures.iter_records([path]), n, marks), **kwargs)
                wall, cpu, t1 = time.perf_counter() - w0, time.process_time() - c0, os.times()
                worker = (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)
                best[name] = [min(b, v) for b, v in zip(best[name], (wall, cpu, worker, cpu + worker), strict=True)]
                if name == "plan":
                    planned = result

        # The plan checks alone, on already-parsed messages (a slice, to bound memory).
        msgs = [r.message for r in itertools.islice(fixtures.iter_records([path]), min(n, 200_000))]
        checker = plan.PlanChecker(tracking_plan)
        found = []
        t0 = time.process_time()
        for m in msgs:
            checker.check(m, path, 0, lambda *a, **k: found.append(a[0]))
        check_s = time.process_time() - t0

    plan_findings = {k: v for k, v in planned.by_rule.items() if k.startswith("plan/")}
    print(f"{n:,} messages, best of {repeat} rounds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for label, name in (("lint", "lint"), ("lint --plan", "plan")):
        wall, main_cpu, worker_cpu, total = best[name]
        busier = max(main_cpu, worker_cpu)
        print(
            f"{label:<14} {wall:7.2f}s wall {n / wall:>10,.0f} messages/s; CPU s main {main_cpu:.2f} + worker "
            f"{worker_cpu:.2f} = {total:.2f} (implied on 2 quiet cores: {n / busier:,.0f}/s)"
        )
    print(
        f"--plan / plain: {best['plan'][3] / best['lint'][3]:.2f}x the CPU in all, "
        f"{max(best['plan'][1:3]) / max(best['lint'][1:3]):.2f}x the busier process's; "
        f"plan findings {plan_findings or 'none'}"
    )
    print(
        f"plan checks    {check_s:7.2f}s CPU  {len(msgs) / check_s:>10,.0f} messages/CPU-s (parsed messages, no lint)"
    )
    # Lint's own data-set aggregates (userIds, anonymousIds) grow with the number of
    # distinct people; the plan adds nothing per message.
    print("RSS during lint:   " + ", ".join(f"{k} {v:.0f} MB" for k, v in plain_samples.items()))
    print("RSS during --plan: " + ", ".join(f"{k} {v:.0f} MB" for k, v in samples.items()))


if __name__ == "__main__":
    main()
