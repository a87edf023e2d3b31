"""An HTTP/1.x response read from a buffered socket reader, by the rules of
`http.client.HTTPResponse` (Python 3.11), so the wire need not import
http.client: it imports email.parser, email.message and ssl, 58M
instructions, a ninth of a replay run's imports (issue 17).

Only what the wire uses is here: the status line (a 100 Continue skipped),
the header fields as `email`'s compat32 policy parses them, when the
connection closes, and the body by `read1` (Content-Length, chunked, or up to
the close).  tests/test_transport_http1.py holds it equal to http.client on
generated responses (hypothesis): same status, fields, close and body, and a
failure wherever http.client fails.
"""

from __future__ import annotations

import io
import re

MAXLINE = 65536
MAXHEADERS = 100
# email.feedparser.headerRE: a field, a continuation or a unix-from line; any
# other line (the blank one included) ends the fields.
_FIELD = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")


class BadResponse(Exception):
    """What http.client raises as HTTPException (or RemoteDisconnected)."""


def _readline(fp: io.BufferedIOBase, what: str) -> bytes:
    line = fp.readline(MAXLINE + 1)
    if len(line) > MAXLINE:
        raise BadResponse(f"got more than {MAXLINE} bytes when reading {what}")
    return line


def _head_lines(fp: io.BufferedIOBase) -> list[bytes]:
    """http.client._read_headers: the lines up to and with the blank one (or EOF)."""
    lines = []
    while True:
        line = _readline(fp, "header line")
        lines.append(line)
        if len(lines) > MAXHEADERS:
            raise BadResponse(f"got more than {MAXHEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines


def parse_fields(text: str) -> list[tuple[str, str]]:
    """The (name, value) fields `email.parser.Parser().parsestr(text).items()`
    gives under the compat32 policy (http.client.parse_headers)."""
    lines = []
    for line in io.StringIO(text, newline="").readlines():
        if not _FIELD.match(line):
            break
        lines.append(line)
    fields: list[tuple[str, str]] = []
    current: list[str] = []
    for line in lines:
        if line[0] in " \t":
            if current:  # a continuation of the field above (a first line so is dropped)
                current.append(line)
            continue
        if current:
            fields.append(_field(current))
            current = []
        if line.startswith("From "):
            continue  # an envelope line (or the body's first), ignored
        if line.find(":") > 0:  # a line opening with ":" has no name: dropped
            current = [line]
    if current:
        fields.append(_field(current))
    return fields


def _field(lines: list[str]) -> tuple[str, str]:
    name, value = lines[0].split(":", 1)
    return name, (value.lstrip(" \t") + "".join(lines[1:])).rstrip("\r\n")


class Response:
    """A response whose head `begin` read; `read1` returns the body in pieces, b"" at its end."""

    def __init__(self, fp: io.BufferedIOBase, method: str):
        self.fp: io.BufferedIOBase | None = fp
        self.method = method
        self.status = 0
        self.fields: list[tuple[str, str]] = []
        self._first: dict[str, str] = {}  # lower-cased name -> its first field's value
        self.chunked = False
        self.chunk_left: int | None = None
        self.length: int | None = None
        self.will_close = True

    def _status_line(self) -> tuple[str, int]:
        assert self.fp is not None
        line = str(_readline(self.fp, "status line"), "iso-8859-1")
        if not line:
            raise BadResponse("Remote end closed connection without response")
        parts = line.split(None, 2)
        version = parts[0] if len(parts) > 1 else ""
        if not version.startswith("HTTP/"):
            self.fp = None
            raise BadResponse(line or repr(line))
        try:
            status = int(parts[1])
        except ValueError:
            raise BadResponse(line) from None
        if status < 100 or status > 999:
            raise BadResponse(line)
        return version, status

    def get(self, name: str) -> str | None:
        """The first field of this name (any case), as email.message.Message.get."""
        return self._first.get(name.lower())

    def begin(self) -> None:
        assert self.fp is not None
        while True:
            version, status = self._status_line()
            if status != 100:
                break
            _head_lines(self.fp)  # a 100 Continue's fields
        self.status = status
        if version in ("HTTP/1.0", "HTTP/0.9"):
            http10 = True
        elif version.startswith("HTTP/1."):
            http10 = False
        else:
            raise BadResponse(version)
        self.fields = parse_fields(b"".join(_head_lines(self.fp)).decode("iso-8859-1"))
        first = self._first = {}
        for key, value in reversed(self.fields):
            first[key.lower()] = value
        encoding = self.get("transfer-encoding")
        self.chunked = bool(encoding) and encoding.lower() == "chunked"  # type: ignore[union-attr]
        self.will_close = self._closes(http10)
        length = self.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if status in (204, 304) or 100 <= status < 200 or self.method == "HEAD":
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True

    def _closes(self, http10: bool) -> bool:
        connection = (self.get("connection") or "").lower()
        if not http10:
            return "close" in connection
        if self.get("keep-alive") or "keep-alive" in connection:
            return False
        return "keep-alive" not in (self.get("proxy-connection") or "").lower()

    def read1(self, n: int) -> bytes:
        if self.fp is None or self.method == "HEAD":
            return b""
        if self.chunked:
            return self._read1_chunked(n)
        if self.length is not None and (n < 0 or n > self.length):
            n = self.length
        result = self.fp.read1(n)
        if not result and n:
            self.fp = None
        elif self.length is not None:
            self.length -= len(result)
        return result

    def _read1_chunked(self, n: int) -> bytes:
        left = self._chunk_left()
        if left is None or n == 0:
            return b""
        if not 0 <= n <= left:
            n = left
        assert self.fp is not None
        data = self.fp.read1(n)
        self.chunk_left = left - len(data)
        if not data:
            raise BadResponse("IncompleteRead(0 bytes read)")
        return data

    def _chunk_left(self) -> int | None:
        """The bytes left in this chunk, the next one's size read when it is done; None at the end."""
        left = self.chunk_left
        if left:
            return left
        assert self.fp is not None
        if left is not None:  # the CRLF closing a chunk
            end = self.fp.read(2)
            if len(end) < 2:
                raise BadResponse(f"IncompleteRead({len(end)} bytes read, {2 - len(end)} more expected)")
        line = _readline(self.fp, "chunk size")
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            self.fp = None
            raise BadResponse("IncompleteRead(0 bytes read)") from None
        if size == 0:
            while True:  # the trailer, discarded
                line = _readline(self.fp, "trailer line")
                if line in (b"\r\n", b"\n", b""):
                    break
            self.fp = None
            self.chunk_left = None
            return None
        self.chunk_left = size
        return size
