"""Time bounds: user-given timeouts and a command's `Deadline`.

The whole-request bound every socket operation obeys lives with each wire:
wire.py's `_Bound`, and via_httpx's `request_bound_until` for httpx.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from cdpio_cli.errors import UsageError

# A per-request timeout above an hour is a typo, and `inf`/`1e300` crash the
# socket layer.
MAX_TIMEOUT_SECONDS = 3600.0


def check_timeout(value: float, flag: str = "--timeout", *, maximum: float = MAX_TIMEOUT_SECONDS) -> float:
    """A timeout given by the user: finite, positive, at most `maximum` seconds."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{flag} {value!r} is not a number of seconds", hint=f"e.g. {flag} 10") from None
    if not math.isfinite(seconds) or seconds <= 0 or seconds > maximum:
        raise UsageError(
            f"{flag} must be a positive number of seconds up to {maximum:g}, not {value!r}", hint=f"e.g. {flag} 10"
        )
    return seconds


class Deadline:
    """A point in time (monotonic clock) after which a command stops asking."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic, owner: str = "the command's"):
        self.seconds = float(seconds)
        self.owner = owner  # whose deadline, for messages: "the command's", "the batch's"
        self._clock = clock
        self.end = clock() + self.seconds

    def remaining(self) -> float:
        return self.end - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def describe(self) -> str:
        return f"{self.owner} {self.seconds:g} s deadline passed"
