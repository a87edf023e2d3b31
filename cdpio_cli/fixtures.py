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

import glob
import gzip
import io
import json
import os
import sys
import zlib
from dataclasses import dataclass
from typing import IO, Any, Iterator

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

_GZIP_MAGIC = b"\x1f\x8b"
_GLOB_CHARS = set("*?[")
_JSON_EXT = {".json"}
_NDJSON_EXT = {".jsonl", ".ndjson"}
_YAML_EXT = {".yaml", ".yml"}


@dataclass(slots=True)
class Record:
    """One message read from a fixture file, or why it could not be read."""

    file: str          # display path, "-" for stdin
    line: int          # 1-based line where the message starts
    message: Any       # parsed value (normally a dict); None when error is set
    error: str | None = None

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
                raise InputError(f"{pattern}: the pattern matches no files",
                                 hint="check the pattern; quote it so the shell does not expand it")
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
        raise InputError(f"{path}: is a directory",
                         hint=f"pass files, or a glob such as '{path.rstrip('/')}/**/*.ndjson'")
    if not os.path.isfile(path):
        raise InputError(f"{path}: not a regular file", hint="pass a file, or - for stdin")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror}",
                         hint="check the file's permissions") from None


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
        raise InputError(f"{path}: cannot be read: {exc.strerror}",
                         hint="check the path and its permissions") from None
    with raw:
        name = path
        if name.lower().endswith(".gz"):
            name = name[:-3]
        yield from _iter_stream(raw, path, fmt=_format_of(name))


def detect_format(path: str) -> str | None:
    """"json", "ndjson" or "yaml" for a fixture file (by name, else by its first
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
            yield Record(display, 1, None,
                         f"binary file, not a fixture file (expected {SUPPORTED})")
            return
        if fmt is None:
            fmt = _sniff(sample, display)
        if fmt == "ndjson":
            yield from _iter_ndjson(stream, display)
        elif fmt == "json":
            yield from _iter_json_bytes(_read_all(stream, display), display)
        else:
            yield from _iter_yaml(_read_all(stream, display), display)
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


def _read_all(stream: IO[bytes], display: str) -> bytes:
    try:
        return stream.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise _StreamBroken(1, _gzip_reason(exc)) from None


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
    raise InputError(f"{where}: cannot tell the format (it does not start with '[' or '{{')",
                     hint=f"use one of {SUPPORTED}")


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
            yield Record(display, lineno, None,
                         f"line is over {MAX_LINE_BYTES // 1024:,} KB ({size:,} bytes); "
                         "a Segment message is at most 32 KB")
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
        if isinstance(value, dict) and _is_batch(value):
            for item in _expand_batch(value):
                yield Record(display, lineno, item)
        else:
            yield Record(display, lineno, value)
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
    shared = {k: value[k] for k in ("context", "integrations") if isinstance(value.get(k), dict)}
    out = []
    for item in value["batch"]:
        if isinstance(item, dict) and shared:
            item = dict(item)
            for key, base in shared.items():
                own = item.get(key)
                if own is None:
                    item[key] = dict(base)
                elif isinstance(own, dict):
                    item[key] = {**base, **own}
        out.append(item)
    return out


# --------------------------------------------------------------------------
# JSON documents: loaded whole, each array element with its own line
# --------------------------------------------------------------------------

class _Lines:
    """Line number of increasing offsets in a text, counted incrementally."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.line = 1

    def at(self, pos: int) -> int:
        if pos < self.pos:  # rare: restart
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


_WS = " \t\r\n"


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in _WS:
        pos += 1
    return pos


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


def _iter_json_bytes(data: bytes, display: str) -> Iterator[Record]:
    text = _decode_utf8(data, display)
    if isinstance(text, Record):
        yield text
        return
    yield from _iter_json_text(text, display)


def _iter_json_text(text: str, display: str) -> Iterator[Record]:
    decoder = json.JSONDecoder()
    lines = _Lines(text)
    pos = _skip_ws(text, 0)
    if pos >= len(text):
        yield Record(display, max(lines.at(len(text)), 1), None, "file is empty: no messages")
        return
    try:
        # Usually one document; concatenated documents (NDJSON in a .json
        # file) are read one after another.
        while pos < len(text):
            start = pos
            if text[pos] == "[":
                pos = yield from _scan_array(text, pos, decoder, lines, display)
            else:
                value, pos = decoder.raw_decode(text, pos)
                if isinstance(value, dict) and _is_batch(value):
                    yield from _batch_records(text, start, value, decoder, lines, display)
                else:
                    yield Record(display, lines.at(start), value)
            pos = _skip_ws(text, pos)
    except json.JSONDecodeError as exc:
        yield Record(display, exc.lineno, None, _json_reason(exc, text))
    except RecursionError:
        yield Record(display, lines.line, None, "invalid JSON: nested too deeply")


def _json_reason(exc: json.JSONDecodeError, text: str) -> str:
    if exc.pos >= len(text.rstrip()):
        return f"invalid JSON: the document ends early ({exc.msg}); the file looks truncated"
    return f"invalid JSON: {exc.msg} (column {exc.colno})"


def _scan_array(text, pos, decoder, lines, display):
    """Yield each element of the array at text[pos] with its line; return the
    offset just past the closing bracket."""
    n = len(text)
    pos = _skip_ws(text, pos + 1)
    if pos < n and text[pos] == "]":
        return pos + 1
    while True:
        start = pos
        value, pos = decoder.raw_decode(text, pos)
        line = lines.at(start)
        if isinstance(value, dict) and _is_batch(value):
            for item in _expand_batch(value):
                yield Record(display, line, item)
        else:
            yield Record(display, line, value)
        pos = _skip_ws(text, pos)
        if pos >= n:
            raise json.JSONDecodeError("Expecting ',' delimiter or ']'", text, pos)
        if text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if text[pos] == "]":
            return pos + 1
        raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)


def _batch_records(text, start, value, decoder, lines, display):
    """Records for a batch object, each item on its own line: re-scan the
    object's keys to find where the batch array starts."""
    items = _expand_batch(value)
    positions = _batch_item_positions(text, start, decoder)
    for i, item in enumerate(items):
        pos = positions[i] if positions is not None and i < len(positions) else start
        yield Record(display, lines.at(pos), item)


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

def _yaml_loader():
    import yaml

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
                raise InputError(f"{display}: YAML nested too deeply",
                                 hint="a message is a flat-ish object; check the file") from None
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
            raise InputError(f"{display}:{node.start_mark.line + 1}: YAML nested more than "
                             f"{MAX_YAML_DEPTH} levels deep", hint="check the file; messages are shallow")
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
            raise InputError(f"{display}:{root.start_mark.line + 1}: YAML aliases expand to over "
                             f"{MAX_YAML_NODES:,} values (an alias bomb?)",
                             hint="write the data out without nested anchors/aliases")


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
        try:
            return loader.construct_document(n)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise _StreamBroken((mark.line + 1) if mark else n.start_mark.line + 1,
                                f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
        except RecursionError:
            raise InputError(f"{display}: YAML nested too deeply", hint="check the file") from None

    if isinstance(node, yaml.SequenceNode):
        value = build(node)
        for item_node, item in zip(node.value, value):
            yield from _maybe_batch(display, item_node.start_mark.line + 1, item, item_node, yaml)
        return
    value = build(node)
    yield from _maybe_batch(display, node.start_mark.line + 1, value, node, yaml)


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
