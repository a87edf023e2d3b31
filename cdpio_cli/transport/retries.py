"""Which failures are retried, how long to wait, and `Retry-After`."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone


# eq=False, repr=False: nothing compares or prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).
@dataclass(frozen=True, eq=False, repr=False)
class RetryPolicy:
    """Which failures are retried and how long to wait.

    Waits are exponential with full jitter: uniform(0, min(max_delay,
    base_delay * 2**n)).  A `Retry-After` header wins (capped at
    `max_retry_after`).  `bounded`: each logical request, retries and waits
    included, ends within `total_bound(timeout)` of its first attempt (a
    `Retry-After` that would outlast it is not waited for).
    """

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    bounded: bool = False

    def total_bound(self, timeout: float) -> float:
        """Seconds one logical request may take in all under this policy with
        request timeout `timeout` (docs/security.md): each attempt, one more
        for a redirect, and a backoff wait of at most `max_delay` per retry."""
        return (self.max_retries + 2) * timeout + self.max_retries * self.max_delay

    @staticmethod
    def retryable_status(status: int | None) -> bool:
        return status is not None and (status in (408, 429) or 500 <= status <= 599)

    def delay(
        self, retry_number: int, retry_after: float | None = None, rng: Callable[[float, float], float] = random.uniform
    ) -> float:
        """Seconds to wait before retry number `retry_number` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, retry_number - 1)))
        return rng(0.0, ceiling)


NO_RETRY = RetryPolicy(max_retries=0)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # here: only an HTTP-date Retry-After needs email.*

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
