"""cdpio_cli.fixtures: every format, real line numbers, and bad input that never tracebacks."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from cdpio_cli.errors import InputError
from cdpio_cli.fixtures import MAX_LINE_BYTES, Record, expand_paths, iter_records

DATA = Path(__file__).parent / "data" / "lint"


def read_records(path: str) -> list[Record]:
    return list(iter_records([path]))


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def test_ndjson_lines_blank_lines_and_bad_lines(tmp_path):
    path = write(
        tmp_path,
        "e.ndjson",
        '{"type":"track","event":"A","userId":"u"}\n\n'
        '{"type": "track" "event": "B"}\n{"type":"identify","userId":"u"}\n',
    )
    records = read_records(path)
    assert [(r.line, r.error is None) for r in records] == [(1, True), (3, False), (4, True)]
    assert "invalid JSON" in records[1].error and "column 18" in records[1].error
    assert records[1].message is None and records[1].file == path


def test_json_array_elements_carry_their_own_lines(tmp_path):
    path = write(tmp_path, "a.json", '[\n  {"type": "identify",\n   "userId": "u1"},\n\n  {"type": "track"}\n]\n')
    assert [(r.line, r.message["type"]) for r in read_records(path)] == [(2, "identify"), (5, "track")]


def test_json_single_object(tmp_path):
    path = write(tmp_path, "one.json", '\n\n{"type": "page", "userId": "u"}')
    [record] = read_records(path)
    assert record.line == 3 and record.message["type"] == "page"


def test_segment_batch_object_merges_context_and_keeps_item_lines():
    records = read_records(str(DATA / "clean_batch.json"))
    assert len(records) == 9
    lines = [r.line for r in records]
    assert lines == sorted(lines) and len(set(lines)) == 9
    # the batch-level context reaches every item; an item's own context keys win
    for r in records:
        assert r.message["context"]["library"]["name"] == "analytics-python"
    install = next(r for r in records if r.message.get("event") == "Application Installed")
    assert install.message["context"]["device"]["token"] == "ff15bc0c2b5a4e9f"
    text = (DATA / "clean_batch.json").read_text().splitlines()
    assert text[install.line - 1].strip() == "{"


def test_yaml_list_multidoc_lines_and_timestamps_stay_strings(tmp_path):
    path = write(
        tmp_path,
        "m.yaml",
        "- type: track\n  userId: u\n  event: Signed Up\n"
        "  timestamp: 2026-01-10T12:00:00Z\n- type: identify\n  userId: u\n"
        "---\ntype: page\nuserId: u\n",
    )
    records = read_records(path)
    assert [r.line for r in records] == [1, 5, 8]
    assert records[0].message["timestamp"] == "2026-01-10T12:00:00Z"


def test_yaml_clean_file_matches_ndjson():
    from_yaml = [r.message for r in read_records(str(DATA / "clean.yaml"))]
    from_ndjson = [r.message for r in read_records(str(DATA / "clean.ndjson"))][: len(from_yaml)]
    assert from_yaml == from_ndjson


@pytest.mark.parametrize("name", ["e.ndjson.gz", "e.json.gz", "e.data"])
def test_gzip_by_suffix_or_magic(tmp_path, name):
    body = b'{"type":"track","event":"A","userId":"u"}\n{"type":"identify","userId":"u"}\n'
    if name.endswith(".json.gz"):
        body = b"[" + body.replace(b"}\n{", b"},\n{").rstrip() + b"]"
    path = write(tmp_path, name, gzip.compress(body))
    records = read_records(path)
    assert [r.message["type"] for r in records] == ["track", "identify"]
    assert all(r.error is None for r in records)


def test_truncated_gzip_is_a_record_error(tmp_path):
    data = gzip.compress(b'{"type":"track","event":"A","userId":"u"}\n' * 2000)
    path = write(tmp_path, "t.ndjson.gz", data[: len(data) // 2])
    records = read_records(path)
    assert records[-1].error and "gzip" in records[-1].error
    assert all(r.error is None for r in records[:-1])


def test_truncated_gzip_ends_its_file_at_the_line_it_broke_and_the_next_file_is_read(tmp_path):
    """iter_ndjson reports the broken stream itself: one error record at the next
    line number, no "file is empty" record after it, and the following file read."""
    data = gzip.compress(b'{"type":"track","event":"A","userId":"u"}\n' * 2000)
    broken = write(tmp_path, "t.ndjson.gz", data[: len(data) // 2])
    good = write(tmp_path, "g.ndjson", b'{"type":"identify","userId":"u"}\n')
    records = list(iter_records([broken, good]))
    errors = [r for r in records if r.error is not None]
    assert len(errors) == 1 and errors[0].file == broken and "gzip" in errors[0].error
    read = [r for r in records if r.file == broken and r.error is None]
    assert [r.line for r in read] == list(range(1, len(read) + 1))
    assert errors[0].line == len(read) + 1
    assert records[-1].file == good and records[-1].message == {"type": "identify", "userId": "u"}
    # Cut inside the header: nothing decompresses, one error at line 1.
    records = list(iter_records([write(tmp_path, "h.ndjson.gz", data[:12])]))
    assert [(r.line, r.error is not None) for r in records] == [(1, True)]


def test_stdin_ndjson_and_json():
    records = list(iter_records(["-"], stdin=io.StringIO('{"type":"track","event":"A","userId":"u"}\n[1]\n')))
    assert [(r.file, r.line) for r in records] == [("-", 1), ("-", 2)]
    records = list(iter_records(["-"], stdin=io.StringIO('[{"a": 1},\n {"b": 2}]')))
    assert [r.line for r in records] == [1, 2]


def test_unknown_extension_sniffed_or_refused(tmp_path):
    assert read_records(write(tmp_path, "x.txt", '{"type":"track"}\n'))[0].message == {"type": "track"}
    with pytest.raises(InputError, match="cannot tell the format"):
        read_records(write(tmp_path, "x.csv", "type,userId\ntrack,u\n"))


@pytest.mark.parametrize(
    "name,content,expect",
    [
        ("empty.ndjson", b"", "file is empty"),
        ("blank.json", b"  \n\n", "file is empty"),
        ("empty.yaml", b"# nothing\n", "file is empty"),
        ("bin.ndjson", bytes(range(256)) * 4, "binary file"),
        ("utf.ndjson", b'{"a": "\xff\xfe"}\n', "invalid UTF-8"),
        ("utf.json", b'[\n{"a": "\xff"}]', "invalid UTF-8"),
        ("trunc.json", b'[{"type": "track"},\n {"type": ', "truncated"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("deep.ndjson", b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}\n", "nested too deeply"),
        ("bad.yaml", b"- type: track\n  userId: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_input_is_one_clear_record_error(tmp_path, name, content, expect):
    records = read_records(write(tmp_path, name, content))
    errors = [r for r in records if r.error]
    assert errors, records
    assert expect in errors[-1].error
    assert errors[-1].line >= 1 and "\n" not in errors[-1].error


def test_truncated_json_keeps_the_elements_before_the_break(tmp_path):
    records = read_records(write(tmp_path, "t.json", '[{"type": "track"},\n {"type": '))
    assert records[0].message == {"type": "track"} and records[1].line == 2


def test_huge_line_is_skipped_without_reading_it_whole(tmp_path):
    big = json.dumps({"type": "track", "userId": "u", "event": "E", "properties": {"x": "y" * (MAX_LINE_BYTES * 3)}})
    path = write(tmp_path, "h.ndjson", big + "\n" + '{"type":"identify","userId":"u"}\n')
    records = read_records(path)
    assert records[0].error and "over" in records[0].error and records[0].line == 1
    assert records[1].line == 2 and records[1].message["type"] == "identify"


def test_yaml_alias_bomb_is_refused(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=False):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    with pytest.raises(InputError, match="alias bomb"):
        read_records(path)


def test_yaml_excessive_nesting_is_refused(tmp_path):
    path = write(tmp_path, "deep.yaml", "a: " + "[" * 300 + "]" * 300 + "\n")
    with pytest.raises(InputError, match="nested"):
        read_records(path)


def test_expand_paths_globs_and_errors(tmp_path):
    (tmp_path / "sub").mkdir()
    a = write(tmp_path, "a.ndjson", "{}\n")
    b = write(tmp_path / "sub", "b.ndjson", "{}\n")
    assert expand_paths([str(tmp_path / "**" / "*.ndjson"), "-", a]) == [a, b, "-"]
    with pytest.raises(InputError, match="matches no files"):
        expand_paths([str(tmp_path / "*.yaml")])
    with pytest.raises(InputError, match="no such file"):
        expand_paths([str(tmp_path / "missing.json")])
    with pytest.raises(InputError, match="is a directory"):
        expand_paths([str(tmp_path / "sub")])


def test_ndjson_reads_lazily(tmp_path):
    # A generator: the first record arrives before the rest of the file is parsed.
    path = write(tmp_path, "lazy.ndjson", '{"n": 1}\n' + "not json\n" * 10)
    it = iter_records([path])
    assert next(it).message == {"n": 1}


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_part_of_an_ndjson_file_read_after_skipping_has_the_whole_files_records(gzipped):
    """skip_lines + iter_ndjson(lines=...) (the two-core pre-pass's worker)
    number every line as one read of the whole file does: blank, broken,
    batch and overlong lines count once, and the last line has no newline."""
    from cdpio_cli.fixtures.ndjson import iter_ndjson, iter_ndjson_rows, skip_lines
    from cdpio_cli.fixtures.reading import decompressed

    parts = [b'{"a": 1}', b"", b"  ", b'{"b": ', b'{"batch": [{"c": 1}, {"c": 2}]}', b"[1]"]
    parts += [b'"' + b"x" * (MAX_LINE_BYTES + 10) + b'"', b'{"d": 2}', b"\r", b'{"e": 3}']
    data = b"\n".join(parts)  # no newline at the end
    if gzipped:
        data = gzip.compress(data)
    whole = list(iter_ndjson(decompressed(io.BytesIO(data)), "f"))
    n = len(parts)
    for skip in range(n + 2):
        for count in (1, 3, n):
            stream = decompressed(io.BytesIO(data))
            assert skip_lines(stream, skip) == min(skip, n)
            got = list(iter_ndjson(stream, "f", lines=(skip + 1, count)))
            assert got == [r for r in whole if skip < r.line <= skip + count]
            stream = decompressed(io.BytesIO(data))  # the worker reads its blocks as rows
            skip_lines(stream, skip)
            rows = iter_ndjson_rows(stream, "f", lines=(skip + 1, count))
            assert [r if isinstance(r, Record) else Record(r[0], r[1], r[2], None, r[3]) for r in rows] == got
