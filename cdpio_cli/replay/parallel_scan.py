"""The pre-pass on two cores, for large plain NDJSON files.

While the pre-pass runs nothing is sent yet, so the second core is idle.
Here a forked worker reads the same file with the same reader
(fixtures.iter_ndjson) and, for two blocks of lines out of every three,
parses each line and judges it exactly as the pre-pass would: a line that
holds one message object, left unchanged by the rewrites and passed by
`fast_valid`, is sent as written.  It sends back the numbers of those lines,
block by block.  This process reads every line too, but does not parse the
lines the worker passed (they come as fixtures.UNPARSED records holding the
line); it parses everything else itself, in its own blocks and wherever the
worker said no, through the one exact path.  Record order, indexes, lines,
batches and the spool are therefore the one-process ones.

Used only when it cannot change a result: a plain (not gzipped, not binary)
NDJSON file of at least PARALLEL_BYTES, a route that sends messages as they
are, no --shift-timestamps, and no other thread in this process (fork copies
only the calling thread).  If the worker fails, this process parses every
line from there on.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from cdpio_cli.fixtures import looks_binary
from cdpio_cli.fixtures.ndjson import iter_ndjson
from cdpio_cli.fixtures.reading import detect_format
from cdpio_cli.replay.inputs import Source

# Below this size a file is scanned in one process (no fork for small inputs).
PARALLEL_BYTES = 8 * 1024 * 1024
# Lines per block; of every three blocks the worker judges two (the measured balance:
# this process also reads every line and cuts every batch).
BLOCK_LINES = 1000


def _worker_block(block: int) -> bool:
    return block % 3 != 0


def forkable() -> bool:
    """fork is available and safe: this process runs no other thread (a fork
    copies only the calling thread; a lock another thread held stays held)."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def eligible(source: Source) -> bool:
    """Can this source be scanned on two cores without changing anything?"""
    if not forkable():
        return False
    try:
        if os.path.getsize(source.read_path) < PARALLEL_BYTES:
            return False
        with open(source.read_path, "rb") as fh:
            head = fh.read(8192)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b" or looks_binary(head):
        return False
    return detect_format(source.read_path) == "ndjson"


class PrejudgedLines:
    """The worker for one source; `passed(line)` says whether the worker judged
    that line sendable as written (asked in increasing line order)."""

    def __init__(self, source: Source, judge: Callable[[Any, bytes | None], bool]):
        ctx = multiprocessing.get_context("fork")
        for stream in (sys.stdout, sys.stderr):  # nothing buffered is copied into the child
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        answers_in, answers_out = ctx.Pipe(duplex=False)
        self._answers: Connection | None = answers_in
        self._process = ctx.Process(
            target=_worker, args=(source.read_path, judge, answers_out, answers_in), daemon=True
        )
        self._process.start()
        answers_out.close()
        self._block = -1
        self._passed: frozenset[int] = frozenset()

    def passed(self, line: int) -> bool:
        block = (line - 1) // BLOCK_LINES
        if not _worker_block(block):
            return False
        if block != self._block:
            self._passed = self._answer_for(block)
            self._block = block
        return line in self._passed

    def _answer_for(self, block: int) -> frozenset[int]:
        answers = self._answers
        while answers is not None:
            try:
                got: tuple[int, list[int]] | None = answers.recv()
            except (EOFError, OSError):
                got = None
            if got is None:  # the worker ended early: parse the rest here
                self.close()
                return frozenset()
            if got[0] == block:
                return frozenset(got[1])
            if got[0] > block:  # cannot happen (blocks come in order); be safe
                self.close()
                return frozenset()
        return frozenset()

    def close(self) -> None:
        if self._answers is not None:
            self._answers.close()
            self._answers = None
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)


def _worker(
    path: str, judge: Callable[[Any, bytes | None], bool], answers: Connection, parents_end: Connection
) -> None:
    # Only the main process reads: with no reader left (it was killed), a send fails and this ends.
    parents_end.close()
    # The main process handles ^C and SIGTERM (cli/signals.py) and closes the
    # pipe or terminates this process; a signal to the whole group just ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()
    block = 0
    passed: list[int] = []

    def send(upto: int) -> None:
        # Answer every worker block before `upto` (blocks with no line answer empty).
        nonlocal block, passed
        while block < upto:
            if _worker_block(block):
                answers.send((block, passed))
            block, passed = block + 1, []

    try:
        with open(path, "rb") as fh:
            for rec in iter_ndjson(fh, path, unparsed=lambda n: not _worker_block((n - 1) // BLOCK_LINES)):
                this = (rec.line - 1) // BLOCK_LINES
                if this != block:
                    send(this)
                if _worker_block(this) and rec.error is None and judge(rec.message, rec.raw):
                    passed.append(rec.line)
        send(block + 1)
    except Exception:  # the main process went away, or anything else: it parses the rest itself
        pass
    finally:
        answers.close()
