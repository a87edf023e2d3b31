"""Streaming readers for fixture files: each message carries its file and line.

Formats: `.json` (one message, an array, or a Segment batch object), `.jsonl`
/ `.ndjson` (one message per line), `.yaml` / `.yml` (a list, one message, or
multi-document), any of them gzipped, and `-` for NDJSON (or JSON) on stdin.
Unknown extensions are sniffed.

Errors are reported at the narrowest place that is honest: a bad line is one
Record with `error` set and every other line is still read; a file that cannot
be opened raises InputError.  NDJSON is read line by line with a line-length
cap, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import codecs
import glob
import gzip
import io
import json
import math
import os
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from cdpio_cli.errors import InputError

SUPPORTED = ".json, .jsonl, .ndjson, .yaml, .yml (optionally .gz), or - for NDJSON on stdin"

# A Segment message is at most 32 KB; a line far beyond that is not a message
# (and must not be read into memory whole).
MAX_LINE_BYTES = 1024 * 1024
# YAML: aliases may share sub-trees; refuse documents that expand past this
# many nodes ("billion laughs") or nest deeper than any real message.
MAX_YAML_NODES = 1_000_000
MAX_YAML_DEPTH = 200

# Whole-document formats: a JSON array streams element by element, but one
# JSON value (an element, or a document that is not an array) and a YAML
# file are held whole, so they are capped (NDJSON streams whatever the size).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_YAML_BYTES = 8 * 1024 * 1024
JSON_CHUNK = 1024 * 1024
# Digits in a JSON/YAML number (Python's own limit for int() is 4,300).
MAX_NUMBER_DIGITS = 1000

_GZIP_MAGIC = b"\x1f\x8b"
_GLOB_CHARS = set("*?[")
_JSON_EXT = {".json"}
_NDJSON_EXT = {".jsonl", ".ndjson"}
_YAML_EXT = {".yaml", ".yml"}


@dataclass(slots=True)
class Record:
    """One message read from a fixture file, or why it could not be read."""

    file: str  # display path, "-" for stdin
    line: int  # 1-based line where the message starts
    message: Any  # parsed value (normally a dict); None when error is set
    error: str | None = None
    # The NDJSON line the message was parsed from (newline included), when it
    # holds exactly that message: replay sends it as is when nothing changes it.
    raw: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def location(self) -> str:
        return f"{self.file}:{self.line}"


# --------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------


def expand_paths(patterns: list[str]) -> list[str]:
    """Expand globs (`**` included) into readable files, in a stable order.

    `-` (stdin) is kept as is.  Anything that names no readable file raises
    InputError naming the path and the fix.
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        if path not in seen:
            seen.add(path)
            out.append(path)

    for pattern in patterns:
        if pattern == "-":
            add(pattern)
            continue
        if _GLOB_CHARS & set(pattern):
            matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not matches:
                raise InputError(
                    f"{pattern}: the pattern matches no files",
                    hint="check the pattern; quote it so the shell does not expand it",
                )
            for path in matches:
                _check_readable(path)
                add(path)
            continue
        _check_readable(pattern)
        add(pattern)
    return out


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file", hint="check the path")
    if os.path.isdir(path):
        raise InputError(
            f"{path}: is a directory", hint=f"pass files, or a glob such as '{path.rstrip('/')}/**/*.ndjson'"
        )
    if not os.path.isfile(path):
        raise InputError(f"{path}: not a regular file", hint="pass a file, or - for stdin")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror}", hint="check the file's permissions") from None


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def iter_records(paths: list[str], stdin: IO | None = None) -> Iterator[Record]:
    """Yield every message of every file in order, each with file and line."""
    for path in paths:
        yield from _iter_file(path, stdin)


def read_records(path: str) -> list[Record]:
    """All records of one file (convenience for tests and small files)."""
    return list(_iter_file(path, None))


