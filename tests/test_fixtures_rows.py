"""fixtures.iter_rows: the records of iter_records, with each message parsed from
an NDJSON line of its own as a (file, line, message, raw) tuple."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from cdpio_cli.fixtures import Record, iter_records, iter_rows

DATA = Path(__file__).parent / "data" / "lint"


def _as_records(items: list) -> list[Record]:
    return [Record(item[0], item[1], item[2], None, item[3]) if isinstance(item, tuple) else item for item in items]


def test_rows_are_the_records_of_every_format(tmp_path):
    mixed = (
        b"\xef\xbb\xbf"
        + b'{"type":"track","userId":"u","event":"A"}\r\n\n   \n'
        + b'{"type": "track" "event": "B"}\n'
        + b'{"batch":[{"type":"track","userId":"u","event":"C"},3],"context":{"ip":"1.2.3.4"}}\n'
        + b"[1, 2]\nnull\n"
        + b'{"type":"identify","userId":"v"}'
    )
    (tmp_path / "mixed.ndjson").write_bytes(mixed)
    (tmp_path / "mixed.ndjson.gz").write_bytes(gzip.compress(mixed))
    data = gzip.compress(mixed * 200)
    (tmp_path / "cut.ndjson.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.ndjson").write_bytes(b"\n")
    files = [str(p) for p in sorted(DATA.iterdir())] + [
        str(tmp_path / name) for name in ("mixed.ndjson", "mixed.ndjson.gz", "cut.ndjson.gz", "empty.ndjson")
    ]
    rows = list(iter_rows(files))
    assert _as_records(rows) == list(iter_records(files))
    # Every message of a line of its own is a tuple; batch items, errors and
    # whole-document formats stay Records.
    kinds = {(type(item) is tuple, item[0] if type(item) is tuple else item.file) for item in rows}
    assert (True, str(tmp_path / "mixed.ndjson")) in kinds and (False, str(DATA / "clean.yaml")) in kinds
    assert all(item.raw is None for item in rows if isinstance(item, Record))
    assert [row[1] for row in rows if type(row) is tuple and row[0] == str(tmp_path / "mixed.ndjson")] == [1, 6, 7, 8]


def test_rows_from_stdin():
    text = '{"type":"track","userId":"u","event":"A"}\n\n{"bad"\n'
    rows = list(iter_rows(["-"], stdin=io.StringIO(text)))
    assert rows[0] == ("-", 1, {"type": "track", "userId": "u", "event": "A"}, text.split("\n")[0].encode() + b"\n")
    assert _as_records(rows) == list(iter_records(["-"], stdin=io.StringIO(text)))
