"""Small helpers shared by the sandbox's route modules."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cdpio_cli.sandbox.state import SandboxState

ENTRY_KEY = "cdpio.entry"  # scope key: the request-log entry of this request

# After an oversize body is refused, this much more of it is still read (and
# discarded) so the client gets to read the answer; past it the connection is
# closed.
DRAIN_LIMIT = 64 * 1024 * 1024
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    return Response(content, status, headers=headers, media_type="application/json")


def parse_json(raw: bytes, *, empty: Any = None) -> Any:
    """The parsed body; `empty` for an empty body; raises ValueError when it is not JSON."""
    if not raw.strip():
        return empty
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def log(
    request: Request, state: SandboxState, route: str, status: int, *, path: str | None = None, messages: int = 0
) -> dict:
    entry = state.log_request(request.method, path or request.url.path, route, status, messages)
    request.scope[ENTRY_KEY] = entry
    return entry


def bind(fn: Callable[..., Awaitable[Response]], **bound: Any) -> Callable[[Request], Awaitable[Response]]:
    """A starlette endpoint that calls fn(request, **bound)."""

    async def endpoint(request: Request) -> Response:
        return await fn(request, **bound)

    endpoint.__name__ = getattr(fn, "__name__", "endpoint")
    return endpoint


@dataclass
class LimitedBody:
    """A request body read with a cap.

    `over`: it (or what it decompresses to) is longer than the cap, and was
    not kept.  Otherwise `data` is the body, decompressed when `decoded`; not
    decoded means an unknown or broken Content-Encoding, and `data` is the raw
    body for the caller to reject.
    """

    data: bytes = b""
    over: bool = False
    decoded: bool = True


def content_length(request: Request) -> int | None:
    try:
        value = int(request.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


async def read_limited(request: Request, cap: int) -> LimitedBody:
    """The body, decompressed per Content-Encoding, never holding more than
    about `cap` bytes of it, compressed or not (a gzip bomb stops at the cap).

    Checked before reading (Content-Length), while reading (chunked bodies)
    and while decompressing.
    """
    encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
    wbits = _WBITS.get(encoding)
    # A body that does not compress grows a little when gzipped.
    wire_cap = cap if encoding == "identity" else cap + cap // 100 + 1024
    declared = content_length(request)
    if declared is not None and declared > wire_cap:
        await _drain(request, declared)
        return LimitedBody(over=True)
    raw: list[bytes] = []
    raw_len = 0
    out: list[bytes] = []
    out_len = 0
    decoder = zlib.decompressobj(wbits) if wbits is not None else None
    decoded = encoding == "identity" or decoder is not None
    stream = request.stream()
    async for chunk in stream:
        raw_len += len(chunk)
        if raw_len > wire_cap:
            await _drain_stream(stream, raw_len)
            return LimitedBody(over=True)
        raw.append(chunk)
        if decoder is None:
            continue
        try:
            data = chunk
            while data:
                piece = decoder.decompress(data, cap - out_len + 1)
                out.append(piece)
                out_len += len(piece)
                if out_len > cap:
                    await _drain_stream(stream, raw_len)
                    return LimitedBody(over=True)
                data = decoder.unconsumed_tail
                if decoder.eof:
                    data = decoder.unused_data
                    if data and encoding == "gzip":
                        decoder = zlib.decompressobj(_WBITS["gzip"])  # the next gzip member
                    elif data:
                        raise zlib.error("data after the end of the deflate stream")
        except zlib.error:
            decoder, decoded = None, False
    if decoder is not None and not decoder.eof and raw_len:
        decoded = False  # cut off mid-stream
    if not decoded:
        return LimitedBody(b"".join(raw), decoded=False)
    return LimitedBody(b"".join(out) if wbits is not None else b"".join(raw))


async def _drain(request: Request, declared: int) -> None:
    if declared <= DRAIN_LIMIT:
        await _drain_stream(request.stream(), 0)


async def _drain_stream(stream: AsyncIterator[bytes], seen: int) -> None:
    """Read and discard the rest of a body, up to DRAIN_LIMIT in all."""
    async for chunk in stream:
        seen += len(chunk)
        if seen > DRAIN_LIMIT:
            break
