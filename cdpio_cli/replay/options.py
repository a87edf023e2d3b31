"""What a replay is asked to do (`ReplayOptions`, with the defaults of
replay/defaults.py) and what it found (`ReplayResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdpio_cli.errors import ExitCode
from cdpio_cli.replay.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE,
    DEFAULT_TIMEOUT,
)

# Examples of each kind kept for the report.
EXAMPLES = 5


@dataclass(eq=False, repr=False)
class ReplayOptions:
    """The knobs of one replay run (flags and config joined)."""

    rate: float | None = DEFAULT_RATE  # requests/s; None or 0 = unlimited
    concurrency: int = DEFAULT_CONCURRENCY
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: float = DEFAULT_TIMEOUT
    base_delay: float = 0.5  # retry backoff base (full jitter)
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    dead_letter: str | None = None  # default: <first input>.dead-letter.ndjson
    checkpoint: str | None = None
    skip_invalid: bool = False
    new_message_ids: bool = False
    id_prefix: str | None = None
    shift_timestamps: bool = False
    dry_run: bool = False
    force: bool = False  # truncate a non-empty dead-letter file (default: append)
    # Other files the command writes (e.g. ("--junit", path)): checked with
    # the dead-letter file and checkpoint before any work.
    other_outputs: list[tuple[str, str]] = field(default_factory=list)
    checkpoint_interval: float = 0.25  # seconds between checkpoint writes


@dataclass(eq=False, repr=False)
class Example:
    """One failed or invalid message shown as an example in the summary."""

    file: str
    line: int
    reason: str
    http_status: int | None = None


@dataclass(eq=False, repr=False)
class ReplayResult:
    """The counts and examples a replay run reports."""

    route: str = ""
    read: int = 0
    invalid: int = 0
    sent: int = 0
    # Counted when committed: in input order, up to the first batch still
    # unresolved, which is what the checkpoint covers.
    accepted: int = 0
    failed: int = 0
    retried: int = 0
    dropped_by_mapping: int = 0
    requests: int = 0
    not_sent: int = 0  # not resolved by this run (interruption or abort)
    # Answered 2xx, but behind a batch left unresolved by a stop: not
    # committed, so a resume re-sends them (same messageIds; the service drops
    # them as duplicates).  Part of `not_sent`.
    accepted_uncommitted: int = 0
    skipped_resumed: int = 0  # resolved by an earlier run (checkpoint)
    total: int | None = None  # messages in the input (from the pre-pass)
    status_counts: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p95": None, "p99": None})
    events_per_second: float = 0.0
    duration: float = 0.0
    send_seconds: float = 0.0
    dead_letter: str | None = None  # path, when it holds any line
    dead_lettered: int = 0  # lines written by this run
    dead_letter_total: int = 0  # lines in the file, earlier runs included
    # Lines already in the dead-letter file from another run, kept: this run
    # appended after them (no --force).
    dead_letter_prior: int = 0
    checkpoint: str | None = None
    complete: bool = False
    dry_run: bool = False
    would_send: int = 0
    stopped_invalid: bool = False  # invalid input, nothing sent
    interrupted: bool = False
    interrupted_reading: bool = False  # stopped in the pre-pass: nothing was sent
    aborted: str | None = None  # "credential" | "unreachable" | "rate_limited"
    abort_reason: str | None = None
    invalid_examples: list[Example] = field(default_factory=list)
    failure_examples: list[Example] = field(default_factory=list)
    drop_examples: list[Example] = field(default_factory=list)
    auth_failures: int = 0  # requests answered 401/403
    # Failed messages whose request got no answer, a timeout (408) or a 5xx
    # after its last retry (part of `failed`).
    failed_unreachable: int = 0
    responses: int = 0  # requests that got any HTTP answer

    def exit_code(self) -> int:
        if self.stopped_invalid:
            return ExitCode.USAGE
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.dry_run:
            return ExitCode.CHECK_FAILED if self.invalid else ExitCode.OK
        if self.aborted == "credential" or (self.requests and self.auth_failures == self.requests):
            return ExitCode.CREDENTIAL
        if self.aborted == "unreachable" or (self.requests and self.responses == 0):
            return ExitCode.UNREACHABLE
        if not self.accepted and self.failed and self.failed_unreachable == self.failed:
            # Nothing got through and every failure was the service's (5xx,
            # timeout, network) after the retries: the messages are in the
            # dead-letter file, but the finding is "could not be reached".
            return ExitCode.UNREACHABLE
        if self.dead_letter_total or self.dead_lettered or self.not_sent:
            return ExitCode.CHECK_FAILED
        return ExitCode.OK

    def summary(self) -> dict[str, Any]:
        """What `--json` carries in `summary` (a stable interface)."""
        return {
            "route": self.route,
            "read": self.read,
            "invalid": self.invalid,
            "sent": self.sent,
            "accepted": self.accepted,
            "accepted_uncommitted": self.accepted_uncommitted,
            "failed": self.failed,
            "retried": self.retried,
            "dropped_by_mapping": self.dropped_by_mapping,
            "not_sent": self.not_sent,
            "skipped_resumed": self.skipped_resumed,
            "requests": self.requests,
            "status_counts": dict(sorted(self.status_counts.items())),
            "latency_ms": self.latency_ms,
            "events_per_second": round(self.events_per_second, 1),
            "duration_seconds": round(self.duration, 3),
            "dead_letter": self.dead_letter,
            "dead_lettered": self.dead_letter_total,
            "dead_letter_prior_lines": self.dead_letter_prior,
            "checkpoint": self.checkpoint,
            "complete": self.complete,
            "dry_run": self.dry_run,
            **({"would_send": self.would_send} if self.dry_run else {}),
            **({"aborted": self.aborted, "abort_reason": self.abort_reason} if self.aborted else {}),
            "interrupted": self.interrupted,
        }


@dataclass(eq=False, repr=False)
class Progress:
    """A snapshot of a replay run's counts for the progress display."""

    total: int | None
    done: int  # messages resolved (accepted, failed, dropped, invalid)
    accepted: int
    failed: int
    retried: int
    events_per_second: float


# ---------------------------------------------------------------------------
# Inputs
