"""Faults and interruption, through the real CLI against sandboxes that
inject 5xx, 429 with Retry-After, dropped connections and latency beyond the
timeout.  Per messageId: every valid message is delivered exactly once or is
in the dead-letter file, and the `--json` counts reconcile:
read = accepted + dead-lettered + invalid (+ dropped by the mapping).

tests/test_replay.py covers replay in-process (one fault mix, SIGKILL resume
without faults); this is the matrix, end to end, plus a kill under faults.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cdpio_cli.replay import load_checkpoint
from cdpio_cli.sandbox.views import activities_view
from tests.cli_helpers import clean_env, run_cli
from tests.reliability._support import assert_clean_failure

# A long sweep (the fault matrix and SIGKILL-then-resume under faults): .ci/run runs it with -m slow.
pytestmark = pytest.mark.slow

N_VALID = 240
INVALID_LINES = [  # valid JSON, invalid messages: dead-lettered with --skip-invalid
    {"type": "track", "userId": "bad-1"},  # no event
    {"type": "track", "event": "Signed Up"},  # no identity
    {"type": "identify", "userId": "bad-3", "timestamp": "last week"},  # bad timestamp
]


def corpus(path: Path, n: int = N_VALID, invalid: bool = True) -> tuple[Path, list[str]]:
    """n valid messages with stable ids and one person each, invalid ones among them."""
    lines, ids = [], []
    for i in range(n):
        mid = f"flt-{i:05d}"
        ids.append(mid)
        lines.append(
            {
                "type": "track",
                "userId": f"p{i}",
                "event": "Order Completed",
                "messageId": mid,
                "timestamp": "2026-03-01T10:00:00.000Z",
                "properties": {"order_id": f"o{i}", "revenue": i},
            }
        )
        if invalid and i % 80 == 40:
            lines.append(INVALID_LINES[(i // 80) % len(INVALID_LINES)])
    path.write_text("".join(json.dumps(m) + "\n" for m in lines))
    return path, ids


def replay_cli(sb, src: Path, work: Path, *extra: str, route: str = "segment"):
    return run_cli(
        "--sandbox-url",
        sb.url,
        "--json",
        "replay",
        str(src),
        "--route",
        route,
        "--skip-invalid",
        "--dead-letter",
        str(work / "dl.ndjson"),
        "--rate",
        "0",
        "--batch-size",
        "10",
        *extra,
        cwd=work,
        timeout=120,
    )


def dead_letters(work: Path) -> list[dict]:
    path = work / "dl.ndjson"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def delivered_counts(sb) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in httpx.get(sb.url + "/_sandbox/deliveries").json()["deliveries"]:
        if d["status"] == "delivered":
            counts[d["messageId"]] = counts.get(d["messageId"], 0) + 1
    return counts


def activity_counts(sb, n: int) -> dict[str, int]:
    """Customer.io Track route: one person per message, so a person's event
    count is that message's delivery count."""
    ws = sb.state.workspace
    out = {}
    for i in range(n):
        person = ws.find("id", f"p{i}")
        events = activities_view(person, type_="event", limit=100)[0] if person else []
        if events:
            out[f"flt-{i:05d}"] = len(events)
    return out


def reconcile(res, sb, work: Path, ids: list[str], route: str) -> dict:
    s = res.json["summary"]
    dl = dead_letters(work)
    dl_valid = {d["messageId"] for d in dl if not d["_cdpio"]["reason"].startswith("invalid:")}
    dl_invalid = [d for d in dl if d["_cdpio"]["reason"].startswith("invalid:")]
    delivered = activity_counts(sb, len(ids)) if route == "customerio" else delivered_counts(sb)
    # Counts reconcile, and the dead-letter file agrees with them.
    assert s["read"] == len(ids) + len(INVALID_LINES)
    assert s["read"] == s["accepted"] + s["failed"] + s["invalid"] + s["dropped_by_mapping"] + s["not_sent"]
    assert (s["not_sent"], s["dropped_by_mapping"]) == (0, 0)
    assert s["invalid"] == len(dl_invalid) == len(INVALID_LINES)
    assert s["failed"] == len(dl_valid) and s["dead_lettered"] == len(dl)
    # Per messageId: delivered at most once; delivered or dead-lettered; and a
    # message the replay counted as accepted really was delivered.
    assert all(c == 1 for c in delivered.values()), {k: c for k, c in delivered.items() if c != 1}
    assert set(delivered) <= set(ids)
    lost = set(ids) - set(delivered) - dl_valid
    assert not lost, sorted(lost)[:5]
    assert len(set(ids) - dl_valid) == s["accepted"]
    assert set(ids) - dl_valid <= set(delivered)
    return {
        "read": s["read"],
        "accepted": s["accepted"],
        "dead_lettered": len(dl),
        "invalid": s["invalid"],
        "delivered": len(delivered),
        "retried": s["retried"],
        "status_counts": s["status_counts"],
    }


