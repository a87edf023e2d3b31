"""The request-rate limiter: a thread-safe token bucket with absolute slots."""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Thread-safe limiter: at most `rate` acquisitions per second.

    Each caller reserves the next free time slot under the lock and sleeps
    until it outside the lock.  Slots are absolute (start + k/rate), so sleep
    overshoot does not accumulate and the achieved rate stays on target over a
    run.  `burst` > 1 lets an idle limiter catch up by that many slots, but
    never past the rate itself: no one-second window ever holds more than
    `rate` slots (for a whole-number rate; at least one), so a server
    counting requests per second never sees a burst above it.
    """

    def __init__(self, rate: float, burst: float = 1.0, *, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self.burst = max(1.0, float(burst))
        self._clock = clock
        self._next = 0.0
        # The newest `per_second` slots: the next one starts no earlier than
        # one second after the oldest of them.
        self.per_second = max(1, math.floor(self.rate + 1e-9))
        self._recent: collections.deque[float] = collections.deque(maxlen=self.per_second)
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Reserve a slot; return the clock time at which it may be used."""
        with self._lock:
            now = self._clock()
            slot = max(self._next, now - (self.burst - 1.0) * self.interval)
            recent = self._recent
            if len(recent) == self.per_second and slot < recent[0] + 1.0:
                slot = recent[0] + 1.0
            # A slot in the past is used now: the window counts when it is used.
            recent.append(slot if slot > now else now)
            self._next = slot + self.interval
            return slot

    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Block until a slot is ours; return the seconds waited."""
        slot = self.reserve()
        delay = slot - self._clock()
        if delay > 0:
            if cancel is not None:
                cancel.wait(delay)
            else:
                time.sleep(delay)
            return delay
        return 0.0
