"""Reliability at scale: replay N events through `cdpio replay` (the real CLI,
in a subprocess) to a local sandbox injecting 20% 5xx, 429 with Retry-After
above a request rate, and 20% dropped connections; then a replay killed with
SIGKILL and resumed from its checkpoint.  Prints the reconciliation per
messageId (delivered exactly once, or in the dead-letter file) and the
`--json` counts.

    .venv/bin/python benchmarks/reliability.py            # 20,000 events per route
    .venv/bin/python benchmarks/reliability.py --events 2000 --routes segment

Loopback only; every run is bounded (subprocess timeouts, fixed event count).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdpio_cli.replay import load_checkpoint  # noqa: E402
from cdpio_cli.sandbox.options import SandboxOptions  # noqa: E402
from cdpio_cli.sandbox.runner import EmbeddedSandbox  # noqa: E402
from cdpio_cli.sandbox.views import activities_view  # noqa: E402

INVALID = [{"type": "track", "userId": "bad"}, {"type": "track", "event": "No Identity"}]


def write_corpus(path: Path, n: int, invalid_every: int) -> list[str]:
    ids = []
    with open(path, "w") as fh:
        for i in range(n):
            mid = f"rel-{i:07d}"
            ids.append(mid)
            fh.write(
                json.dumps(
                    {
                        "type": "track",
                        "userId": f"p{i}",
                        "event": "Order Completed",
                        "messageId": mid,
                        "timestamp": "2026-03-01T10:00:00.000Z",
                        "properties": {"order_id": f"o{i}", "revenue": i % 500},
                    }
                )
                + "\n"
            )
            if invalid_every and i % invalid_every == invalid_every // 2:
                fh.write(json.dumps(INVALID[(i // invalid_every) % 2]) + "\n")
    return ids


def cli(sb, *args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CDPIO_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "cdpio_cli", "--sandbox-url", sb.url, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def delivered(sb, route: str, ids: list[str]) -> dict[str, int]:
    if route == "customerio":  # one person per message: their event count
        ws = sb.state.workspace
        out = {}
        for i, mid in enumerate(ids):
            person = ws.find("id", f"p{i}")
            if person is not None:
                n = len(activities_view(person, type_="event", limit=100)[0])
                if n:
                    out[mid] = n
        return out
    rows = httpx.get(sb.url + "/_sandbox/deliveries", params={"status": "delivered"}, timeout=60).json()
    out: dict[str, int] = {}
    for d in rows["deliveries"]:
        out[d["messageId"]] = out.get(d["messageId"], 0) + 1
    return out


def dead_letter_ids(path: Path) -> tuple[set[str], int]:
    if not path.exists():
        return set(), 0
    valid, invalid = set(), 0
    for line in path.read_text().splitlines():
        d = json.loads(line)
        if d["_cdpio"]["reason"].startswith("invalid:"):
            invalid += 1
        else:
            valid.add(d["messageId"])
    return valid, invalid


def reconcile(sb, route: str, ids: list[str], summary: dict, dl: Path) -> dict:
    got = delivered(sb, route, ids)
    dl_valid, dl_invalid = dead_letter_ids(dl)
    twice = sum(1 for c in got.values() if c > 1)
    lost = len(set(ids) - set(got) - dl_valid)
    sbsum = httpx.get(sb.url + "/_sandbox/deliveries", params={"limit": 1}, timeout=60).json()["summary"]
    return {
        "read": summary["read"],
        "accepted": summary["accepted"],
        "failed": summary["failed"],
        "invalid": summary["invalid"],
        "retried": summary["retried"],
        "requests": summary["requests"],
        "status_counts": summary["status_counts"],
        "events_per_second": summary["events_per_second"],
        "delivered_once": sum(1 for c in got.values() if c == 1),
        "delivered_twice_or_more": twice,
        "dead_lettered_valid": len(dl_valid),
        "dead_lettered_invalid": dl_invalid,
        "lost": lost,
        "duplicates_dropped_by_service": sbsum["drop_reasons"].get("duplicate_message_id", 0),
        "reconciles": summary["read"] == summary["accepted"] + summary["failed"] + summary["invalid"]
        and summary["failed"] == len(dl_valid)
        and summary["invalid"] == dl_invalid
        and lost == 0
        and twice == 0,
    }


def fault_run(route: str, n: int, throttle: float, work: Path) -> dict:
    opts = SandboxOptions(fail_rate=0.2, fail_status=503, drop_connections=0.2, throttle=throttle, seed=7)
    with EmbeddedSandbox(opts) as sb:
        src = work / f"{route}.ndjson"
        ids = write_corpus(src, n, invalid_every=1000)
        dl = work / f"{route}.dead-letter.ndjson"
        t0 = time.perf_counter()
        proc = cli(
            sb,
            "--json",
            "replay",
            str(src),
            "--route",
            route,
            "--skip-invalid",
            "--rate",
            "0",
            "--batch-size",
            "100",
            "--concurrency",
            "4",
            "--max-retries",
            "10",
            "--timeout",
            "10",
            "--dead-letter",
            str(dl),
            cwd=work,
        )
        wall = time.perf_counter() - t0
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{route}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
        figures = reconcile(sb, route, ids, json.loads(proc.stdout)["summary"], dl)
        figures["exit_code"], figures["wall_seconds"] = proc.returncode, round(wall, 1)
        return figures


def kill_and_resume(n: int, work: Path) -> dict:
    opts = SandboxOptions(fail_rate=0.2, fail_status=503, drop_connections=0.2, seed=8)
    with EmbeddedSandbox(opts) as sb:
        src = work / "resume.ndjson"
        ids = write_corpus(src, n, invalid_every=0)  # see the report: --checkpoint + dead letters
        ckpt, dl = work / "resume.ckpt", work / "resume.dead-letter.ndjson"
        args = [
            "replay",
            str(src),
            "--checkpoint",
            str(ckpt),
            "--dead-letter",
            str(dl),
            "--batch-size",
            "50",
            "--concurrency",
            "4",
            "--max-retries",
            "20",
        ]
        env = {k: v for k, v in os.environ.items() if k != "CDPIO_CONFIG"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "cdpio_cli", "--sandbox-url", sb.url, "-q", *args, "--rate", "100"],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            data = load_checkpoint(str(ckpt)) if ckpt.exists() else None
            if data and data["inputs"][0]["done"] >= n * 0.4:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        done_at_kill = load_checkpoint(str(ckpt))["inputs"][0]["done"]
        before = len(delivered(sb, "segment", ids))
        res = cli(sb, "--json", *args, "--rate", "0", cwd=work)
        summary = json.loads(res.stdout)["summary"]
        got = delivered(sb, "segment", ids)
        sbsum = httpx.get(sb.url + "/_sandbox/deliveries", params={"limit": 1}, timeout=60).json()["summary"]
        return {
            "events": n,
            "checkpoint_done_at_kill": done_at_kill,
            "delivered_before_resume": before,
            "resume_exit_code": res.returncode,
            "skipped_by_resume": summary["skipped_resumed"],
            "sent_by_resume": summary["sent"],
            "delivered_once": sum(1 for c in got.values() if c == 1),
            "delivered_twice_or_more": sum(1 for c in got.values() if c > 1),
            "lost": len(set(ids) - set(got)),
            "received_by_service": sbsum["received"],
            "duplicates_dropped_by_service": sbsum["drop_reasons"].get("duplicate_message_id", 0),
            "other_drops": {k: v for k, v in sbsum["drop_reasons"].items() if k != "duplicate_message_id"},
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--routes", default="segment,pipelines,customerio")
    ap.add_argument("--throttle", type=float, default=10.0, help="sandbox 429 above this many requests/s")
    ap.add_argument("--no-resume", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(
            f"fault mix: 20% 503, 20% dropped connections, 429 + Retry-After above {args.throttle:g} req/s; "
            f"{args.events:,} valid events + 1 invalid per 1,000"
        )
        for route in args.routes.split(","):
            f = fault_run(route, args.events, args.throttle, work)
            print(f"\n[{route}] exit {f['exit_code']}, {f['wall_seconds']} s, {f['events_per_second']:,.0f} events/s")
            print(
                f"  read {f['read']:,} = accepted {f['accepted']:,} + dead-lettered {f['failed']:,} "
                f"+ invalid {f['invalid']:,}   reconciles: {f['reconciles']}"
            )
            print(
                f"  per messageId: delivered once {f['delivered_once']:,}, twice or more "
                f"{f['delivered_twice_or_more']}, in the dead-letter file {f['dead_lettered_valid']:,}, "
                f"lost {f['lost']}"
            )
            dups = (
                "n/a (the Track API route is checked per person)"
                if route == "customerio"
                else f"{f['duplicates_dropped_by_service']:,}"
            )
            print(
                f"  {f['requests']:,} requests, {f['retried']:,} retried; status {f['status_counts']}; "
                f"duplicates dropped by the service {dups}"
            )
        if not args.no_resume:
            r = kill_and_resume(args.events, work)
            print(f"\n[SIGKILL + resume, segment, 20% 503 + 20% dropped] {r['events']:,} events")
            print(
                f"  killed with the checkpoint at {r['checkpoint_done_at_kill']:,} "
                f"({r['delivered_before_resume']:,} delivered); resume skipped {r['skipped_by_resume']:,}, "
                f"sent {r['sent_by_resume']:,}, exit {r['resume_exit_code']}"
            )
            print(
                f"  delivered once {r['delivered_once']:,}, twice or more {r['delivered_twice_or_more']}, "
                f"lost {r['lost']}; service received {r['received_by_service']:,}, dropped "
                f"{r['duplicates_dropped_by_service']:,} duplicate messageIds, other drops {r['other_drops']}"
            )


if __name__ == "__main__":
    main()
