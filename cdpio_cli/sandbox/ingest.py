"""The one ingest path for Segment-shaped APIs: Segment's Tracking API and
Customer.io's Pipelines API (docs/contracts.md, "Segment" and "Customer.io Pipelines API").

Both take the same bodies; they differ only in who they trust and how loudly
they fail:

- Segment: the write key by Basic auth or `writeKey` in the body; 400 only for
  invalid JSON, a missing key and the size limits; 200 for everything else,
  silently dropping what it cannot use.
- Pipelines: the key by Basic or Bearer; 200 for everything (oversized
  requests and bad keys included) unless `X-Strict-Mode: 1` asks for real
  errors (401, 400).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cdpio_cli.fixtures import batch_shared
from cdpio_cli.messages import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES, spec_problems
from cdpio_cli.sandbox.auth import basic_user, bearer_token
from cdpio_cli.sandbox.state import SandboxState, identifies_by_email

UNKNOWN_SOURCE = "unknown_source"
INVALID_KEY = "invalid_api_key"
WRONG_REGION = "wrong_region"
TOO_MANY_EVENTS = "too_many_events_in_batch"
MESSAGE_TOO_LARGE = "message_too_large"
BATCH_TOO_LARGE = "batch_too_large"


@dataclass(frozen=True)
class Outcome:
    """The answer to one ingest request."""

    status: int
    body: bytes


_OK_SEGMENT = orjson.dumps({"success": True})
_OK_PIPELINES = b"{}"


def _error(status: int, code: str, message: str) -> Outcome:
    return Outcome(status, orjson.dumps({"code": code, "message": message}))


def decode_body(raw: bytes, encoding: str | None) -> bytes | None:
    """Undo Content-Encoding (gzip/deflate); None when it cannot be undone."""
    if not encoding or encoding == "identity":
        return raw
    try:
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
    except (OSError, zlib.error, EOFError):
        return None
    return None


def ingest(
    state: SandboxState,
    *,
    service: str,
    call: str | None,
    raw: bytes,
    headers: Mapping[str, str],
    region_ok: bool,
    entry: dict,
) -> Outcome:
    """Handle one POST to /{service}/v1/{call}; `call` None means batch/import."""
    pipelines = service == "pipelines"
    strict = pipelines and headers.get("x-strict-mode") == "1"
    request = _read(raw, headers.get("content-encoding"), call)
    if isinstance(request, Outcome):
        return request
    n = len(request.items)
    entry["messages"] = n
    if request.oversize and (strict or not pipelines):
        what = "a message" if request.oversize == MESSAGE_TOO_LARGE else "the batch"
        limit_kb = (MAX_MESSAGE_BYTES if request.oversize == MESSAGE_TOO_LARGE else MAX_BATCH_BYTES) // 1024
        return _error(400, "request_too_large", f"{what} is over the {limit_kb} KB limit")
    verdict = _admit(state, headers, request, call=call, pipelines=pipelines, strict=strict, region_ok=region_ok)
    if isinstance(verdict, Outcome):
        return verdict
    route = f"{service}.{call or 'batch'}"
    state.accept(
        request.body, request.items, route, entry, drop_all=verdict, force_type=call, defaults=request.defaults
    )
    return Outcome(200, _OK_PIPELINES if pipelines else _OK_SEGMENT)


@dataclass(frozen=True)
class _Request:
    """One decoded POST: its messages, and the size limit it breaks, if any."""

    body: bytes
    payload: dict
    items: list[Any]
    defaults: dict | None  # a batch's shared fields (context, integrations)
    oversize: str | None  # MESSAGE_TOO_LARGE, BATCH_TOO_LARGE or None


def _read(raw: bytes, encoding: str | None, call: str | None) -> _Request | Outcome:
    """Decode the body into its messages; an Outcome when it cannot be read."""
    body = decode_body(raw, encoding)
    if body is None:
        return _error(400, "invalid_request", "the request body could not be decompressed")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error(400, "invalid_json", "the request body is not valid JSON")
    if not isinstance(payload, dict):
        return _error(400, "invalid_request", "the request body must be a JSON object")
    if call:
        oversize = MESSAGE_TOO_LARGE if len(body) > MAX_MESSAGE_BYTES else None
        return _Request(body, payload, [payload], None, oversize)
    items = payload.get("batch")
    if not isinstance(items, list):
        return _error(400, "invalid_request", "a batch needs a `batch` array")
    return _Request(body, payload, items, batch_shared(payload) or None, _batch_oversize(body, items))


def _batch_oversize(body: bytes, items: list[Any]) -> str | None:
    if len(body) > MAX_BATCH_BYTES:
        return BATCH_TOO_LARGE
    if len(body) > MAX_MESSAGE_BYTES and any(len(orjson.dumps(m)) > MAX_MESSAGE_BYTES for m in items):
        return MESSAGE_TOO_LARGE
    return None


def _admit(
    state: SandboxState,
    headers: Mapping[str, str],
    request: _Request,
    *,
    call: str | None,
    pipelines: bool,
    strict: bool,
    region_ok: bool,
) -> str | Outcome | None:
    """Who may send this, and what of it is kept: an error Outcome, the reason
    every message is silently dropped, or None to accept them all."""
    n = len(request.items)
    key = _key(headers, request.payload, bearer_ok=pipelines)
    if not key and not pipelines:
        return _error(
            400, "missing_write_key", "no write key: send it as the Basic auth username or as writeKey in the body"
        )
    expected = state.options.pipelines_api_key if pipelines else state.options.write_key
    if key != expected:
        if strict:
            return _error(401, "unauthorized", "the API key is not valid for this workspace")
        return INVALID_KEY if pipelines else UNKNOWN_SOURCE
    if not region_ok:
        if strict:
            return _error(401, "unauthorized", "the API key belongs to a workspace in the other region")
        return WRONG_REGION
    if request.oversize:
        # Pipelines without strict mode: "a 200 response, but the request will not go through".
        return request.oversize
    if n > MAX_BATCH_EVENTS:
        if strict:
            return _error(
                400, "too_many_events", f"a batch may hold at most {MAX_BATCH_EVENTS} events; this one has {n}"
            )
        return TOO_MANY_EVENTS
    return _strict_problem(request.items, call) if strict else None


def _strict_problem(items: list[Any], call: str | None) -> Outcome | None:
    """Strict mode: a 400 for the first message the Pipelines API would reject."""
    for i, m in enumerate(items):
        if call and isinstance(m, dict):
            # The path sets the type: per-call bodies need none (the official
            # Node Pipelines client sends none).
            m = {**m, "type": call}
        problems = [
            p
            for p in spec_problems(m, size=0)
            if p.severity == "error" and not (p.rule == "spec/no-identity" and identifies_by_email(m))
        ]
        if problems:
            where = f"batch[{i}]: " if call is None else ""
            return _error(400, "invalid_request", where + problems[0].message)
    return None


def _key(headers: Mapping[str, str], payload: dict, *, bearer_ok: bool) -> str | None:
    user = basic_user(headers.get("authorization"))
    if user:
        return user
    if bearer_ok:
        token = bearer_token(headers.get("authorization"))
        if token:
            return token
    key = payload.get("writeKey")
    return key if isinstance(key, str) and key else None
