"""The pre-pass on two cores, for large plain NDJSON files.

While the pre-pass runs nothing is sent yet, so the second core is idle.
Here a forked worker reads the same file with the same reader
(fixtures.iter_ndjson_rows, a block at a time; it passes over this process's
blocks with `skip_lines`, which only counts lines) and, for its share of the
blocks of lines, parses each line and judges it exactly as the pre-pass
would: a line that holds one message object, left unchanged by the rewrites
and passed by `fast_valid`, is sent as written.  On a route that maps
(Customer.io) the worker also maps such a line and encodes its operations
(`route.prepare`), and passes it only when that gives operations for the
ordinary batch lane; it sends them back with the line's number.  It answers
block by block.  This process reads every line too, but does not parse the
lines the worker passed (they come as (line number, line) tuples,
fixtures.ndjson.Unparsed; their operations, if any, are the worker's bytes);
it parses everything else itself, in its own blocks and wherever the worker
said no, through the one exact path.  Record order, indexes, lines, batches
and the spool are therefore the one-process ones.

Used only when it cannot change a result: an NDJSON file (plain or gzipped,
not binary) of at least PARALLEL_BYTES (uncompressed), no --shift-timestamps, and no
other thread in this process (fork copies only the calling thread).  Both
processes read it through `open_ndjson`, the stream fixtures.iter_records
reads (gzip undone the same way).  If the worker fails, this process parses
every line from there on.
"""

from __future__ import annotations

import gc
import os
import queue
import signal
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from cdpio_cli.fixtures import looks_binary
from cdpio_cli.fixtures.ndjson import iter_ndjson_rows, skip_lines
from cdpio_cli.fixtures.reading import GZIP_MAGIC, READ_BUFFER, decompressed, detect_format
from cdpio_cli.forking import forkable
from cdpio_cli.replay.inputs import Source

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

# Below this size (uncompressed) a file is scanned in one process (no fork for small inputs).
PARALLEL_BYTES = 8 * 1024 * 1024
# Lines per block.
BLOCK_LINES = 1000
# The worker's share of the blocks: of every SHARE[1] blocks, the last SHARE[0]
# (this process also reads every line and cuts every batch; measured balance).
SHARE_AS_IS = (2, 3)  # a route that sends messages as they are
SHARE_MAPPED = (1, 2)  # a route that maps: the worker maps and encodes too (measured balance, 2026-12-02)


def _worker_block(block: int, share: tuple[int, int]) -> bool:
    return block % share[1] >= share[1] - share[0]


@contextmanager
def open_ndjson(path: str) -> Iterator[IO[bytes]]:
    """The file as fixtures.iter_records reads it (`decompressed`)."""
    with open(path, "rb", buffering=READ_BUFFER) as raw:
        yield decompressed(raw)