MATRIX = {
    "5xx-20pct": dict(fail_rate=0.2, fail_status=503, seed=11),
    "429-retry-after": dict(throttle=10, seed=12),
    "dropped-20pct": dict(drop_connections=0.2, seed=13),
    "everything": dict(fail_rate=0.2, fail_status=500, drop_connections=0.2, throttle=60, seed=14),
}


# Every fault on the Segment route; the combined mix on the other two as well.
CELLS = [(f, "segment") for f in MATRIX] + [("everything", "pipelines"), ("everything", "customerio")]


@pytest.mark.parametrize("fault,route", CELLS, ids=[f"{f}-{r}" for f, r in CELLS])
def test_fault_matrix_every_message_exactly_once_or_dead_lettered(sandbox_factory, tmp_path, fault, route):
    sb = sandbox_factory(**MATRIX[fault])
    src, ids = corpus(tmp_path / "in.ndjson")
    # 5 retries bound the full-jitter backoff (at most 0.5+1+2+4+8 s per batch); a batch
    # still failing after them is dead-lettered, which the reconciliation covers.
    res = replay_cli(sb, src, tmp_path, "--max-retries", "5", "--timeout", "5", route=route)
    assert "Traceback" not in res.output, res.stderr
    assert res.code == 1, res.stderr  # 1: the corpus's invalid lines are always dead-lettered
    figures = reconcile(res, sb, tmp_path, ids, route)
    assert figures["retried"] > 0  # the faults were really hit
    codes = set(figures["status_counts"])
    expected = {"5xx-20pct": "503", "429-retry-after": "429", "dropped-20pct": "error", "everything": "500"}[fault]
    assert expected in codes, codes
    if route != "customerio":
        summary = httpx.get(sb.url + "/_sandbox/deliveries").json()["summary"]
        # Every duplicate the sandbox saw was a re-sent messageId, and dropped as one.
        assert summary["drop_reasons"].get("duplicate_message_id", 0) == summary["received"] - figures["delivered"]


def test_latency_beyond_the_timeout_dead_letters_then_the_dead_letters_replay_exactly_once(sandbox_factory, tmp_path):
    # The sandbox processes each request, then answers after 1.5 s: a 1 s
    # timeout sees no answer for messages that did arrive.  They go to the
    # dead-letter file; replaying it with a patient timeout re-sends the same
    # messageIds, which the service drops as duplicates: still exactly once.
    sb = sandbox_factory(latency=1.5)
    src, ids = corpus(tmp_path / "in.ndjson", n=25)
    res = replay_cli(sb, src, tmp_path, "--max-retries", "0", "--timeout", "1", "--concurrency", "4")
    assert_clean_failure(res, 4)
    assert "timed out" in res.stderr
    s = res.json["summary"]
    assert (s["accepted"], s["not_sent"]) == (0, 0) and s["read"] == s["failed"] + s["invalid"]
    dl = dead_letters(tmp_path)
    assert {d["messageId"] for d in dl if not d["_cdpio"]["reason"].startswith("invalid:")} == set(ids)
    assert all(c == 1 for c in delivered_counts(sb).values())

    again_dir = tmp_path / "again"
    again_dir.mkdir()
    only_valid = again_dir / "retry.ndjson"
    only_valid.write_text("".join(json.dumps(d) + "\n" for d in dl if not d["_cdpio"]["reason"].startswith("invalid:")))
    again = run_cli(
        "--sandbox-url",
        sb.url,
        "--json",
        "replay",
        str(only_valid),
        "--timeout",
        "5",
        "--rate",
        "0",
        "--dead-letter",
        str(again_dir / "dl.ndjson"),
        cwd=again_dir,
        timeout=120,
    )
    assert again.code == 0, again.stderr
    counts = delivered_counts(sb)
    assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}
    drops = httpx.get(sb.url + "/_sandbox/deliveries").json()["summary"]["drop_reasons"]
    assert drops.get("duplicate_message_id") == len(ids)


