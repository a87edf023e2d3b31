"""Progress people and CI logs can read: a bar on a terminal that labels elapsed
and ETA, uses thousands separators and fits 80 columns; off a terminal, a
progress line every 10 s (CDPIO_PROGRESS_INTERVAL shortens it for tests) or
at each further 10%, and none for a quick run."""

from __future__ import annotations

import io
import json
import re

from rich.console import Console

from cdpio_cli.cli.output import ProgressBar, ProgressLines
from tests.cli_helpers import run_cli

LINE = re.compile(
    r"^replay: [\d,]+/60 \(\d+%\), [\d,]+ ev/s, \d+ failed, elapsed \d:\d\d:\d\d, "
    r"ETA (\d:\d\d:\d\d|-:--:--)$"
)


def _fixture(tmp_path, n: int) -> str:
    path = tmp_path / "events.ndjson"
    path.write_text(
        "".join(
            json.dumps({"type": "track", "userId": f"u{i}", "event": "Signed Up", "messageId": f"m{i}"}) + "\n"
            for i in range(n)
        )
    )
    return str(path)


def test_replay_off_a_terminal_prints_progress_lines(sandbox, tmp_path):
    # 60 single-message requests at 20/s: about three seconds of work.
    res = run_cli(
        "--sandbox-url",
        sandbox.url,
        "replay",
        _fixture(tmp_path, 60),
        "--rate",
        "20",
        "--batch-size",
        "1",
        "--concurrency",
        "1",
        cwd=tmp_path,
        env={"CDPIO_PROGRESS_INTERVAL": "0.4"},
    )
    assert res.code == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if "elapsed" in line]
    assert len(lines) >= 2, res.stderr
    assert all(LINE.match(line) for line in lines), lines
    done = [int(line.split()[1].split("/")[0].replace(",", "")) for line in lines]
    assert done == sorted(done) and done[0] < 60


def test_a_quick_replay_prints_no_progress_line(sandbox, tmp_path):
    res = run_cli("--sandbox-url", sandbox.url, "replay", _fixture(tmp_path, 60), cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert "replay: 60 read" in res.stderr  # the summary, not progress
    assert not [line for line in res.stderr.splitlines() if "elapsed" in line], res.stderr


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_progress_lines_every_interval_or_ten_percent_once_the_work_is_long():
    clock, out = _Clock(), []
    lines = ProgressLines("replay", write=out.append, interval=10.0, now=clock)
    for t, done in [(1, 20_000), (2, 40_000), (9.9, 60_000)]:
        clock.t = t
        lines.update(done, 1_000_000, rate=1234.5)
    assert out == []  # under 10 s: nothing, whatever the percentage
    clock.t = 10.0
    lines.update(100_000, 1_000_000, rate=10_000.0, failed=3, retried=2)
    assert out == [("replay: 100,000/1,000,000 (10%), 10,000 ev/s, 3 failed, 2 retried, elapsed 0:00:10, ETA 0:01:30")]
    clock.t = 11.0
    lines.update(150_000, 1_000_000)  # same 10% step, 1 s later: nothing
    clock.t = 12.0
    lines.update(200_000, 1_000_000)  # the next 10% step
    clock.t = 25.0
    lines.update(210_000, None)  # 13 s later; total unknown
    assert out[1:] == [
        "replay: 200,000/1,000,000 (20%), 0 failed, elapsed 0:00:12, ETA 0:00:48",
        "replay: 210,000, 0 failed, elapsed 0:00:25",
    ]


def _bar_text(bar: ProgressBar) -> str:
    rendered = bar.console.render_lines(bar.progress.get_renderable(), bar.console.options, pad=False)
    texts = ["".join(segment.text for segment in line) for line in rendered]
    assert len(texts) == 1, texts
    return texts[0].rstrip()


def test_progress_bar_labels_elapsed_and_eta_with_separators_in_80_columns():
    console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system=None)
    clock = _Clock()
    bar = ProgressBar(console, "replay", now=clock)
    try:
        clock.t = 100.0
        bar.update(50_000, 100_000, rate=1_234.6, failed=3)
        text = _bar_text(bar)
        assert len(text) <= 80, text
        assert text.startswith("replay ━")
        assert text.endswith(" 50,000/100,000 1,235 ev/s 3 failed elapsed 0:01:40 ETA 0:01:40"), text
        # The widest counts still fit: the rate gives way, the count and the times stay.
        bar.update(123_456_789, 987_654_321, rate=1_234_567.0, failed=12_345_678)
        text = _bar_text(bar)
        assert len(text) <= 80 and "━" in text, text
        assert "123,456,789/987,654,321" in text and "elapsed 0:01:40 ETA" in text, text
    finally:
        bar.close()


def test_lint_off_a_terminal_prints_the_count_read_without_failures(tmp_path):
    # Lint does not know the total in advance: the count so far and the time, no
    # "failed" (lint fails nothing) and no ETA; --json on stdout is untouched.
    res = run_cli("--json", "lint", _fixture(tmp_path, 30_000), cwd=tmp_path, env={"CDPIO_PROGRESS_INTERVAL": "0.001"})
    assert res.json["summary"]["messages"] == 30_000, res.stderr
    lines = [line for line in res.stderr.splitlines() if "elapsed" in line]
    assert lines and all(re.match(r"^lint messages: [\d,]+, elapsed \d:\d\d:\d\d$", line) for line in lines), lines
    done = [int(line.split()[2].rstrip(",").replace(",", "")) for line in lines]
    assert done == sorted(done) and done[-1] == 30_000, lines
    quiet = run_cli(
        "--json", "-q", "lint", _fixture(tmp_path, 30_000), cwd=tmp_path, env={"CDPIO_PROGRESS_INTERVAL": "0.001"}
    )
    assert not [line for line in quiet.stderr.splitlines() if "elapsed" in line], quiet.stderr


def test_a_bar_without_auto_refresh_runs_no_thread_so_lint_may_still_fork():
    import threading

    before = threading.active_count()
    bar = ProgressBar(Console(file=io.StringIO(), width=80, force_terminal=True), "lint messages", auto_refresh=False)
    try:
        bar.update(10_000, None, failed=None)
        assert threading.active_count() == before
        assert "10,000" in bar.console.file.getvalue()  # drawn by the update itself
    finally:
        bar.close()
