"""Sending one batch: the request under the retry policy and rate limit, the
route's verdict per message, the dead-letter lines of what failed, and the
early stop when nothing can succeed (rejected credentials, a service down)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from cdpio_cli.replay.batching import Batch
from cdpio_cli.replay.deadletter import dead_letter_line
from cdpio_cli.replay.options import EXAMPLES, Example, ReplayResult
from cdpio_cli.replay.route import Route
from cdpio_cli.routes.segment import BatchVerdict
from cdpio_cli.transport import Attempt, RetryPolicy, TokenBucket, send
from cdpio_cli.transport.client import Client

# Batches in a row failing after every retry that stop a run nothing got through in, at least.
_DOWN_BATCHES = 5


def service_failure(status: int | None) -> bool:
    """The service's failure, after the retries: no answer (network error or
    timeout), 408 or a 5xx.  (429 and other 4xx are answers: rejections.)"""
    return status is None or status == 408 or status >= 500


class LatencySample:
    """Latencies for percentiles in bounded memory (Algorithm R)."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self.seen = 0
        self.values: list[float] = []
        self._rng = random.Random(7)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self.values[j] = value

    def percentiles(self) -> dict[str, float | None]:
        if not self.values:
            return {"p50": None, "p95": None, "p99": None}
        data = sorted(self.values)
        n = len(data)

        def pick(q: float) -> float:
            return round(data[min(n - 1, max(0, int(round(q * n + 0.5)) - 1))] * 1000.0, 2)

        return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


class Sender:
    """Sends batches (from several threads) and hands each resolved one to `complete`."""

    def __init__(
        self,
        route: Route,
        result: ReplayResult,
        lock: threading.Lock,
        stop: threading.Event,
        *,
        concurrency: int,
        complete: Callable[[Batch], None],
    ):
        self.route = route
        self.result = result
        self.lock = lock
        self.stop = stop
        self.concurrency = concurrency
        self.complete = complete
        self.latency = LatencySample()
        self.status_counts: dict[str, int] = {}
        self._any_accepted = False
        self._consecutive_down = 0
        self._down_throttled = False  # a 429 among the consecutive failures

    def send_batch(self, client: Client, policy: RetryPolicy, limiter: TokenBucket | None, b: Batch) -> None:
        if b.joined is not None:  # the ordinary lane, spooled joined as the request carries it
            spec = self.route.build_joined(b.joined)
        else:
            spec = self.route.build_request(b.items, lane=b.lane)
        attempt = send(client, spec, policy, limiter, cancel=self.stop)
        self._count_requests(attempt)
        if attempt.cancelled:
            if attempt.history:
                # Sent at least once but the outcome is unknown: leave it unresolved;
                # a resume re-sends it with the same messageIds.
                with self.lock:
                    self.result.sent += b.count
            return  # unresolved
        verdict = self.route.interpret(attempt, b.n_items)
        failed = _failed_messages(b, attempt, verdict)
        self._dead_letter(b, attempt, failed)
        b.failed = len(failed)
        b.accepted = b.count - b.failed
        if not verdict.accepted and service_failure(attempt.status):
            b.failed_unreachable = b.failed
        with self.lock:
            self.result.sent += b.count
            if b.accepted:
                self._any_accepted = True
        b.msgs, b.lines = None, []  # what failed is in dl_lines now; free the rest early
        self._check_abort(attempt, verdict.accepted)
        self.complete(b)

    def _count_requests(self, attempt: Attempt) -> None:
        res = self.result
        with self.lock:
            res.requests += attempt.attempts
            res.retried += attempt.retries
            for status, latency in zip(attempt.history, attempt.latencies, strict=False):
                key = "error" if status is None else str(status)
                self.status_counts[key] = self.status_counts.get(key, 0) + 1
                self.latency.add(latency)
                if status is not None:
                    res.responses += 1
                if status in (401, 403):
                    res.auth_failures += 1

    def _dead_letter(self, b: Batch, attempt: Attempt, failed: dict[int, str]) -> None:
        examples = self.result.failure_examples
        for mi, reason in sorted(failed.items()):
            file, line, data = b.message(mi)
            meta = {
                "reason": reason,
                "http_status": attempt.status,
                "attempts": attempt.attempts,
                "file": file,
                "line": line,
            }
            b.dl_lines.append(dead_letter_line(data, None, meta))
            if len(examples) < EXAMPLES:
                examples.append(Example(file, line, reason, attempt.status))

    def _check_abort(self, attempt: Attempt, accepted: bool) -> None:
        """Stop early when the rest cannot succeed and nothing ever was
        accepted: a credential rejection (401/403 is definitive), or several
        batches in a row that failed after every retry (the service is down)."""
        res = self.result
        with self.lock:
            if accepted:
                self._consecutive_down = 0
                self._down_throttled = False
            elif service_failure(attempt.status) or attempt.status == 429:
                self._consecutive_down += 1
                self._down_throttled = self._down_throttled or attempt.status == 429
            if accepted or self._any_accepted or self.stop.is_set():
                return
            if attempt.status in (401, 403):
                res.aborted = "credential"
                res.abort_reason = f"the service rejected the credentials: {attempt.describe_failure()}"
                self.stop.set()
            elif self._consecutive_down >= max(_DOWN_BATCHES, 2 * self.concurrency):
                if self._down_throttled:
                    # Reached, but refusing: a 429 is a rejection (exit 1), not "unreachable".
                    res.aborted = "rate_limited"
                    res.abort_reason = (
                        "the service kept answering 429 Too Many Requests after every "
                        f"retry: {attempt.describe_failure()}"
                    )
                else:
                    res.aborted = "unreachable"
                    res.abort_reason = f"the service could not be reached: {attempt.describe_failure()}"
                self.stop.set()


def _failed_messages(b: Batch, attempt: Attempt, verdict: BatchVerdict) -> dict[int, str]:
    """Message index -> why it failed."""
    failed: dict[int, str] = {}
    if not verdict.accepted:
        for mi in range(b.count):
            failed[mi] = verdict.reason or attempt.describe_failure()
        return failed
    for item, text in verdict.item_errors.items():
        mi = item if b.owners is None else b.owners[item]
        failed[mi] = f"{failed[mi]}; {text}" if mi in failed else text
    return failed
