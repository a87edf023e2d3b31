"""One replay job (`Replay`): the phases of a run in order, and the threads of
the main pass (senders, each taking the next spooled batch and sending it)."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from cdpio_cli.errors import UsageError
from cdpio_cli.paths import check_outputs, open_private
from cdpio_cli.replay.batching import Batch, Batcher, BatchSinks
from cdpio_cli.replay.checkpoint import (
    BAD_CHECKPOINT_HINT,
    ResumeState,
    check_dead_letter_length,
    check_resumable,
    checkpoint_document,
    fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from cdpio_cli.replay.commit import Committer
from cdpio_cli.replay.deadletter import DeadLetterFile, default_dead_letter_path
from cdpio_cli.replay.inputs import Source, prepare_sources
from cdpio_cli.replay.options import Progress, ReplayOptions, ReplayResult
from cdpio_cli.replay.rewrite import Rewriter
from cdpio_cli.replay.route import Route
from cdpio_cli.replay.scan import Scanner, ScanTotals, newest_timestamp
from cdpio_cli.replay.send import Sender
from cdpio_cli.replay.spool import DISK_FULL
from cdpio_cli.transport import RetryPolicy, TokenBucket, check_timeout, make_client
from cdpio_cli.transport.client import Client


class Replay:
    """One replay job.  `run()` returns a ReplayResult; it raises UsageError
    for bad flags, an unusable checkpoint or unreadable files."""

    def __init__(
        self,
        paths: list[str],
        route: Route,
        options: ReplayOptions,
        *,
        client: Client | None = None,
        stdin: IO[Any] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval: float = 0.1,
        on_start: Callable[[ReplayResult], None] | None = None,
    ):
        self.paths = list(paths)
        self.route = route
        self.opts = options
        self.client = client
        self.stdin = stdin
        self.on_progress = on_progress
        self.on_start = on_start
        self.progress_interval = progress_interval
        self.result = ReplayResult(
            route=getattr(route, "name", ""), dry_run=options.dry_run, checkpoint=options.checkpoint
        )
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._ckpt_written = 0.0
        self._t0 = 0.0

    def _check_options(self) -> None:
        o = self.opts
        if o.concurrency < 1 or o.concurrency > 64:
            raise UsageError("--concurrency must be between 1 and 64")
        # Written so that NaN fails too (every comparison with NaN is false).
        if o.rate is not None and not 0 <= o.rate < math.inf:
            raise UsageError(f"--rate must be a finite number of requests per second (0 for no limit), not {o.rate!r}")
        if o.max_retries < 0 or o.max_retries > 20:
            raise UsageError("--max-retries must be between 0 and 20")
        check_timeout(o.timeout, "--timeout")
        if o.id_prefix is not None and (o.id_prefix.strip() != o.id_prefix or not o.id_prefix):
            raise UsageError("--id-prefix must be non-empty and have no surrounding whitespace")

    # -- the phases of a run ------------------------------------------------------
    def run(self) -> ReplayResult:
        self._check_options()
        started = time.perf_counter()
        spool_dir = tempfile.mkdtemp(prefix="cdpio-replay-")
        try:
            return self._run(started, spool_dir)
        finally:
            shutil.rmtree(spool_dir, ignore_errors=True)

    def _run(self, started: float, spool_dir: str) -> ReplayResult:
        o, res = self.opts, self.result
        try:
            sources = prepare_sources(self.paths, self.stdin, spool_dir)
        except KeyboardInterrupt:
            return self._interrupted_reading(started)
        self._sources = sources
        ckpt, dl_path = self._check_files(sources)
        # Only a checkpoint reads them (to resume, and in what it writes).
        self._fingerprints = (
            [fingerprint(s.read_path) if s.display != "-" else {} for s in sources] if self._writes_checkpoint else []
        )
        state = self._resume_state(ckpt, sources, dl_path)
        res.dead_letter_total = int(state.totals.get("dead_lettered", 0))
        res.checkpoint = o.checkpoint
        spool_path = os.path.join(spool_dir, "messages.spool")
        try:
            if o.shift_timestamps and state.shift is None:
                newest = newest_timestamp(sources, state.skip)
                state.shift = (datetime.now(timezone.utc) - newest) if newest is not None else timedelta(0)
            totals = self._prescan(sources, state, spool_dir, spool_path)
        except KeyboardInterrupt:
            return self._interrupted_reading(started)
        self._records = totals.records
        res.skipped_resumed = sum(state.skip)
        res.total = totals.count
        if totals.invalid and not o.skip_invalid:
            res.stopped_invalid = True
            res.invalid = totals.invalid
            res.read = totals.count
            res.duration = time.perf_counter() - started
            return res
        self._state = state
        self._dead_letter = self._open_dead_letter(dl_path, state, resuming=ckpt is not None)
        if self._writes_checkpoint:
            self._write_checkpoint(complete=False, force=True)
        if self.on_start is not None:
            self.on_start(res)
        self._main_pass(spool_path)
        self._finish(dl_path)
        res.duration = time.perf_counter() - started
        return res

    @property
    def _writes_checkpoint(self) -> bool:
        return bool(self.opts.checkpoint) and not self.opts.dry_run

    def _check_files(self, sources: list[Source]) -> tuple[dict[str, Any] | None, str]:
        """Every file this run reads and writes, together, before any work;
        returns the checkpoint to resume from (if any) and the dead-letter path."""
        o = self.opts
        if o.checkpoint and any(s.display == "-" for s in sources):
            raise UsageError(
                "--checkpoint cannot resume input read from stdin", hint="write the input to a file and replay the file"
            )
        inputs = [s.read_path for s in sources if s.display != "-"]
        # The checkpoint is read before the output check: it names the
        # dead-letter file of the run it records.
        ckpt = None
        if o.checkpoint and not o.dry_run:
            check_outputs([("--checkpoint", o.checkpoint)], inputs)
            ckpt = load_checkpoint(o.checkpoint)
        first = sources[0] if sources else None
        dl_path = o.dead_letter or default_dead_letter_path(
            first.display if first else None, first.read_path if first else None
        )
        if ckpt is not None and o.dead_letter is None and ckpt.get("dead_letter"):
            dl_path = ckpt["dead_letter"]
        outputs = list(o.other_outputs)
        if not o.dry_run:
            outputs += [("--dead-letter", dl_path)]
            if o.checkpoint:
                outputs += [("--checkpoint", o.checkpoint)]
        check_outputs(outputs, inputs)
        return ckpt, dl_path

    def _resume_state(self, ckpt: dict[str, Any] | None, sources: list[Source], dl_path: str) -> ResumeState:
        if ckpt is None or not self.opts.checkpoint:
            return ResumeState.fresh(len(sources))
        o, path = self.opts, self.opts.checkpoint
        flags = (
            ("route", self.result.route),
            ("id_prefix", o.id_prefix),
            ("new_message_ids", o.new_message_ids),
            ("shift_timestamps", o.shift_timestamps),
        )
        check_resumable(ckpt, path, [s.key for s in sources], self._fingerprints, flags)
        state = ResumeState.from_checkpoint(ckpt)
        check_dead_letter_length(path, dl_path, state.dead_letter_bytes)
        return state

    def _prescan(self, sources: list[Source], state: ResumeState, spool_dir: str, spool_path: str) -> ScanTotals:
        o = self.opts
        rewriter = Rewriter(seed=state.seed, new_message_ids=o.new_message_ids, id_prefix=o.id_prefix, shift=None)
        scanner = Scanner(self.route, o, self.result.invalid_examples)
        try:
            with open_private(spool_path, truncate=True, buffering=1 << 20) as spool:
                totals = scanner.scan(sources, state.skip, rewriter, state.shift, spool)
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            raise UsageError(
                f"cannot write the replay spool in {spool_dir}: {exc.strerror}",
                hint="replay parses the input once and spools it (about the size of the "
                "uncompressed input); set TMPDIR to a disk with more free space",
            ) from None
        for source, done, count in zip(sources, state.skip, totals.records, strict=False):
            if done > count:
                # A checkpoint never records more than the input holds.
                raise UsageError(
                    f"{o.checkpoint}: the checkpoint says {done:,} message(s) of "
                    f"{source.display} are done, but it holds {count:,}",
                    hint=BAD_CHECKPOINT_HINT,
                )
        return totals

    def _open_dead_letter(self, dl_path: str, state: ResumeState, *, resuming: bool) -> DeadLetterFile | None:
        """None for a dry run (it writes nothing)."""
        if self.opts.dry_run:
            return None
        dead_letter = DeadLetterFile(dl_path, state.dead_letter_bytes, checkpoint=self.opts.checkpoint)
        self.result.dead_letter_prior = dead_letter.prepare(resuming=resuming, force=self.opts.force)
        state.dead_letter_bytes = dead_letter.offset
        return dead_letter

    def _main_pass(self, spool_path: str) -> None:
        send_started = time.perf_counter()
        try:
            with open(spool_path, "rb", buffering=1 << 20) as spool:
                self._pump(spool)
        finally:
            self.result.send_seconds = time.perf_counter() - send_started
            if self._dead_letter is not None:
                self._dead_letter.close()

    def _finish(self, dl_path: str) -> None:
        o, res = self.opts, self.result
        res.latency_ms = self._sender.latency.percentiles()
        res.status_counts = dict(self._sender.status_counts)
        if res.send_seconds > 0:
            res.events_per_second = (res.sent if not o.dry_run else res.would_send) / res.send_seconds
        res.complete = not (res.interrupted or res.aborted or self.stop.is_set())
        if not res.complete:
            # Not resolved by this run (never sent, or in flight at the stop):
            # a resume from the checkpoint sends them.
            resolved = res.invalid + res.dropped_by_mapping + res.accepted + res.failed
            res.not_sent = max(0, (res.total or 0) - resolved)
            # Answered but behind an unresolved batch: never committed.
            res.accepted_uncommitted = self._committer.accepted_uncommitted()
        if self._writes_checkpoint:
            self._write_checkpoint(complete=res.complete, force=True)
        if res.dead_letter_total:
            res.dead_letter = dl_path

    def _interrupted_reading(self, started: float) -> ReplayResult:
        """Ctrl-C or SIGTERM before the first request: nothing was sent."""
        res = self.result
        res.interrupted = res.interrupted_reading = True
        res.duration = time.perf_counter() - started
        return res

    def _write_checkpoint(self, *, complete: bool, force: bool = False) -> None:
        path = self.opts.checkpoint
        now = time.monotonic()
        if path is None or (not force and now - self._ckpt_written < self.opts.checkpoint_interval):
            return
        state = self._state
        if self._dead_letter is not None:
            self._dead_letter.sync()  # the lines the checkpoint claims are on disk first
            state.dead_letter_bytes = self._dead_letter.offset
        data = checkpoint_document(
            route=self.result.route,
            keys=[s.key for s in self._sources],
            records=self._records,
            fingerprints=self._fingerprints,
            state=state,
            flags={
                "id_prefix": self.opts.id_prefix,
                "new_message_ids": self.opts.new_message_ids,
                "shift_timestamps": self.opts.shift_timestamps,
            },
            dead_letter=self._dead_letter.path if self._dead_letter is not None else "",
            dead_lettered=self.result.dead_letter_total,
            complete=complete,
        )
        save_checkpoint(path, data)
        self._ckpt_written = now

    # -- the main pass: sender threads taking batches from the spool ----------------
    def _pump(self, spool: IO[bytes]) -> None:
        o = self.opts
        self._reader_error: BaseException | None = None
        window = threading.BoundedSemaphore(o.concurrency * 4)  # batches not yet committed, at most
        self._committer = Committer(
            self.result,
            self._lock,
            self._state,
            self._dead_letter,
            window,
            (lambda: self._write_checkpoint(complete=False)) if self._writes_checkpoint else None,
        )
        self._sender = Sender(
            self.route, self.result, self._lock, self.stop, concurrency=o.concurrency, complete=self._committer.complete
        )
        sinks = BatchSinks(_no_put, self._committer.complete, window, self.stop, self._lock, self.result)
        displays = [s.display for s in self._sources]
        batcher = Batcher(displays, self._state.skip, sinks, dry_run=o.dry_run)
        batcher.open(spool)
        own_client = self.client is None and not o.dry_run
        client = make_client(o.timeout, max_connections=o.concurrency) if own_client else self.client
        try:
            self._run_threads(batcher, client)
        finally:
            if own_client and client is not None:
                client.close()
        if self._reader_error is not None:
            raise self._reader_error

    def _run_threads(self, batcher: Batcher, client: Client | None) -> None:
        o = self.opts
        policy = RetryPolicy(
            max_retries=o.max_retries,
            base_delay=o.base_delay,
            max_delay=o.max_delay,
            max_retry_after=o.max_retry_after,
            bounded=True,
        )  # each batch ends within policy.total_bound(timeout)
        # A small burst (50 ms of slots) lets senders win back time lost to
        # scheduling jitter; the bucket never lets it exceed the rate within
        # any one second, the first one included.
        limiter = TokenBucket(o.rate, burst=replay_burst(o.rate)) if o.rate else None
        if o.dry_run:
            # Nothing to send: one thread reads the spool through (take resolves every batch).
            reader = threading.Thread(target=self._take, args=(batcher,), name="cdpio-replay-reader", daemon=True)
            threads = [reader]
        else:
            assert client is not None  # made by _pump when the run sends
            threads = [
                threading.Thread(
                    target=self._send_loop,
                    args=(batcher, client, policy, limiter),
                    name=f"cdpio-replay-sender-{i}",
                    daemon=True,
                )
                for i in range(o.concurrency)
            ]
        self._t0 = time.perf_counter()
        for t in threads:
            t.start()
        try:
            while True:
                alive = [t for t in threads if t.is_alive()]
                if not alive:
                    break
                alive[0].join(self.progress_interval)
                self._report_progress()
        except KeyboardInterrupt:
            self.result.interrupted = True
            # Senders finish their request in flight and take no other batch.
            self.stop.set()
            for t in threads:
                t.join()
        self._report_progress()

    def _report_progress(self) -> None:
        if self.on_progress is None:
            return
        res = self.result
        elapsed = max(1e-9, time.perf_counter() - self._t0)
        with self._lock:
            done = res.accepted + res.failed + res.dropped_by_mapping + res.invalid
            if res.dry_run:
                done = res.read
            snap = Progress(
                total=res.total,
                done=done,
                accepted=res.accepted,
                failed=res.failed,
                retried=res.retried,
                events_per_second=(res.would_send if res.dry_run else res.accepted + res.failed) / elapsed,
            )
        try:
            self.on_progress(snap)
        except Exception:
            pass  # a progress display must never break the replay

    def _take(self, batcher: Batcher) -> Batch | None:
        """The next batch to send (None: none left, or the run is stopping)."""
        try:
            return batcher.take()
        except BaseException as exc:  # surfaced by _pump in the main thread
            self._reader_error = exc
            self.stop.set()
            return None

    def _send_loop(self, batcher: Batcher, client: Client, policy: RetryPolicy, limiter: TokenBucket | None) -> None:
        # Each sender takes its next batch itself: no reader thread to wake per batch.
        while (b := self._take(batcher)) is not None:
            if self.stop.is_set():
                return  # never resolved: the checkpoint stays before it, a resume sends it
            try:
                self._sender.send_batch(client, policy, limiter, b)
            except BaseException as exc:  # pragma: no cover - a bug; stop cleanly
                self._reader_error = exc
                self.stop.set()


def _no_put(b: Batch) -> bool:  # pragma: no cover - senders take batches with Batcher.take
    raise AssertionError("the run takes its batches")


def replay_burst(rate: float) -> float:
    """The limiter's catch-up allowance for `--rate`: 50 ms of slots."""
    return max(1.0, rate * 0.05)


def replay(paths: list[str], route: Route, options: ReplayOptions, **kwargs: Any) -> ReplayResult:
    """Replay `paths` (files, globs, or "-") to `route`.  See `Replay`."""
    return Replay(paths, route, options, **kwargs).run()
