"""Credential-free texts: masking secrets, and describing transport errors.

Transport exception messages can contain URLs (the Segment settings lookup has
the write key in its path) and header values, so every text is sanitised
before it leaves the transport.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from cdpio_cli.credentials import mask_all, redact, secret_forms
from cdpio_cli.transport import errors
from cdpio_cli.transport.url import URL

_URL_RE = re.compile(r"(?P<base>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/'\"<>]+)(?P<rest>[^\s'\"<>]*)")


def mask_secrets(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """Replace the given and the registered secrets by their masks."""
    if secrets:
        text = mask_all(text, _forms_longest_first(tuple(secrets)))
    masked: str = redact(text)  # credentials.redact keeps a str a str
    return masked


@functools.lru_cache(maxsize=64)
def _forms_longest_first(secrets: tuple[str, ...]) -> tuple[str, ...]:
    # Called for every request of a replay: the base64 forms are worth keeping.
    return tuple(sorted(secret_forms(secrets), key=len, reverse=True))


def sanitize(text: str | None, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """Mask the given and registered secrets; drop URL paths and queries
    (exception texts may carry a full URL)."""
    if not text:
        return ""
    text = mask_secrets(text, secrets)
    text = _URL_RE.sub(lambda m: m.group("base"), text)
    # Basic auth tokens are base64 of a secret: never print one.
    text = re.sub(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._-]{6,}", r"\1 [redacted]", text)
    return mask_secrets(text)


# The words describe_exception and send use for a service that took the
# connection but did not answer in time: up, but too slow.
_SLOW_ANSWER = ("timed out waiting for a response", "no complete response from")


def answered_too_slowly(error: str | None) -> bool:
    """Did this transport error come from a service that was reached but slow?"""
    lowered = (error or "").lower()
    return any(words in lowered for words in _SLOW_ANSWER)


def describe_exception(exc: BaseException, url: URL | str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """A short, credential-free description of a transport error (cdpio's
    exceptions: the httpx path translates httpx's at its boundary)."""
    host = urlsplit(str(url)).netloc.rsplit("@", 1)[-1]
    if isinstance(exc, errors.ConnectTimeout):
        text = f"timed out connecting to {host}"
    elif isinstance(exc, errors.ReadTimeout):
        text = f"timed out waiting for a response from {host}"
    elif isinstance(exc, errors.WriteTimeout):
        text = f"timed out sending the request to {host}"
    elif isinstance(exc, errors.PoolTimeout):
        text = f"timed out waiting for a free connection to {host}"
    elif isinstance(exc, errors.ConnectError):
        detail = sanitize(str(exc), secrets)
        text = f"could not connect to {host}" + (f" ({detail})" if detail else "")
    elif isinstance(exc, errors.RemoteProtocolError):
        text = f"{host} closed the connection without a complete response"
    elif isinstance(exc, errors.LocalProtocolError):
        # h11 puts the offending header (possibly a key with a newline) in the message.
        text = "the request could not be encoded (a credential may contain a newline or control character)"
    elif isinstance(exc, errors.ReadError):
        text = f"connection to {host} failed while reading the response"
    elif isinstance(exc, errors.WriteError):
        text = f"connection to {host} failed while sending the request"
    else:
        detail = sanitize(str(exc), secrets)
        text = f"{type(exc).__name__} talking to {host}" + (f": {detail}" if detail else "")
    return sanitize(text, secrets)
