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
from dataclasses import dataclass

import orjson

from cdpio_cli.fixtures import batch_shared
from cdpio_cli.messages import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES, spec_problems
from cdpio_cli.sandbox.auth import basic_user, bearer_token
from cdpio_cli.sandbox.state import SandboxState

UNKNOWN_SOURCE = "unknown_source"
INVALID_KEY = "invalid_api_key"
WRONG_REGION = "wrong_region"
TOO_MANY_EVENTS = "too_many_events_in_batch"
MESSAGE_TOO_LARGE = "message_too_large"
BATCH_TOO_LARGE = "batch_too_large"


@dataclass(frozen=True)
class Outcome:
    status: int
    body: bytes
    messages: int = 0
    headers: dict | None = None


_OK_SEGMENT = orjson.dumps({"success": True})
_OK_PIPELINES = b"{}"


def _error(status: int, code: str, message: str, messages: int = 0) -> Outcome:
    return Outcome(status, orjson.dumps({"code": code, "message": message}), messages)


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
    state: SandboxState, *, service: str, call: str | None, raw: bytes, headers, region_ok: bool, entry: dict
) -> Outcome:
    """Handle one POST to /{service}/v1/{call}; `call` None means batch/import."""
    pipelines = service == "pipelines"
    strict = pipelines and headers.get("x-strict-mode") == "1"
    lenient_size = pipelines and not strict
    ok = _OK_PIPELINES if pipelines else _OK_SEGMENT
    route = f"{service}.{call or 'batch'}"

    body = decode_body(raw, headers.get("content-encoding"))
    if body is None:
        return _error(400, "invalid_request", "the request body could not be decompressed")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error(400, "invalid_json", "the request body is not valid JSON")
    if not isinstance(payload, dict):
        return _error(400, "invalid_request", "the request body must be a JSON object")

    limit = MAX_MESSAGE_BYTES if call else MAX_BATCH_BYTES
    oversize = None
    if len(body) > limit:
        oversize = MESSAGE_TOO_LARGE if call else BATCH_TOO_LARGE
    if call:
        items = [payload]
        defaults = None
    else:
        items = payload.get("batch")
        if not isinstance(items, list):
            return _error(400, "invalid_request", "a batch needs a `batch` array")
        defaults = batch_shared(payload) or None
        if oversize is None and len(body) > MAX_MESSAGE_BYTES:
            for m in items:
                if len(orjson.dumps(m)) > MAX_MESSAGE_BYTES:
                    oversize = MESSAGE_TOO_LARGE
                    break
    n = len(items)
    entry["messages"] = n
    if oversize and not lenient_size:
        what = "a message" if oversize == MESSAGE_TOO_LARGE else "the batch"
        limit_kb = (MAX_MESSAGE_BYTES if oversize == MESSAGE_TOO_LARGE else MAX_BATCH_BYTES) // 1024
        return _error(400, "request_too_large", f"{what} is over the {limit_kb} KB limit", n)

    key = _key(headers, payload, bearer_ok=pipelines)
    if not key and not pipelines:
        return _error(
            400, "missing_write_key", "no write key: send it as the Basic auth username or as writeKey in the body", n
        )
    expected = state.options.pipelines_api_key if pipelines else state.options.write_key
    drop_all = None
    if key != expected:
        if strict:
            return _error(401, "unauthorized", "the API key is not valid for this workspace", n)
        drop_all = INVALID_KEY if pipelines else UNKNOWN_SOURCE
    elif not region_ok:
        if strict:
            return _error(401, "unauthorized", "the API key belongs to a workspace in the other region", n)
        drop_all = WRONG_REGION
    elif oversize:
        # Pipelines without strict mode: "a 200 response, but the request will not go through".
        drop_all = oversize
    elif n > MAX_BATCH_EVENTS:
        if strict:
            return _error(
                400, "too_many_events", f"a batch may hold at most {MAX_BATCH_EVENTS} events; this one has {n}", n
            )
        drop_all = TOO_MANY_EVENTS
    elif strict:
        for i, m in enumerate(items):
            if call and isinstance(m, dict):
                # The path sets the type: per-call bodies need none (the official
                # Node Pipelines client sends none).
                m = {**m, "type": call}
            problems = [
                p
                for p in spec_problems(m, size=0)
                if p.severity == "error" and not (p.rule == "spec/no-identity" and _email_identify(m))
            ]
            if problems:
                where = f"batch[{i}]: " if call is None else ""
                return _error(400, "invalid_request", where + problems[0].message, n)

    state.accept(body, items, route, entry, drop_all=drop_all, force_type=call, defaults=defaults)
    return Outcome(200, ok, n)


def _key(headers, payload: dict, *, bearer_ok: bool) -> str | None:
    user = basic_user(headers.get("authorization"))
    if user:
        return user
    if bearer_ok:
        token = bearer_token(headers.get("authorization"))
        if token:
            return token
    key = payload.get("writeKey")
    return key if isinstance(key, str) and key else None


def _email_identify(msg) -> bool:
    """Pipelines accepts an identify by traits.email alone (pipelines.json
    `#/paths/~1identify/post/description`; docs/contracts.md)."""
    return (
        isinstance(msg, dict)
        and msg.get("type") == "identify"
        and isinstance(msg.get("traits"), dict)
        and bool(msg["traits"].get("email"))
    )
