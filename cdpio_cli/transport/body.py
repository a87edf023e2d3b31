"""Reading a response body within a memory cap, decompression included."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from cdpio_cli.transport.errors import DecodingError

if TYPE_CHECKING:  # only the httpx path hands one in
    import httpx

# No Customer.io or Segment answer cdpio reads comes near this; a bigger body
# (or one that decompresses to more) is a broken or hostile server.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024


class BodyTooLarge(Exception):
    """A response body (decompressed) over the cap."""


def read_body(response: httpx.Response, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """The response body, streamed and decompressed by hand so that neither a
    huge body nor a small gzip bomb can take more than `limit` bytes of memory."""
    return decode_body(response.headers, response.iter_raw(), limit)


def decode_body(headers: Mapping[str, str], chunks: Iterable[bytes], limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """The body from its raw `chunks`, decompressed as `headers` (lower-case
    names) say, within `limit` bytes; for either wire (httpx or wire.py)."""
    encodings = [e.strip().lower() for e in headers.get("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "identity"]
    declared = headers.get("content-length", "")
    if not encodings and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(int(declared))
    decoder = None
    if encodings and all(e in ("gzip", "x-gzip", "deflate") for e in encodings) and len(encodings) == 1:
        # 32 + 15: accept a gzip or a zlib header (servers send both as "deflate").
        decoder = zlib.decompressobj(47)
    out = bytearray()
    raw_deflate_tried = False
    for chunk in chunks:
        if decoder is None:
            out += chunk
            if len(out) > limit:
                raise BodyTooLarge(len(out))
            continue
        data = chunk
        while data and not decoder.eof:
            try:
                piece = decoder.decompress(data, limit - len(out) + 1)
            except zlib.error:
                if encodings == ["deflate"] and not out and not raw_deflate_tried:
                    raw_deflate_tried = True  # a raw deflate stream, no header
                    decoder = zlib.decompressobj(-15)
                    continue
                raise DecodingError("the response body is not valid " + encodings[0]) from None
            out += piece
            if len(out) > limit:
                raise BodyTooLarge(len(out))
            data = decoder.unconsumed_tail
    return bytes(out)