def _iter_file(path: str, stdin: IO | None) -> Iterator[Record]:
    if path == "-":
        stream = _binary_stdin(stdin)
        yield from _iter_stream(stream, "-", fmt=None)
        return
    try:
        raw = open(path, "rb")
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory", hint="pass files, or a glob") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror}", hint="check the path and its permissions") from None
    with raw:
        name = path
        if name.lower().endswith(".gz"):
            name = name[:-3]
        yield from _iter_stream(raw, path, fmt=_format_of(name))


def detect_format(path: str) -> str | None:
    """ "json", "ndjson" or "yaml" for a fixture file (by name, else by its first
    bytes, gzip or not); None when it cannot be read."""
    name = path[:-3] if path.lower().endswith(".gz") else path
    fmt = _format_of(name)
    if fmt is not None:
        return fmt
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
            if head[:2] == _GZIP_MAGIC:
                fh.seek(0)
                with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                    head = gz.read(8192)
    except (OSError, EOFError, zlib.error):
        return None
    return _sniff(head, path)


def _format_of(name: str) -> str | None:
    ext = os.path.splitext(name)[1].lower()
    if ext in _JSON_EXT:
        return "json"
    if ext in _NDJSON_EXT:
        return "ndjson"
    if ext in _YAML_EXT:
        return "yaml"
    return None


def _binary_stdin(stdin: IO | None) -> IO[bytes]:
    stream = stdin if stdin is not None else sys.stdin
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return buffer
    if isinstance(stream, io.TextIOBase):  # e.g. StringIO in tests
        return io.BytesIO(stream.read().encode("utf-8", "surrogateescape"))
    return stream


def _iter_stream(raw: IO[bytes], display: str, fmt: str | None) -> Iterator[Record]:
    stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type]
    try:
        head = stream.peek(2)[:2]
    except OSError:
        head = b""
    if head == _GZIP_MAGIC:
        stream = io.BufferedReader(gzip.GzipFile(fileobj=stream, mode="rb"))  # type: ignore[arg-type]
    try:
        try:
            sample = stream.peek(8192)[:8192]
        except (OSError, EOFError, zlib.error) as exc:
            yield Record(display, 1, None, f"cannot decompress: {_gzip_reason(exc)}")
            return
        if looks_binary(sample):
            yield Record(display, 1, None, f"binary file, not a fixture file (expected {SUPPORTED})")
            return
        if fmt is None:
            fmt = _sniff(sample, display)
        if fmt == "ndjson":
            yield from _iter_ndjson(stream, display)
        elif fmt == "json":
            yield from _iter_json_stream(stream, display)
        else:
            yield from _iter_yaml(_read_capped(stream, display), display)
    except _StreamBroken as exc:
        yield Record(display, exc.line, None, exc.reason)


