"""transport/http1.py reads a response as http.client.HTTPResponse does.

The wire reads responses with http1.Response so that it need not import
http.client (issue 17).  Here both read the same bytes, generated to hit the
edges (status lines, folded, repeated and malformed fields, unix-from lines,
bare CRs, Content-Length and chunked framing, early EOF, HEAD, 1xx/204/304,
HTTP/1.0 keep-alive rules), and must agree on the status, the fields, whether
the connection closes, and the body read with read1 in pieces, or both fail.
"""

from __future__ import annotations

import http.client
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpio_cli.transport import http1


class _Sock:
    def __init__(self, data: bytes):
        self.data = data

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data))


def _stdlib(data: bytes, method: str, sizes: list[int]) -> tuple:
    response = http.client.HTTPResponse(_Sock(data), method=method)  # type: ignore[arg-type]
    try:
        response.begin()
        head = (response.status, response.getheaders(), response.will_close)
        return ("ok", head, _body(response.read1, sizes))
    except (http.client.HTTPException, ValueError) as exc:
        return ("error", type(exc).__name__)


def _ours(data: bytes, method: str, sizes: list[int]) -> tuple:
    response = http1.Response(io.BufferedReader(io.BytesIO(data)), method)
    try:
        response.begin()
        head = (response.status, response.fields, response.will_close)
        return ("ok", head, _body(response.read1, sizes))
    except http1.BadResponse as exc:
        return ("error", type(exc).__name__)


def _body(read1, sizes: list[int]) -> tuple:
    pieces = []
    for i in range(200):
        piece = read1(sizes[i % len(sizes)])
        if not piece and sizes[i % len(sizes)] != 0:
            break
        pieces.append(piece)
    return tuple(pieces)


def _same(data: bytes, method: str = "POST", sizes: list[int] | None = None) -> None:
    sizes = sizes or [65536]
    expected, got = _stdlib(data, method, sizes), _ours(data, method, sizes)
    if expected[0] == "error":
        assert got[0] == "error", (data, expected, got)
    else:
        assert got == expected, data


_NAMES = st.sampled_from(
    [
        "Content-Length",
        "content-length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Retry-After",
        "X-A",
        "From ",
        "",
        " X",
        "\tX",
        "X Y",
        "Content-Length ",
        "Caf\xe9",
    ]
)
_VALUES = st.one_of(
    st.sampled_from(
        ["5", "0", "-1", " 3 ", "+4", "1_0", "x", "", "chunked", "Chunked", "gzip, chunked", "close", "keep-alive"]
    ),
    st.sampled_from(["Keep-Alive, Upgrade", "CLOSE", "a\r\n b", "v\rw", "60", "\xe9t\xe9"]),
    st.text(alphabet="ab :\t\r\n;5", max_size=8),
)
_ENDS = st.sampled_from(["\r\n", "\n", "\r", ""])


@st.composite
def _field_line(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.sampled_from(["From me", " folded", "\tfolded", ":novalue", "no colon", "From x: y"]))
    return f"{draw(_NAMES)}:{draw(st.sampled_from(['', ' ', chr(9)]))}{draw(_VALUES)}"


@st.composite
def _chunked(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        size = draw(st.integers(0, 12))
        data = draw(st.binary(min_size=0, max_size=size + 2))
        ext = draw(st.sampled_from(["", ";x=1", " ", ";"]))
        written = draw(st.sampled_from([f"{size:x}", f"{size:X}", "zz", f"0x{size:x}", ""]))
        parts.append(f"{written}{ext}\r\n".encode() + data + draw(st.sampled_from([b"\r\n", b"", b"\n", b"xx"])))
    if draw(st.booleans()):
        parts.append(b"0\r\n" + draw(st.sampled_from([b"\r\n", b"T: 1\r\n\r\n", b"", b"\n"])))
    return b"".join(parts)


@st.composite
def _responses(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/0.9", "HTTP/1.2", "HTTP/2", "HTTX/1.1", ""]))
    status = draw(st.sampled_from(["200", "204", "304", "100", "103", "207", "429", "99", "1000", "2_00", "ab", ""]))
    reason = draw(st.sampled_from([" OK", "", " Multi Status", "  "]))
    head = f"{version} {status}{reason}" if status else version
    lines = [head + draw(_ENDS)]
    if status == "100" and draw(st.booleans()):
        lines.append("\r\nHTTP/1.1 200 OK\r\n")
    for _ in range(draw(st.integers(0, 6))):
        lines.append(draw(_field_line()) + draw(_ENDS))
    lines.append(draw(st.sampled_from(["\r\n", "\n", ""])))
    body = draw(st.one_of(st.binary(max_size=40), _chunked()))
    return "".join(lines).encode("latin-1") + body


@st.composite
def _framed(draw: st.DrawFn) -> bytes:
    """Mostly well-formed responses: the framing rules get exercised, not only the failures."""
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
    status = draw(st.sampled_from([200, 204, 207, 304, 103, 429, 500]))
    chunked = draw(st.booleans())
    body = draw(st.binary(max_size=30))
    fields = []
    if chunked:
        fields.append(f"Transfer-Encoding: {draw(st.sampled_from(['chunked', 'CHUNKED', 'gzip, chunked']))}")
    if draw(st.booleans()):
        fields.append(f"Content-Length: {len(body) + draw(st.sampled_from([0, 0, -1, 1, -len(body) - 1]))}")
    if draw(st.booleans()):
        fields.append(f"Connection: {draw(st.sampled_from(['close', 'keep-alive', 'Keep-Alive', 'upgrade']))}")
    if draw(st.booleans()):
        fields.append(f"{draw(st.sampled_from(['Keep-Alive', 'Proxy-Connection']))}: keep-alive")
    fields = draw(st.permutations(fields))
    if chunked:
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
        framed = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
        body = framed[: draw(st.integers(0, len(framed)))] if draw(st.booleans()) else framed
    head = f"{version} {status} X\r\n" + "".join(f"{f}\r\n" for f in fields) + "\r\n"
    return head.encode("latin-1") + body


@settings(max_examples=2000, deadline=None)
@given(_framed(), st.sampled_from(["POST", "HEAD"]), st.lists(st.integers(-1, 9), min_size=1, max_size=4))
def test_frames_bodies_as_http_client_does(data, method, sizes):
    _same(data, method, sizes)


@settings(max_examples=2000, deadline=None)
@given(_responses(), st.sampled_from(["POST", "GET", "HEAD"]), st.lists(st.integers(-1, 9), min_size=1, max_size=4))
def test_reads_what_http_client_reads(data, method, sizes):
    _same(data, method, sizes)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=120), st.sampled_from(["POST", "HEAD"]))
def test_arbitrary_bytes_fail_or_agree(data, method):
    _same(b"HTTP/1.1 200 OK\r\n" + data, method)
    _same(data, method)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 3\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 207 Multi\r\nX-A: 1\r\n b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 70000 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"T: x\r\n" * 3 + b"a" * 70000,
        b"HTTP/1.1 " + b"2" * 70000,
    ],
)
def test_known_edges(data):
    for method in ("POST", "HEAD"):
        for sizes in ([65536], [1], [0, 3]):
            _same(data, method, sizes)


def test_the_wire_does_not_import_http_client_or_ssl():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "import cdpio_cli.transport, cdpio_cli.transport.wire, cdpio_cli.transport.client\n"
        "print(sorted(m for m in ('http.client', 'ssl', 'email', 'urllib.request') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