def _size(path: str) -> int:
    """The file's size, or a gzip file's uncompressed size when larger (its
    trailer; the last member's only, so never more than the truth below 4 GB)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if size >= 18 and fh.read(2) == GZIP_MAGIC:
            fh.seek(-4, os.SEEK_END)
            size = max(size, int.from_bytes(fh.read(4), "little"))
    return size


def eligible(source: Source) -> bool:
    """Can this source be scanned on two cores without changing anything?"""
    try:
        if _size(source.read_path) < PARALLEL_BYTES or not forkable():
            return False
        with open_ndjson(source.read_path) as stream:
            head = stream.peek(8192)[:8192]  # type: ignore[attr-defined]
    except (OSError, EOFError, zlib.error):  # unreadable, or a gzip broken at its start
        return False
    if looks_binary(head):
        return False
    return detect_format(source.read_path) == "ndjson"


# The worker's judgement of one parsed line (message, line): falsy when this
# process must judge it, else True, or the line's encoded operations on a
# route that maps.
Judge = Callable[[Any, bytes | None], Any]


class PrejudgedLines:
    """The worker for one source; `passed(line)` says whether the worker judged
    that line sendable as written (asked in increasing line order), and
    `verdict(line)` is what it gave for a passed line (its operations on a
    route that maps)."""

    def __init__(self, source: Source, judge: Judge, share: tuple[int, int] = SHARE_AS_IS):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        for stream in (sys.stdout, sys.stderr):  # nothing buffered is copied into the child
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        answers_in, answers_out = ctx.Pipe(duplex=False)
        self._answers: Connection | None = answers_in
        self._process = ctx.Process(
            target=_worker, args=(source.read_path, judge, share, answers_out, answers_in), daemon=True
        )
        self._process.start()
        answers_out.close()
        self.share = share
        self._lo = self._hi = 0  # the lines of the block `_passed` answers for
        self._passed: dict[int, Any] = {}

    def passed(self, line: int) -> bool:
        if not self._lo <= line < self._hi:  # asked once per line: the block's answer is kept
            self._next_block(line)
        return line in self._passed

    def _next_block(self, line: int) -> None:
        block = (line - 1) // BLOCK_LINES
        self._lo, self._hi = block * BLOCK_LINES + 1, (block + 1) * BLOCK_LINES + 1
        self._passed = self._answer_for(block) if _worker_block(block, self.share) else {}

    def verdict(self, line: int) -> Any:
        """What the worker gave for a line it passed (asked after `passed(line)`)."""
        return self._passed[line]

    def _answer_for(self, block: int) -> dict[int, Any]:
        answers = self._answers
        while answers is not None:
            try:
                got: tuple[int, list[int], list[Any]] | None = answers.recv()
            except (EOFError, OSError):
                got = None
            if got is None:  # the worker ended early: parse the rest here
                self.close()
                return {}
            if got[0] == block:
                return dict(zip(got[1], got[2], strict=True))
            if got[0] > block:  # cannot happen (blocks come in order); be safe
                self.close()
                return {}
        return {}

    def close(self) -> None:
        if self._answers is not None:
            self._answers.close()
            self._answers = None
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)


# Answers the worker may have judged ahead of the main process: a route that
# maps sends its operations (about half a megabyte a block), more than a pipe
# holds, so without a queue the worker would wait for every answer to be read.
# Three cover the main process's run of its own blocks; each costs the worker
# about 4 MB of peak RSS on the Customer.io route (measured: 2 / 3 / 8 blocks,
# 35 / 39 / 60 MB).
AHEAD_BLOCKS = 3


class _Gone(Exception):
    """The main process stopped reading (it ended or was killed)."""


class _Mailer:
    """The worker's sending thread: answers go out in order while the worker
    judges the next blocks, at most AHEAD_BLOCKS queued."""

    def __init__(self, answers: Connection):
        self.answers = answers
        self.queue: queue.Queue[tuple[int, list[int], list[Any]] | None] = queue.Queue(AHEAD_BLOCKS)
        self.failed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                self.answers.send(item)
        except Exception:  # the main process went away: the worker stops at its next post
            self.failed = True

    def post(self, item: tuple[int, list[int], list[Any]] | None) -> None:
        while not self.failed:
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Gone

    def finish(self) -> None:
        """Send what is queued, then stop."""
        try:
            self.post(None)
        except _Gone:
            return
        self.thread.join()


def _worker(path: str, judge: Judge, share: tuple[int, int], answers: Connection, parents_end: Connection) -> None:
    # Only the main process reads: with no reader left (it was killed), a send fails and this ends.
    parents_end.close()
    # The main process handles ^C and SIGTERM (cli/signals.py) and closes the
    # pipe or terminates this process; a signal to the whole group just ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()
    mailer = _Mailer(answers)
    lines = BLOCK_LINES
    try:
        with open_ndjson(path) as fh:
            block = 0
            while True:
                if not _worker_block(block, share):
                    # This process's block: passed over, not judged.
                    if skip_lines(fh, lines) < lines:
                        break
                else:
                    passed: list[int] = []
                    verdicts: list[Any] = []
                    for row in iter_ndjson_rows(fh, path, lines=(block * lines + 1, lines)):
                        # Only a message parsed from a line of its own (a Row) can be sent as
                        # written; anything else comes as a Record, for this process to judge.
                        if type(row) is tuple:
                            verdict = judge(row[2], row[3])
                            if verdict:
                                passed.append(row[1])
                                verdicts.append(verdict)
                    mailer.post((block, passed, verdicts))
                if not fh.peek(1):  # type: ignore[attr-defined]
                    break
                block += 1
    except Exception:  # the main process went away, or anything else: it parses the rest itself
        pass
    finally:
        mailer.finish()  # what was judged is still good; then the main process sees the end
        answers.close()
