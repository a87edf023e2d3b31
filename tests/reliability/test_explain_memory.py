"""`cdpio explain` memory stays flat in the number of records (issue 12,
finding 10): its one check per record is kept on disk, the JSON document's
`checks` array is written as it is read back, and the human table is printed
in chunks.  Before, every record's check stayed in memory: about 650 MB for
100,000 messages under `--json`.

Peak RSS (ru_maxrss) of the CLI process is measured in a wrapper process,
with stdout going to a file so the test itself never holds the document.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cdpio_cli.errors import FailureKind
from tests.cli_helpers import clean_env

# The wrapper: runs the CLI with stdout into a file, prints its exit code and peak RSS.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "with open(sys.argv[1], 'wb') as out:\n"
    "    p = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL)\n"
    "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)

GROWTH_LIMIT_MB = 40  # generous: a check per record in memory grew by over 500 MB


def _write_records(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            if i % 3:
                msg = {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"u{i}",
                    "messageId": f"m{i}",
                    "properties": {"i": i, "total": 9.5},
                }
            else:  # dropped by the destination: a page without properties.url
                msg = {"type": "page", "userId": f"u{i}", "properties": {}}
            fh.write(json.dumps(msg) + "\n")
    return path


def _explain(tmp_path: Path, n: int, *flags: str) -> tuple[float, Path]:
    """Peak RSS in MB of `cdpio FLAGS explain` over n records, and its stdout file."""
    records = _write_records(tmp_path / f"in-{n}.ndjson", n)
    out = tmp_path / f"out-{n}.txt"
    env = clean_env(COLUMNS="160", PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(out), sys.executable, "-m", "cdpio_cli", *flags, "explain", str(records)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    code, maxrss_kb = proc.stdout.split()
    assert code == "0", f"explain exited {code}: {proc.stderr}"
    return int(maxrss_kb) / 1024, out


def _summary(out: Path) -> dict:
    """The document's summary (its last key), read from the file's end."""
    with out.open("rb") as fh:
        assert fh.read(1) == b"{"
        fh.seek(max(0, out.stat().st_size - 8192))
        tail = fh.read().decode("utf-8")
    return json.loads(tail[tail.rindex('\n  "summary": ') + len('\n  "summary": ') :].rstrip()[:-1])


@pytest.mark.slow  # a few minutes on 2 shared cores; .ci/run runs it with -m slow
@pytest.mark.parametrize(
    "flags,small,large",
    [
        (("--json", "--quiet"), 10_000, 100_000),
        (("--quiet", "--junit", "report.xml"), 5_000, 50_000),
        ((), 2_000, 20_000),  # the human table (slow to print: fewer records)
    ],
    ids=["json", "junit", "table"],
)
def test_explain_memory_is_flat_in_the_number_of_records(tmp_path, flags, small, large):
    small_mb, small_out = _explain(tmp_path, small, *flags)
    large_mb, large_out = _explain(tmp_path, large, *flags)
    assert large_mb - small_mb < GROWTH_LIMIT_MB, (
        f"peak RSS {small_mb:.0f} MB for {small:,} records, {large_mb:.0f} MB for {large:,}"
    )
    if "--junit" in flags:
        with (tmp_path / "report.xml").open(encoding="utf-8") as fh:
            assert sum(line.lstrip().startswith("<testcase ") for line in fh) == large
    if "--json" in flags:
        summary = _summary(large_out)
        assert summary["messages"] == large and summary["counts"]["passed"] == summary["sent"]
        assert summary["dropped_by"]["destination"] == (large + 2) // 3
        # Every record is in the document, the last one included.
        with large_out.open(encoding="utf-8") as fh:
            lines = [line.strip() for line in fh if '"line": ' in line]
        assert len(lines) == large and lines[-1] == f'"line": {large},'


def test_a_spooled_report_renders_the_same_bytes_as_an_in_memory_one(tmp_path):
    """--json and --junit of a report whose checks are on disk are exactly
    those of the same checks in a list (the schema users parse is unchanged)."""
    from cdpio_cli import results

    checks = [
        results.Check(
            id="trackEvent",
            route="customerio",
            tier=results.Tier.MAPPING,
            status=results.Status.PASSED,
            message='track "Ünïcode ✓" -> ok',
            file="a.ndjson",
            line=1,
            details={"operations": [{"n": 10**30, "x": [1.5, None]}]},
        ),
        results.Check(
            id="segment-ingest",
            route="customerio",
            tier=results.Tier.MAPPING,
            status=results.Status.WARNING,
            message="dropped\n  plan: x",
            file="a.ndjson",
            line=2,
            hint="add a userId",
        ),
        results.Check(
            id="unreadable",
            route="customerio",
            tier=results.Tier.MAPPING,
            status=results.Status.FAILED,
            message="not read: bad JSON <&>",
            file="a.ndjson",
            line=3,
            failure=FailureKind.USAGE,
        ),
        results.Check(
            id="trackEvent",
            route="customerio",
            tier=results.Tier.MAPPING,
            status=results.Status.SKIPPED,
            message="ctrl \x01 char",
            duration_ms=12.34,
        ),
    ]
    spool = results.CheckSpool()
    spool.extend(checks)
    spooled = results.Report(command="explain", checks=spool, summary={"messages": 4})
    listed = results.Report(command="explain", run_id=spooled.run_id, checks=checks, summary={"messages": 4})
    assert results.render_json(spooled) == results.render_json(listed)
    assert results.render_json(spooled).count('"id": ') == 4
    assert spooled.exit_code() == listed.exit_code() == 2 and spooled.counts() == listed.counts()
    results.render_junit(spooled, str(tmp_path / "a.xml"))
    results.render_junit(listed, str(tmp_path / "b.xml"))
    assert (tmp_path / "a.xml").read_bytes() == (tmp_path / "b.xml").read_bytes()
    assert (tmp_path / "a.xml").read_text(encoding="utf-8").count("<testcase ") == 4
    # ... and those of ElementTree writing the whole tree at once (as before streaming).
    import xml.etree.ElementTree as ET

    suites = results._junit_skeleton(listed)
    suites[0].extend(results._junit_cases(listed))
    results._xml_safe(suites)
    ET.indent(suites)
    ET.ElementTree(suites).write(tmp_path / "c.xml", encoding="utf-8", xml_declaration=True)
    assert (tmp_path / "a.xml").read_bytes() == (tmp_path / "c.xml").read_bytes()
