"""Lint on two cores.

A forked worker process computes each message's own verdict
(`engine.message_verdict`: the spec rules and the destination's mapping, the
larger half of the work, and free of data-set state) for chunks of NDJSON
lines, while this process reads the records and keeps the data-set
aggregates.  Verdicts are applied in record order through `Linter.add`, so
the result is the one a serial run gives.  When the worker falls behind, this
process computes a chunk's verdicts itself.  Memory stays bounded: at most
`_MAX_PENDING` chunks are held.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from multiprocessing.pool import AsyncResult, Pool

import orjson

from cdpio_cli.fixtures import Record
from cdpio_cli.lint.engine import PARALLEL_AFTER, Linter, Verdict, message_verdict

# The first PARALLEL_AFTER records are always linted here: below that, a
# second process would cost more than it saves.
CHUNK = 2_000
_IN_FLIGHT = 3  # chunks the worker holds
_MAX_PENDING = 8  # chunks held in all (the worker's and this process's)


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _verdicts(lines: list[bytes | None]) -> list[Verdict | None]:
    """The worker: each NDJSON line's verdict (None where there is no line)."""
    loads = orjson.loads
    return [None if raw is None else message_verdict(loads(raw)) for raw in lines]


class _Done:
    """A chunk whose verdicts this process computed itself."""

    def __init__(self, verdicts: list[Verdict | None]) -> None:
        self.verdicts = verdicts

    def ready(self) -> bool:
        return True

    def get(self) -> list[Verdict | None]:
        return self.verdicts


Pending = tuple[list[Record], "AsyncResult[list[Verdict | None]] | _Done"]


def lint_parallel(
    linter: Linter, records: Iterable[Record], *, after: int = PARALLEL_AFTER, chunk: int = CHUNK
) -> None:
    """Feed `records` to `linter`, the first `after` here, the rest with a worker."""
    it = iter(records)
    add = linter.add
    for record in islice(it, after):
        add(record)
    first = list(islice(it, chunk))
    if not first:
        return
    with multiprocessing.get_context("fork").Pool(1) as pool:
        _pipeline(linter, pool, first, it, chunk)


def _pipeline(linter: Linter, pool: Pool, first: list[Record], it: Iterator[Record], size: int) -> None:
    pending: deque[Pending] = deque()
    at_worker = 0
    batch = first
    while batch:
        # Apply what is ready, in order (waiting only when too much is held).
        while pending and (pending[0][1].ready() or len(pending) >= _MAX_PENDING):
            at_worker -= _apply(linter, pending.popleft())
        if at_worker < _IN_FLIGHT:
            lines = [r.raw if r.error is None else None for r in batch]
            pending.append((batch, pool.apply_async(_verdicts, (lines,))))
            at_worker += 1
        else:  # the worker is behind: this process takes the chunk
            verdicts = [None if r.error is not None else message_verdict(r.message) for r in batch]
            pending.append((batch, _Done(verdicts)))
        batch = list(islice(it, size))
    while pending:
        _apply(linter, pending.popleft())


def _apply(linter: Linter, item: Pending) -> int:
    """Apply one chunk's records in order; 1 when the worker computed its verdicts."""
    batch, result = item
    add = linter.add
    for record, verdict in zip(batch, result.get(), strict=True):
        add(record, verdict)
    return 0 if isinstance(result, _Done) else 1
