"""Reading credentials from requests (never logging them)."""

from __future__ import annotations

import base64
import binascii
import hmac


def basic_pair(header: str | None) -> tuple[str, str] | None:
    """`Authorization: Basic base64(user:password)` -> (user, password)."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, _, password = decoded.partition(":")
    return user, password


def basic_user(header: str | None) -> str | None:
    pair = basic_pair(header)
    return pair[0] if pair else None


def bearer_token(header: str | None) -> str | None:
    if not header or header[:7].lower() != "bearer ":
        return None
    return header[7:]


def same(given: str | None, expected: str) -> bool:
    """Exact, constant-time comparison: a stray space or newline is a different key."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