# --- interruption ---------------------------------------------------------------------------


def _kill_midway(cmd: list[str], ckpt: Path, cwd: Path, at_least: int) -> None:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            data = load_checkpoint(str(ckpt)) if ckpt.exists() else None
            if data and data["inputs"][0]["done"] >= at_least:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL, "the replay finished before it could be killed"


def test_sigkill_under_faults_then_resume_loses_nothing(sandbox_factory, tmp_path):
    sb = sandbox_factory(fail_rate=0.2, drop_connections=0.2, seed=21)
    # No invalid lines here: a dead-lettered line plus --checkpoint hits the
    # replay bug pinned by test_checkpoint_with_dead_letters_completes below.
    src, ids = corpus(tmp_path / "in.ndjson", n=400, invalid=False)
    ckpt = tmp_path / "replay.ckpt"
    cmd = [
        sys.executable,
        "-m",
        "cdpio_cli",
        "--sandbox-url",
        sb.url,
        "-q",
        "replay",
        str(src),
        "--skip-invalid",
        "--checkpoint",
        str(ckpt),
        "--dead-letter",
        str(tmp_path / "dl.ndjson"),
        "--rate",
        "40",
        "--batch-size",
        "5",
        "--concurrency",
        "3",
        "--max-retries",
        "20",
    ]
    _kill_midway(cmd, ckpt, tmp_path, at_least=80)
    state = load_checkpoint(str(ckpt))
    assert not state["complete"] and state["inputs"][0]["done"] < len(ids)
    before = delivered_counts(sb)
    assert 0 < len(before) < len(ids)

    res = run_cli(
        "--sandbox-url",
        sb.url,
        "--json",
        "replay",
        str(src),
        "--skip-invalid",
        "--checkpoint",
        str(ckpt),
        "--dead-letter",
        str(tmp_path / "dl.ndjson"),
        "--rate",
        "0",
        "--max-retries",
        "20",
        cwd=tmp_path,
        timeout=120,
    )
    assert res.code == 0, (res.code, res.stderr[-3000:])
    s = res.json["summary"]
    assert s["skipped_resumed"] == state["inputs"][0]["done"] and s["failed"] == 0
    counts = delivered_counts(sb)
    assert sorted(counts) == sorted(ids), "lost: %s" % sorted(set(ids) - set(counts))[:5]
    assert set(counts.values()) == {1}
    summary = httpx.get(sb.url + "/_sandbox/deliveries").json()["summary"]
    # The only duplicates are re-sent messageIds (in flight at the kill, or
    # after a dropped connection), and the service dropped exactly those.
    assert summary["received"] - len(ids) == summary["drop_reasons"].get("duplicate_message_id", 0)
    assert set(summary["drop_reasons"]) <= {"duplicate_message_id"}
    assert load_checkpoint(str(ckpt))["complete"]
    assert dead_letters(tmp_path) == []


def test_checkpoint_with_dead_letters_completes(sandbox_factory, tmp_path):
    sb = sandbox_factory(fail_rate=1.0, fail_status=400)
    src, ids = corpus(tmp_path / "in.ndjson", n=20)
    res = replay_cli(sb, src, tmp_path, "--checkpoint", str(tmp_path / "c.ckpt"))
    assert res.code == 1 and "internal error" not in res.stderr, res.stderr
    assert load_checkpoint(str(tmp_path / "c.ckpt"))["complete"]
