"""The human error text in Segment and Customer.io error bodies."""

from __future__ import annotations

import re
from typing import Any

import orjson

from cdpio_cli.transport.redaction import sanitize


def _clip(text: str, limit: int = 300) -> str:
    """Shorten an already-masked text (masking after a cut would miss a
    secret cut in half and print most of it)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def service_error(body: bytes | str | None, content_type: str | None = None) -> str | None:
    """The human error text in a service response body, or None.

    Segment: JSON `{code, message}` or plain text.  Customer.io: v1
    `meta.error` / `meta.errors[]`, v2 `errors[{reason, field, message}]`.
    """
    if not body:
        return None
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8", errors="replace")
        except Exception:  # pragma: no cover - decode with replace cannot fail
            return None
    else:
        text = body
    data: Any = None
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"'):
        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            data = None
    if data is None:
        if content_type and "html" in content_type.lower():
            m = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
            return _clip(sanitize(m.group(1))) if m else None
        return _clip(sanitize(stripped)) or None
    return _error_from_json(data)


def _error_from_json(data: Any) -> str | None:
    if isinstance(data, str):
        return _clip(sanitize(data)) or None
    if isinstance(data, list):
        parts = [p for p in (_error_from_json(x) for x in data[:5]) if p]
        return _clip(sanitize("; ".join(parts))) if parts else None
    if not isinstance(data, dict):
        return None
    meta = data.get("meta")
    if isinstance(meta, dict):
        if isinstance(meta.get("error"), str) and meta["error"]:
            return _clip(sanitize(meta["error"]))
        errs = meta.get("errors")
        if isinstance(errs, list) and errs:
            return _clip(sanitize("; ".join(str(e) for e in errs[:5])))
        if isinstance(errs, dict) and errs:
            return _clip(sanitize("; ".join(f"{k}: {v}" for k, v in list(errs.items())[:5])))
    errs = data.get("errors")
    if isinstance(errs, list) and errs:
        parts = []
        for e in errs[:5]:
            parts.append(_format_v2_error(e) if isinstance(e, dict) else str(e))
        more = f" (+{len(errs) - 5} more)" if len(errs) > 5 else ""
        return _clip(sanitize("; ".join(parts) + more))
    message = data.get("message") or data.get("error") or data.get("detail")
    code = data.get("code")
    if isinstance(message, str) and message:
        prefix = f"{code}: " if isinstance(code, (str, int)) and str(code) not in ("", "unknown") else ""
        return _clip(sanitize(prefix + message))
    if isinstance(message, dict):
        return _error_from_json(message)
    return None


def _format_v2_error(err: dict) -> str:
    message = str(err.get("message") or err.get("reason") or "error")
    field_name = err.get("field")
    reason = err.get("reason")
    text = message
    if field_name:
        text = f"{field_name}: {text}"
    if reason and reason != message:
        text = f"{text} ({reason})"
    return text


def batch_errors(body: bytes | None) -> dict[int, str]:
    """Customer.io v2 `/batch` 207: {batch_index: error text} for failed operations."""
    if not body:
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    errs = data.get("errors") if isinstance(data, dict) else None
    out: dict[int, str] = {}
    if not isinstance(errs, list):
        return out
    for e in errs:
        if not isinstance(e, dict):
            continue
        idx = e.get("batch_index")
        if isinstance(idx, bool) or not isinstance(idx, int):
            continue
        text = _clip(sanitize(_format_v2_error(e)))
        out[idx] = f"{out[idx]}; {text}" if idx in out else text
    return out
