"""Issue 12, finding 7: a checkpoint is checked before it is trusted: its
offsets must lie within the input and the dead-letter file, and the input
must be the file it was written for.  A bad checkpoint is exit 2 with the fix,
and nothing is sent, skipped or padded because of it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from cdpio_cli.replay import ReplayOptions
from cdpio_cli.replay import replay as replay_api
from cdpio_cli.routes.registry import build_sender
from cdpio_cli.sandbox import defaults
from tests.reliability._support import assert_clean_failure, msgs, run_bounded, write_ndjson

N = 40


def deliveries(sb) -> int:
    return sum(1 for d in httpx.get(sb.url + "/_sandbox/deliveries").json()["deliveries"] if d["status"] == "delivered")


def replay(sb, tmp_path: Path, src: Path, *extra: str):
    return run_bounded(
        "--sandbox-url",
        sb.url,
        "--json",
        "replay",
        str(src),
        "--rate",
        "0",
        "--skip-invalid",
        "--checkpoint",
        str(tmp_path / "replay.ckpt"),
        "--dead-letter",
        str(tmp_path / "dl.ndjson"),
        *extra,
        cwd=tmp_path,
        timeout=60,
    )


def first_run(sb, tmp_path: Path, src: Path):
    """The run that writes the checkpoint (in-process: only the resume needs the CLI)."""
    route = build_sender("segment", sb.endpoint("segment"), {"segment.write_key": defaults.WRITE_KEY})
    return replay_api(
        [str(src)],
        route,
        ReplayOptions(
            rate=None,
            skip_invalid=True,
            checkpoint=str(tmp_path / "replay.ckpt"),
            dead_letter=str(tmp_path / "dl.ndjson"),
        ),
    )


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_an_inflated_done_count_never_marks_the_run_complete(sandbox, tmp_path):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(N) + [{"type": "track", "userId": "no-event"}])
    ckpt = tmp_path / "replay.ckpt"
    first = first_run(sandbox, tmp_path, src)
    assert first.exit_code() == 1 and deliveries(sandbox) == N
    for complete in (True, False):
        edit(
            ckpt,
            lambda d, complete=complete: (
                d["inputs"][0].update(done=999_999, records=999_999) or d.update(complete=complete)
            ),
        )
        res = replay(sandbox, tmp_path, src)
        assert_clean_failure(res, 2)
        message = res.json["error"]["message"]
        assert "999,999" in message and f"holds {N + 1}" in message and "delete it" in message
    assert deliveries(sandbox) == N


def test_an_inflated_dead_letter_offset_does_not_pad_the_file(sandbox, tmp_path):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(N) + [{"type": "track", "userId": "no-event"}])
    ckpt, dl = tmp_path / "replay.ckpt", tmp_path / "dl.ndjson"
    assert first_run(sandbox, tmp_path, src).exit_code() == 1
    size = dl.stat().st_size
    edit(ckpt, lambda d: d.update(dead_letter_bytes=10**9, complete=False))
    res = replay(sandbox, tmp_path, src)
    assert_clean_failure(res, 2)
    assert "dead-letter file" in res.json["error"]["message"]
    assert dl.stat().st_size == size and b"\0" not in dl.read_bytes()


def test_a_checkpoint_for_another_version_of_the_input_is_refused(sandbox, tmp_path):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(N))
    ckpt = tmp_path / "replay.ckpt"
    assert first_run(sandbox, tmp_path, src).exit_code() == 0
    edit(ckpt, lambda d: d["inputs"][0].update(done=10) or d.update(complete=False))
    write_ndjson(src, msgs(N, prefix="other-"))  # same name, same count, other messages
    res = replay(sandbox, tmp_path, src)
    assert_clean_failure(res, 2)
    assert "changed since the checkpoint" in res.json["error"]["message"]
    assert deliveries(sandbox) == N