class _StreamBroken(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _gzip_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"corrupt or truncated gzip data ({text})"


def _read_capped(stream: IO[bytes], display: str) -> bytes:
    """A YAML file is read whole: refuse it past MAX_YAML_BYTES (decompressed)."""
    try:
        data = stream.read(MAX_YAML_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise _StreamBroken(1, _gzip_reason(exc)) from None
    if len(data) > MAX_YAML_BYTES:
        raise _StreamBroken(
            1,
            f"YAML fixture over {MAX_YAML_BYTES // (1024 * 1024)} MB (uncompressed); YAML is "
            "read whole: convert it to NDJSON, one message per line, which streams",
        )
    return data


def _sniff(sample: bytes, display: str) -> str:
    text = sample.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text:
        return "ndjson"  # empty: reported as such by the reader
    first = text[:1]
    if first == b"[":
        return "json"
    if first == b"{":
        # One complete object on the first line: NDJSON; otherwise a
        # pretty-printed JSON document.
        first_line = text.split(b"\n", 1)[0]
        try:
            orjson.loads(first_line)
            return "ndjson"
        except orjson.JSONDecodeError:
            return "json"
    where = "stdin" if display == "-" else display
    raise InputError(
        f"{where}: cannot tell the format (it does not start with '[' or '{{')", hint=f"use one of {SUPPORTED}"
    )


# --------------------------------------------------------------------------
# NDJSON: line by line, constant memory
# --------------------------------------------------------------------------


def _iter_ndjson(stream: IO[bytes], display: str) -> Iterator[Record]:
    lineno = 0
    found = False
    readline = stream.readline
    loads = orjson.loads
    while True:
        try:
            line = readline(MAX_LINE_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            raise _StreamBroken(lineno + 1, _gzip_reason(exc)) from None
        if not line:
            break
        lineno += 1
        if len(line) >= MAX_LINE_BYTES and not line.endswith(b"\n"):
            # Skip the rest of the line without holding it.
            size = len(line)
            while True:
                try:
                    more = readline(MAX_LINE_BYTES)
                except (OSError, EOFError, zlib.error) as exc:
                    raise _StreamBroken(lineno, _gzip_reason(exc)) from None
                size += len(more)
                if not more or more.endswith(b"\n"):
                    break
            found = True
            yield Record(
                display,
                lineno,
                None,
                f"line is over {MAX_LINE_BYTES // 1024:,} KB ({size:,} bytes); a Segment message is at most 32 KB",
            )
            continue
        if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if line.isspace() or not line:
            continue
        found = True
        try:
            value = loads(line)
        except orjson.JSONDecodeError as exc:
            yield Record(display, lineno, None, _orjson_reason(exc, line))
            continue
        if type(value) is dict and "batch" in value and _is_batch(value):
            for item in _expand_batch(value):
                yield Record(display, lineno, item)
        else:
            yield Record(display, lineno, value, None, line)
    if not found:
        yield Record(display, max(lineno, 1), None, "file is empty: no messages")


def _orjson_reason(exc: orjson.JSONDecodeError, line: bytes) -> str:
    """A one-line reason for a bad NDJSON line (only computed on the error
    path, so the stdlib's clearer messages cost nothing on good lines)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as ude:
        return f"invalid UTF-8 at column {ude.start + 1}"
    text = text.rstrip("\r\n")
    msg = str(getattr(exc, "msg", "") or exc)
    if "depth" in msg.lower() or "recursion" in msg.lower():
        return "invalid JSON: nested too deeply (over 1024 levels)"
    try:
        json.loads(text)
    except json.JSONDecodeError as jexc:
        if jexc.pos >= len(text.rstrip()):
            return f"invalid JSON: the line ends early ({jexc.msg}); is it truncated?"
        return f"invalid JSON: {jexc.msg} (column {jexc.colno})"
    except RecursionError:
        return "invalid JSON: nested too deeply"
    except ValueError:
        pass
    return f"invalid JSON: {msg}"


def looks_binary(sample: bytes) -> bool:
    """NUL bytes, or a sample that is mostly not text."""
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    text = sample.decode("utf-8", "replace")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r\f"))
    return bad > max(8, len(text) // 20)


# --------------------------------------------------------------------------
# Segment batch objects
# --------------------------------------------------------------------------


def _is_batch(value: dict) -> bool:
    return isinstance(value.get("batch"), list) and "type" not in value


def _expand_batch(value: dict) -> list[Any]:
    """The batch's messages, with the batch-level context/integrations merged
    under each message's own (the message's keys win)."""
    shared = batch_shared(value)
    return [merge_batch_shared(item, shared) for item in value["batch"]]


def batch_shared(batch: dict) -> dict:
    """A Segment batch's top-level `context` and `integrations` (objects only)."""
    return {k: batch[k] for k in ("context", "integrations") if isinstance(batch.get(k), dict)}


def merge_batch_shared(item: Any, shared: dict) -> Any:
    """One batch item with the batch's shared context/integrations merged under
    its own (the item's keys win).  Also used by the sandbox's Segment ingest."""
    if not isinstance(item, dict) or not shared:
        return item
    item = dict(item)
    for key, base in shared.items():
        own = item.get(key)
        if own is None:
            item[key] = dict(base)
        elif isinstance(own, dict):
            item[key] = {**base, **own}
    return item


# --------------------------------------------------------------------------
# JSON documents: streamed, each array element with its own line
# --------------------------------------------------------------------------


class _TooBig(Exception):
    pass


class _JsonStream:
    """A JSON text read in chunks: values are decoded one at a time from a
    window that holds at most one value (plus a chunk), so a top-level array
    of any size streams in bounded memory.  The decoder flags what the
    stdlib would pass silently: duplicate keys, NaN/Infinity, numbers JSON
    cannot carry (problems of the value just decoded)."""

    def __init__(self, stream: IO[bytes], display: str):
        self.stream = stream
        self.display = display
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.eof = False
        self.first = True
        self.line_base = 1  # line of buf[0]
        self._lc_pos, self._lc_line = 0, 1
        self.consumed = 0  # characters dropped before buf[0]
        self.problems: list[str] = []
        # Integers go through a Python hook only when int() refuses one (over
        # 4,300 digits): the C parser is much faster (see value_at).
        self.decoder = json.JSONDecoder(
            object_pairs_hook=self._pairs, parse_constant=self._constant, parse_float=self._float
        )
        self.strict = json.JSONDecoder(
            object_pairs_hook=self._pairs, parse_constant=self._constant, parse_int=self._int, parse_float=self._float
        )

    # -- hooks: note the problem, keep decoding --------------------------------
    def _pairs(self, pairs):
        value = dict(pairs)
        if len(value) != len(pairs):
            seen: set = set()
            dup = next(k for k, _ in pairs if k in seen or seen.add(k))
            self.problems.append(
                f"duplicate key {json.dumps(dup)} in an object (only the last value would be kept); remove one"
            )
        return value

    def _constant(self, name):
        self.problems.append(f"{name} is not valid JSON (it would be sent as null); write a number or null")
        return None

    def _int(self, text):
        digits = len(text) - (text[0] == "-")
        if digits > MAX_NUMBER_DIGITS:
            self.problems.append(
                f"a number with {digits:,} digits (at most {MAX_NUMBER_DIGITS:,}); send large identifiers as strings"
            )
            return 0
        return int(text)

    def _float(self, text):
        value = float(text)
        if len(text) > MAX_NUMBER_DIGITS or not math.isfinite(value):
            self.problems.append(
                f"the number {text[:20]}{'...' if len(text) > 20 else ''} is out of range (it would be sent as null)"
            )
            return 0.0
        return value

    # -- the window --------------------------------------------------------------
    def fill(self, want: int = JSON_CHUNK) -> None:
        if self.eof:
            return
        try:
            chunk = self.stream.read(max(want, JSON_CHUNK))
        except (OSError, EOFError, zlib.error) as exc:
            raise _StreamBroken(self.line_at(len(self.buf)), _gzip_reason(exc)) from None
        try:
            if not chunk:
                self.eof = True
                text = self.utf8.decode(b"", final=True)
            else:
                if self.first and chunk.startswith(b"\xef\xbb\xbf"):
                    chunk = chunk[3:]
                self.first = False
                text = self.utf8.decode(chunk)
        except UnicodeDecodeError:
            raise _StreamBroken(self.line_at(len(self.buf)), "invalid UTF-8 (the file is not UTF-8 text)") from None
        self.buf += text

    def line_at(self, pos: int) -> int:
        if pos < self._lc_pos:
            self._lc_pos, self._lc_line = 0, self.line_base
        self._lc_line += self.buf.count("\n", self._lc_pos, pos)
        self._lc_pos = pos
        return self._lc_line

    def compact(self, pos: int) -> int:
        """Drop what is consumed once it is more than a chunk."""
        if pos < JSON_CHUNK:
            return pos
        self.line_base = self.line_at(pos)
        self._lc_pos, self._lc_line = 0, self.line_base
        self.consumed += pos
        self.buf = self.buf[pos:]
        return 0

    def skip_ws(self, pos: int) -> int:
        while True:
            buf = self.buf
            n = len(buf)
            if pos < n and buf[pos] not in _WS:
                return pos  # compact JSON: nothing to skip
            pos = _WS_RUN.match(buf, pos).end()
            if pos < n or self.eof:
                return pos
            pos = self.compact(pos)
            self.fill()

    def value_at(self, pos: int) -> tuple[Any, int]:
        """Decode the value at buf[pos]; read more until it is complete."""
        while True:
            self.problems = []
            try:
                try:
                    value, end = self.decoder.raw_decode(self.buf, pos)
                except ValueError as exc:  # int() refuses over 4,300 digits
                    if isinstance(exc, json.JSONDecodeError):
                        raise
                    self.problems = []
                    value, end = self.strict.raw_decode(self.buf, pos)
                # A number at the very end of the window may go on.
                if end < len(self.buf) or self.eof:
                    return value, end
            except json.JSONDecodeError:
                if self.eof or len(self.buf) - pos > MAX_DOCUMENT_BYTES:
                    raise
            if len(self.buf) - pos > MAX_DOCUMENT_BYTES:
                raise _TooBig()
            self.fill(len(self.buf) - pos)  # doubling: a long value is re-parsed O(log n) times

    def problems_of(self, value: Any, start: int, end: int) -> str | None:
        problems = list(self.problems)
        if not problems:
            # What the sender's encoder (orjson) would refuse later: a lone
            # surrogate, an integer beyond 64 bits.
            try:
                orjson.dumps(value)
            except orjson.JSONEncodeError as exc:
                if "surrogate" in str(exc):
                    problems.append(
                        "a string holds a lone UTF-16 surrogate (e.g. \\ud800), which is not "
                        "valid Unicode; fix or remove it"
                    )
                elif "64-bit" in str(exc):
                    problems.append("an integer beyond 64 bits; send large identifiers as strings")
                else:
                    problems.append(f"a value JSON cannot carry ({exc})")
        return "; ".join(problems) or None


def _iter_json_stream(stream: IO[bytes], display: str) -> Iterator[Record]:
    doc = _JsonStream(stream, display)
    doc.fill()
    pos = doc.skip_ws(0)
    if pos >= len(doc.buf):
        yield Record(display, max(doc.line_at(pos), 1), None, "file is empty: no messages")
        return
    start = pos
    try:
        # Usually one document; concatenated documents (NDJSON in a .json
        # file) are read one after another.
        while pos < len(doc.buf):
            start = pos
            if doc.buf[pos] == "[":
                pos = yield from _stream_array(doc, pos)
            else:
                value, pos = doc.value_at(pos)
                yield from _value_records(doc, value, start, pos)
            pos = doc.skip_ws(doc.compact(pos))
    except json.JSONDecodeError as exc:
        yield Record(display, doc.line_base + exc.lineno - 1, None, _json_reason(exc, doc.buf, doc.eof))
    except RecursionError:
        yield Record(display, doc.line_at(start), None, "invalid JSON: nested too deeply")
    except _TooBig:
        yield Record(
            display,
            doc.line_at(start),
            None,
            f"one JSON value over {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB (only the elements of a "
            "top-level array stream); write one message per line (NDJSON) or a JSON array",
        )


def _value_records(doc: _JsonStream, value: Any, start: int, end: int) -> Iterator[Record]:
    line = doc.line_at(start)
    problem = doc.problems_of(value, start, end)
    if problem is not None:
        yield Record(doc.display, line, None, f"invalid JSON: {problem}")
    elif isinstance(value, dict) and _is_batch(value):
        positions = _batch_item_positions(doc.buf, start, json.JSONDecoder())
        for i, item in enumerate(_expand_batch(value)):
            where = positions[i] if positions is not None and i < len(positions) else start
            yield Record(doc.display, doc.line_at(where), item)
        doc.line_at(end)  # the line cursor only moves forward
    else:
        yield Record(doc.display, line, value)


def _stream_array(doc: _JsonStream, pos: int):
    """Yield each element of the array at buf[pos] with its line; return the
    offset just past the closing bracket."""
    pos = doc.skip_ws(pos + 1)
    if pos < len(doc.buf) and doc.buf[pos] == "]":
        return pos + 1
    while True:
        start = pos
        value, pos = doc.value_at(pos)
        yield from _value_records(doc, value, start, pos)
        pos = doc.skip_ws(pos)
        if pos >= len(doc.buf):
            raise json.JSONDecodeError("Expecting ',' delimiter or ']'", doc.buf, pos)
        if doc.buf[pos] == ",":
            pos = doc.skip_ws(doc.compact(pos + 1))
            continue
        if doc.buf[pos] == "]":
            return pos + 1
        raise json.JSONDecodeError("Expecting ',' delimiter", doc.buf, pos)


_WS = " \t\r\n"
_WS_RUN = re.compile(r"[ \t\r\n]*")


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in _WS:
        pos += 1
    return pos


def _json_reason(exc: json.JSONDecodeError, text: str, at_end: bool = True) -> str:
    if at_end and exc.pos >= len(text.rstrip()):
        return f"invalid JSON: the document ends early ({exc.msg}); the file looks truncated"
    return f"invalid JSON: {exc.msg} (column {exc.colno})"


def _batch_item_positions(text: str, pos: int, decoder) -> list[int] | None:
    """Offsets of each element of the "batch" array of the object at text[pos]."""
    n = len(text)
    pos = _skip_ws(text, pos + 1)
    batch_positions = None
    while pos < n and text[pos] != "}":
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, pos)
        pos = _skip_ws(text, pos + 1)  # ':'
        if key == "batch" and text[pos] == "[":
            batch_positions = []
            pos = _skip_ws(text, pos + 1)
            while pos < n and text[pos] != "]":
                batch_positions.append(pos)
                _, pos = decoder.raw_decode(text, pos)
                pos = _skip_ws(text, pos)
                if pos < n and text[pos] == ",":
                    pos = _skip_ws(text, pos + 1)
            pos += 1
        else:
            _, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, pos)
        if pos < n and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
    return batch_positions


