"""Issue 12, finding 5 (the files side): values the readers cannot carry, a
full disk or file-size limit while writing the dead-letter file or spooling
stdin, and a corrupted checkpoint are each one clear line with exit 2, a JSON
document under --json and a JUnit file under --junit, never an internal error."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cdpio_cli.replay import ReplayOptions, replay
from cdpio_cli.routes.registry import build_sender
from cdpio_cli.sandbox import defaults
from tests.cli_helpers import Result
from tests.reliability._support import assert_clean_failure, msgs, run_bounded, write_ndjson

HUGE = "1" * 10_000


def junit_failure_text(path: Path) -> str:
    # An input problem is a JUnit <error> (the check could not run), a failed check a <failure>.
    root = ET.parse(path).getroot()
    return " ".join((f.get("message") or "") + (f.text or "") for f in [*root.iter("failure"), *root.iter("error")])


VALUES = {
    "huge-int.json": ('[{"type": "track", "event": "A", "userId": "u1", "properties": {"n": %s}}]' % HUGE, "digits"),
    "huge-int.yaml": ("- {type: track, event: A, userId: u1, properties: {n: %s}}\n" % HUGE, "digits"),
    "surrogate.json": ('[{"type": "track", "event": "A", "userId": "\\ud800"}]', "surrogate"),
}


def test_values_the_readers_cannot_carry_are_input_errors_with_the_line(tmp_path):
    for name, (text, _) in VALUES.items():
        (tmp_path / name).write_text(text)
    junit = tmp_path / "report.xml"
    res = run_bounded("--json", "--junit", str(junit), "replay", "--dry-run", *VALUES, cwd=tmp_path)
    assert_clean_failure(res, 2)
    found = {c["file"]: c for c in res.json["checks"] if c["id"] == "replay.invalid"}
    for name, (_, words) in VALUES.items():
        assert found[name]["line"] == 1 and words in found[name]["message"], found.get(name)
    assert "digits" in junit_failure_text(junit) and "surrogate" in junit_failure_text(junit)


def run_limited(
    args: list[str], cwd: Path, limit: int, stdin: bytes | None = None, env: dict | None = None, timeout: float = 60
) -> Result:
    """The CLI with a file-size limit (RLIMIT_FSIZE): any write past `limit`
    bytes fails, as on a full disk.  SIGXFSZ is left at its default (kill):
    cdpio itself must turn the limit into an error."""
    import os

    def limit_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full_env = {k: v for k, v in os.environ.items() if k != "CDPIO_CONFIG"}
    full_env.update({"COLUMNS": "200", **(env or {})})
    proc = subprocess.run(
        [sys.executable, "-m", "cdpio_cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        preexec_fn=limit_files,
        env=full_env,
    )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def test_file_size_limit_while_writing_the_dead_letter_file(sandbox, tmp_path):
    dl = tmp_path / "dl.ndjson"
    earlier = b"".join(json.dumps({**m, "_cdpio": {"reason": "earlier"}}).encode() + b"\n" for m in msgs(400))
    dl.write_bytes(earlier)
    bad = [{"type": "track", "userId": f"bad-{i}", "properties": {"pad": "x" * 2000}} for i in range(5)]
    src = write_ndjson(tmp_path / "in.ndjson", msgs(20) + bad)
    junit = tmp_path / "report.xml"
    res = run_limited(
        [
            "--sandbox-url",
            sandbox.url,
            "--json",
            "--junit",
            str(junit),
            "replay",
            str(src),
            "--skip-invalid",
            "--rate",
            "0",
            "--dead-letter",
            str(dl),
        ],
        tmp_path,
        len(earlier) + 3000,
    )
    assert_clean_failure(res, 2)
    assert "cannot write the dead-letter file" in res.json["error"]["message"]
    assert "dead-letter" in junit_failure_text(junit)
    # The earlier run's lines are intact, and no half line was left behind.
    assert dl.read_bytes() == earlier or dl.read_bytes().startswith(earlier) and dl.read_bytes().endswith(b"\n")


def test_tmpdir_full_while_spooling_stdin(tmp_path):
    lines = b"".join(json.dumps(m).encode() + b"\n" for m in msgs(20_000))  # ~1.8 MB
    res = run_limited(
        ["--json", "replay", "--dry-run", "-"], tmp_path, 256 * 1024, stdin=lines, env={"TMPDIR": str(tmp_path)}
    )
    assert_clean_failure(res, 2)
    assert "stdin" in res.json["error"]["message"] and "TMPDIR" in res.json["error"]["message"]
    assert not list(tmp_path.glob("cdpio-replay-*")), "the spool was left behind"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: d.pop("seed"), id="missing-seed"),
        pytest.param(lambda d: d["inputs"][0].update(done="5"), id="done-is-a-string"),
        pytest.param(lambda d: d.update(dead_letter_bytes=-1), id="negative-offset"),
        pytest.param(lambda d: d.update(inputs={"path": "x"}), id="inputs-not-a-list"),
    ],
)
def test_a_corrupted_checkpoint_is_exit_2_with_the_fix(sandbox, tmp_path, damage):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(10))
    ckpt = tmp_path / "replay.ckpt"
    route = build_sender("segment", sandbox.endpoint("segment"), {"segment.write_key": defaults.WRITE_KEY})
    assert (
        replay(
            [str(src)], route, ReplayOptions(rate=None, checkpoint=str(ckpt), dead_letter=str(tmp_path / "dl"))
        ).exit_code()
        == 0
    )
    args = [
        "--sandbox-url",
        sandbox.url,
        "replay",
        str(src),
        "--rate",
        "0",
        "--checkpoint",
        str(ckpt),
        "--dead-letter",
        str(tmp_path / "dl"),
    ]
    data = json.loads(ckpt.read_text())
    damage(data)
    data["complete"] = False
    ckpt.write_text(json.dumps(data))
    junit = tmp_path / "report.xml"
    res = run_bounded("--junit", str(junit), "--json", *args, cwd=tmp_path)
    assert_clean_failure(res, 2)
    text = res.json["error"]["message"]
    assert str(ckpt) in text and "delete it" in text
    assert "checkpoint" in junit_failure_text(junit)
    errors = [line for line in res.stderr.splitlines() if line.startswith("cdpio: error: ")]
    assert len(errors) == 1 and str(ckpt) in errors[0]
