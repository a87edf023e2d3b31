"""`cdpio lint` reads fixtures.iter_rows (tuples for NDJSON lines): one and two
processes give the result of the Record path, with and without a plan."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from cdpio_cli import forking, lint, plan
from cdpio_cli.fixtures import iter_records, iter_rows

DATA = Path(__file__).parent / "data" / "lint"
EXAMPLES = Path(__file__).parent.parent / "examples"
NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)


def _corpus(tmp_path: Path, size: int) -> Path:
    lines: list[str] = []
    copy = 0
    while len(lines) < size:
        copy += 1
        for src in sorted(DATA.glob("*.ndjson")):
            lines += [line.replace("usr_2001", f"usr_{copy}") for line in src.read_text().splitlines()]
    corpus = tmp_path / "corpus.ndjson"
    corpus.write_text("\n".join(lines) + "\n")
    return corpus


def test_rows_lint_as_records(tmp_path, monkeypatch):
    from cdpio_cli.lint import parallel

    monkeypatch.setattr(forking, "forkable", lambda: True)  # whatever threads the test process runs

    corpus = _corpus(tmp_path, parallel.PARALLEL_AFTER + 6_000)
    files = [str(corpus), str(DATA / "clean_batch.json"), str(DATA / "clean.yaml"), str(corpus)]
    tracking_plan = plan.load_plan(str(EXAMPLES / "tracking-plan.yaml"))
    for kwargs in ({"max_per_rule": None}, {"plan": tracking_plan}):
        exact = lint.lint_records(iter_records(files), now=NOW, parallel=False, **kwargs)
        assert lint.lint_records(iter_rows(files), now=NOW, parallel=False, **kwargs) == exact
        assert lint.lint_records(iter_rows(files), now=NOW, **kwargs) == exact
    assert exact.invalid > 0 and exact.findings