# --------------------------------------------------------------------------
# YAML: safe loader, lines from the nodes, no alias bombs
# --------------------------------------------------------------------------


def _decode_utf8(data: bytes, display: str) -> str | Record:
    """The text of a whole-file fixture, or an error record at the bad byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return Record(display, line, None, f"invalid UTF-8 at column {col}")


def _yaml_loader():
    import yaml
    import yaml.constructor

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class FixtureLoader(base):  # type: ignore[misc,valid-type]
        """Safe loader that keeps timestamps as the strings they were written
        as (messages carry ISO strings, not datetimes) and only builds values
        JSON can carry."""

    FixtureLoader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for ch, resolvers in base.yaml_implicit_resolvers.items()
    }

    def as_text(loader, node):
        return loader.construct_scalar(node)

    def as_list(loader, node):
        return list(loader.construct_mapping(node).keys())

    def mapping(loader, node, deep=False):
        # Own keys only (a `<<` merge may be overridden on purpose).
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} in a mapping (only the last value "
                        "would be kept); remove one",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return base.construct_mapping(loader, node, deep=deep)

    def number(kind):
        def construct(loader, node):
            text = str(node.value)
            if len(text) > MAX_NUMBER_DIGITS:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"a number with {len(text):,} digits (at most {MAX_NUMBER_DIGITS:,}); write "
                    "large identifiers as strings",
                    node.start_mark,
                )
            value = kind(loader, node)
            if isinstance(value, float) and not math.isfinite(value):
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{text} is not a number JSON can carry (it would be sent as null); write a number or null",
                    node.start_mark,
                )
            return value

        return construct

    FixtureLoader.construct_mapping = mapping
    FixtureLoader.add_constructor("tag:yaml.org,2002:int", number(base.construct_yaml_int))
    FixtureLoader.add_constructor("tag:yaml.org,2002:float", number(base.construct_yaml_float))
    FixtureLoader.add_constructor("tag:yaml.org,2002:binary", as_text)
    FixtureLoader.add_constructor("tag:yaml.org,2002:timestamp", as_text)
    FixtureLoader.add_constructor("tag:yaml.org,2002:set", as_list)
    return FixtureLoader


def _iter_yaml(data: bytes, display: str) -> Iterator[Record]:
    import yaml

    text = _decode_utf8(data, display)
    if isinstance(text, Record):
        yield text
        return
    loader = _yaml_loader()(text)
    found = False
    try:
        while True:
            try:
                node = loader.get_node() if loader.check_node() else None
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                line = mark.line + 1 if mark is not None else 1
                problem = exc.problem or exc.context or "invalid YAML"
                yield Record(display, line, None, f"invalid YAML: {problem}")
                return
            except yaml.YAMLError as exc:
                yield Record(display, 1, None, f"invalid YAML: {exc}")
                return
            except RecursionError:
                raise InputError(
                    f"{display}: YAML nested too deeply", hint="a message is a flat-ish object; check the file"
                ) from None
            if node is None:
                break
            _check_yaml_size(node, display)
            found = True
            yield from _yaml_document_records(loader, node, display)
    finally:
        loader.dispose()
    if not found:
        yield Record(display, 1, None, "file is empty: no messages")


def _check_yaml_size(root, display: str) -> None:
    """Refuse documents whose aliases expand to too many nodes, or that nest
    too deeply (iterative, so depth itself cannot blow the stack)."""
    import yaml

    expanded: dict[int, int] = {}
    # Post-order walk with an explicit stack.
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_YAML_DEPTH:
            raise InputError(
                f"{display}:{node.start_mark.line + 1}: YAML nested more than {MAX_YAML_DEPTH} levels deep",
                hint="check the file; messages are shallow",
            )
        key = id(node)
        if key in expanded and not done:
            continue
        children = _yaml_children(node, yaml)
        if not done:
            stack.append((node, depth, True))
            for child in children:
                if id(child) not in expanded:
                    stack.append((child, depth + 1, False))
            continue
        total = 1 + sum(expanded.get(id(c), 1) for c in children)
        expanded[key] = total
        if total > MAX_YAML_NODES:
            raise InputError(
                f"{display}:{root.start_mark.line + 1}: YAML aliases expand to over "
                f"{MAX_YAML_NODES:,} values (an alias bomb?)",
                hint="write the data out without nested anchors/aliases",
            )


def _yaml_children(node, yaml) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        out = []
        for k, v in node.value:
            out.append(k)
            out.append(v)
        return out
    return []


def _yaml_document_records(loader, node, display: str) -> Iterator[Record]:
    import yaml

    def build(n):
        """The value of node n, or an error Record for it (one bad item does
        not hide the others)."""
        try:
            return loader.construct_document(n)
        except yaml.YAMLError as exc:
            loader.constructed_objects, loader.recursive_objects, loader.state_generators = {}, {}, []
            mark = getattr(exc, "problem_mark", None)
            return Record(
                display,
                (mark.line + 1) if mark else n.start_mark.line + 1,
                None,
                f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
            )
        except RecursionError:
            raise InputError(f"{display}: YAML nested too deeply", hint="check the file") from None

    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for item_node in items:
        item = build(item_node)
        if isinstance(item, Record):
            yield item
        else:
            yield from _maybe_batch(display, item_node.start_mark.line + 1, item, item_node, yaml)


def _maybe_batch(display, line, value, node, yaml) -> Iterator[Record]:
    if isinstance(value, dict) and _is_batch(value) and isinstance(node, yaml.MappingNode):
        item_nodes: list = []
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "batch" and isinstance(v, yaml.SequenceNode):
                item_nodes = v.value
        for i, item in enumerate(_expand_batch(value)):
            item_line = item_nodes[i].start_mark.line + 1 if i < len(item_nodes) else line
            yield Record(display, item_line, item)
        return
    yield Record(display, line, value)
