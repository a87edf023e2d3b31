"""Issue 12, finding 8: the spool stays on the order of the input size,
stdin is bounded (binary data is refused before it fills $TMPDIR), and
SIGTERM stops a replay as Ctrl-C does: report, resume hint, JUnit file,
spool removed, exit 130, and the resume loses and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import httpx

from cdpio_cli.replay import load_checkpoint
from tests.cli_helpers import run_cli
from tests.reliability._support import assert_clean_failure, msgs, write_ndjson
from tests.reliability.test_replay_file_errors import run_limited


def test_invalid_lines_do_not_blow_up_the_spool(tmp_path):
    src = tmp_path / "empty-objects.ndjson"
    src.write_text("{}\n" * 20_000)  # 60 KB, every line invalid
    limit = 1024 * 1024  # files written: at most ~17x the input
    res = run_limited(["--json", "replay", "--dry-run", str(src)], tmp_path, limit, env={"TMPDIR": str(tmp_path)})
    assert_clean_failure(res, 2)
    assert res.json["checks"][-1]["message"].startswith("20,000 of 20,000 message(s) are invalid")


def test_binary_stdin_is_refused_before_it_fills_tmpdir(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "CDPIO_CONFIG"}, "TMPDIR": str(tmp_path)}
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run(
            [sys.executable, "-m", "cdpio_cli", "--json", "replay", "--dry-run", "-"],
            stdin=zero,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=env,
            preexec_fn=_limit_files(64 * 1024 * 1024),
        )
    assert proc.returncode == 2, proc.stderr
    assert "binary" in json.loads(proc.stdout)["error"]["message"]
    assert not list(tmp_path.glob("cdpio-replay-*"))


def test_endless_stdin_stops_at_the_documented_bound(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "CDPIO_CONFIG"},
        "TMPDIR": str(tmp_path),
        "CDPIO_REPLAY_STDIN_MAX_BYTES": str(1024 * 1024),
    }
    out_path, err_path = tmp_path / "out.json", tmp_path / "err.txt"
    with open(out_path, "wb") as out_fh, open(err_path, "wb") as err_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cdpio_cli", "--json", "replay", "--dry-run", "-"],
            stdin=subprocess.PIPE,
            stdout=out_fh,
            stderr=err_fh,
            cwd=tmp_path,
            env=env,
        )
        line = (json.dumps(msgs(1)[0]) + "\n").encode() * 1000

        def feed():
            try:
                while proc.poll() is None:
                    proc.stdin.write(line)
            except (BrokenPipeError, ValueError, OSError):
                pass

        threading.Thread(target=feed, daemon=True).start()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("an endless stdin was spooled without a bound") from None
    out, err = out_path.read_text(), err_path.read_text()
    assert proc.returncode == 2, err
    assert "more than 1,048,576 bytes" in json.loads(out)["error"]["message"]
    assert not list(tmp_path.glob("cdpio-replay-*"))


def _limit_files(limit: int):
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_sigterm_reports_like_ctrl_c_removes_the_spool_and_resumes_exactly_once(sandbox, tmp_path):
    n = 300
    src = write_ndjson(tmp_path / "in.ndjson", msgs(n))
    ckpt, junit, spool_root = tmp_path / "replay.ckpt", tmp_path / "report.xml", tmp_path / "tmp"
    spool_root.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "CDPIO_CONFIG"}, "TMPDIR": str(spool_root), "COLUMNS": "200"}
    cmd = [
        sys.executable,
        "-m",
        "cdpio_cli",
        "--sandbox-url",
        sandbox.url,
        "--json",
        "--junit",
        str(junit),
        "replay",
        str(src),
        "--checkpoint",
        str(ckpt),
        "--rate",
        "50",
        "--batch-size",
        "5",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = load_checkpoint(str(ckpt)) if ckpt.exists() else None
        if data and data["inputs"][0]["done"] >= 30:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    stop = [c for c in doc["checks"] if c["id"] == "replay.interrupted"]
    assert len(stop) == 1 and f"--checkpoint {ckpt}" in stop[0]["hint"]
    assert any(f.get("type", "").endswith(".interrupted") for f in ET.parse(junit).getroot().iter("failure"))
    assert not list(spool_root.iterdir()), "the spool was left behind"
    resumed = run_cli(
        "--sandbox-url", sandbox.url, "replay", str(src), "--checkpoint", str(ckpt), "--rate", "0", cwd=tmp_path
    )
    assert resumed.code == 0, resumed.stderr
    ids = [
        d["messageId"]
        for d in httpx.get(sandbox.url + "/_sandbox/deliveries").json()["deliveries"]
        if d["status"] == "delivered"
    ]
    assert len(ids) == n and len(set(ids)) == n
