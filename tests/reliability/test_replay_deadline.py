"""replay's per-batch bound (docs/security.md, docs/replay.md): a batch, its
retries and waits included, ends within `(R + 2) × T + R × 30` s, and a
`Retry-After` that would outlast that bound is not waited for at all.

Before the bound, a 429 with `Retry-After` of a week was waited for 60 s per
retry: five minutes per batch with the default five retries.
"""

from __future__ import annotations

import json

from tests.cli_helpers import write_config
from tests.reliability._support import assert_clean_failure, msgs, run_bounded, write_ndjson
from tests.reliability.hostile import WEEK, HostileServer


def test_replay_does_not_wait_a_weeks_retry_after(tmp_path):
    write_config(tmp_path, "version: 1\n")
    write_ndjson(tmp_path / "in.ndjson", msgs(250))
    with HostileServer("retry_after", seconds=WEEK) as server:
        # Default retries (5) and timeout (10 s): the batch bound is 220 s.
        res = run_bounded(
            "--sandbox-url",
            server.url(),
            "--json",
            "replay",
            "in.ndjson",
            "--dead-letter",
            "dl.ndjson",
            cwd=tmp_path,
            timeout=150,
        )
        asked = len(server.seen)
    # A 429 after the retries is a rejection: exit 1 (docs/replay.md), every
    # message in the dead-letter file, and the reason names the wait refused.
    assert_clean_failure(res, 1)
    doc = json.loads(res.stdout)
    summary = doc["summary"]
    assert summary["accepted"] == 0 and summary["dead_lettered"] == 250, summary
    assert summary["retried"] == 0 and summary["status_counts"] == {"429": 3}, summary
    failed = [c for c in doc["checks"] if c["id"] == "replay.failed"]
    assert failed and all(f"retry after {WEEK} s; the batch's 220 s deadline" in c["message"] for c in failed), failed
    assert asked >= 3
    lines = (tmp_path / "dl.ndjson").read_text().splitlines()
    assert len(lines) == 250 and "retry after" in json.loads(lines[0])["_cdpio"]["reason"]
