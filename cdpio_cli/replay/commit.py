"""The ordered commit: batches resolve in any order (several senders), but
are committed in input order, so the checkpoint and the dead-letter file only
ever cover a prefix of the input: a killed run resumes exactly."""

from __future__ import annotations

import threading
from collections.abc import Callable

from cdpio_cli.replay.batching import Batch
from cdpio_cli.replay.checkpoint import ResumeState
from cdpio_cli.replay.deadletter import DeadLetterFile
from cdpio_cli.replay.options import ReplayResult


class Committer:
    def __init__(
        self,
        result: ReplayResult,
        lock: threading.Lock,
        state: ResumeState,
        dead_letter: DeadLetterFile | None,
        window: threading.BoundedSemaphore,
        checkpoint: Callable[[], None] | None,
    ):
        self.result = result
        self.lock = lock
        self.state = state
        self.dead_letter = dead_letter  # None: a dry run writes nothing
        self.window = window
        self.checkpoint = checkpoint  # writes one when due
        self.pending: dict[int, Batch] = {}  # resolved, not yet committed (by seq)
        self.next_commit = 0

    def complete(self, b: Batch) -> None:
        """Mark a batch resolved; commit every resolved batch in input order."""
        b.items, b.joined = [], None
        with self.lock:
            self.pending[b.seq] = b
            while self.next_commit in self.pending:
                done = self.pending.pop(self.next_commit)
                self.next_commit += 1
                self._commit(done)

    def accepted_uncommitted(self) -> int:
        """Answered 2xx, but behind a batch left unresolved."""
        return sum(b.accepted for b in self.pending.values())

    def _commit(self, done: Batch) -> None:
        res, totals = self.result, self.state.totals
        if done.dl_lines and self.dead_letter is not None:
            self.dead_letter.append(done.dl_lines)
            res.dead_letter_total += len(done.dl_lines)
            res.dead_lettered += len(done.dl_lines)
        res.invalid += done.invalid
        res.dropped_by_mapping += done.dropped
        res.accepted += done.accepted
        res.failed += done.failed
        res.failed_unreachable += done.failed_unreachable
        self.state.done = done.end_pos
        for key, value in (
            ("accepted", done.accepted),
            ("failed", done.failed),
            ("invalid", done.invalid),
            ("dropped_by_mapping", done.dropped),
        ):
            totals[key] = totals.get(key, 0) + value
        self.window.release()
        if self.checkpoint is not None:
            self.checkpoint()
