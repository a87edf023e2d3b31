"""Lint on two cores, for large inputs.

The first `PARALLEL_AFTER` records are linted here, in one process (small
inputs never pay a process start-up).  Past that, a forked worker takes over
the `Linter` as it stands (fork copies the aggregates so far) and keeps the
data set: it applies every later record through `Linter.add`, in record order,
and at the end runs `Linter.finish` and sends the result back.  This process
reads and parses the records (fixtures) and computes each message's own
verdict (`verdict.message_verdict`, free of data-set state), so the two halves
of the work run side by side and the result is the one-process result.

Everything runs from the main thread, over one pipe each way.  A chunk is
pickled once: the raw NDJSON lines as one byte string (the worker parses them
again, which costs less than pickling the parsed messages), their line
numbers, and only the verdicts that have findings.  When the worker found no
chunk waiting (this process is the slower one), the next chunk goes without
verdicts and the worker computes them, so the split follows the load
(`--plan` makes the worker's side heavier).  Records without a raw line
(batches, JSON arrays, YAML, unreadable lines) travel as Records, in their
place.  The worker never writes until the end, so a send that finds the pipe
full just waits for it (memory stays flat).
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import signal
import traceback
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import orjson

from cdpio_cli.fixtures import Record, Row
from cdpio_cli.lint.engine import Linter, Planned
from cdpio_cli.lint.report import LintResult
from cdpio_cli.lint.verdict import CLEAN, Verdict, message_verdict
from cdpio_cli.plan import PlanChecker

# Below this many records lint runs in one process.
PARALLEL_AFTER = 20_000
# Records per chunk sent to the worker.
_CHUNK_RECORDS = 500
# The pipe to the worker holds this many bytes (about 7 chunks of 500 messages of 270 bytes).
_PIPE_BYTES = 1024 * 1024

# A chunk: (file, line numbers, raw lines joined, each ending in b"\n" (an empty one
# for a record sent whole), {index: record without a raw line}, and either
# {index: verdict with findings} or None when the worker computes the verdicts,
# and with a plan, {index: the plan checker's findings} for the raw lines when
# this process ran the checker too, else None).
_Chunk = tuple[str, list[int], bytes, dict[int, Record], dict[int, Verdict] | None, dict[int, Planned] | None]


def _worker(
    linter: Linter, tasks: Connection, answers: Connection, hungry: Any, parents_ends: tuple[Connection, ...]
) -> None:
    """Apply chunks through `linter.add` until None arrives, then send the finished
    result; count in `hungry` the times no chunk was waiting."""
    # The copies fork made of the main process's ends: closed, so that if the
    # main process is killed, `recv` here ends (EOF) instead of waiting forever.
    for end in parents_ends:
        end.close()
    # The main process handles ^C and SIGTERM (cli/signals.py) and closes the
    # pipe, which ends this loop; a SIGTERM sent to the whole group just ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # What fork copied (modules, the aggregates so far) need not be walked by
    # every full collection again.
    gc.freeze()
    try:
        while True:
            if not tasks.poll():
                hungry.value += 1
            try:
                chunk: _Chunk | None = tasks.recv()
            except EOFError:
                return
            if chunk is None:
                break
            _apply(linter, chunk)
        result: Any = linter.finish()
    except Exception:  # sent back and raised there: the main process reports it
        result = RuntimeError(f"lint worker failed:\n{traceback.format_exc()}")
    answers.send(result)


def _apply(linter: Linter, chunk: _Chunk) -> None:
    file, lines, raws, whole, found, planned = chunk
    add, add_message = linter.add, linter.add_message
    # A dict with a CLEAN verdict and nothing from the plan (most messages): only the aggregates.
    clean = linter.clean_adder(plan_checked=planned is not None)
    nothing: Planned = []
    verdict_of = message_verdict
    loads = orjson.loads
    counted = 0
    for i, (line, raw) in enumerate(zip(lines, raws.split(b"\n"), strict=False)):
        if not raw:
            add(whole[i], None if found is None else found.get(i, CLEAN))
            continue
        msg = loads(raw)
        # No verdicts sent (None): computed here.
        verdict = verdict_of(msg) if found is None else found.get(i, CLEAN)
        if verdict is CLEAN and clean is not None and type(msg) is dict and (planned is None or i not in planned):
            counted += 1
            clean(msg, file, line)
        else:
            add_message(msg, file, line, verdict, None if planned is None else planned.get(i, nothing))
    linter.result.messages += counted


def _deepen(conn: Connection) -> None:
    """Give the pipe to the worker room for several chunks (Linux: up to 1 MB,
    the default unprivileged maximum), so that neither process waits for the
    other whenever one chunk takes the other longer than usual; the default
    64 KB holds less than one chunk.  Memory stays flat: a full pipe blocks."""
    import fcntl  # Unix only, like fork

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is None:
        return
    try:
        fcntl.fcntl(conn.fileno(), setsize, _PIPE_BYTES)
    except OSError:  # over the user's pipe-size limit: the default stays
        pass


class _Pipeline:
    def __init__(self, linter: Linter) -> None:
        self.linter = linter
        ctx = multiprocessing.get_context("fork")
        task_recv, self.tasks = ctx.Pipe(duplex=False)
        _deepen(self.tasks)
        self.answers, answer_send = ctx.Pipe(duplex=False)
        self.hungry = ctx.RawValue("q", 0)
        self._hungry_seen = 0
        parents_ends = (self.tasks, self.answers)
        self.process = ctx.Process(
            target=_worker, args=(linter, task_recv, answer_send, self.hungry, parents_ends), daemon=True
        )
        self.process.start()
        task_recv.close()
        answer_send.close()
        self.sent = 0  # chunks sent

    def close(self) -> None:
        """Stop the worker (closing the pipe ends it, on an error or ^C too)."""
        self.tasks.close()
        self.answers.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def worker_hungry(self) -> bool:
        """True when the worker found no chunk waiting since the last call: this
        process is the slower one, so the worker computes the next verdicts."""
        seen: int = self.hungry.value
        hungry = seen != self._hungry_seen
        self._hungry_seen = seen
        return hungry

    def send(self, chunk: _Chunk) -> None:
        self.tasks.send(chunk)
        self.sent += 1

    def result(self) -> LintResult:
        self.tasks.send(None)
        try:
            result = self.answers.recv()
        except EOFError:
            raise RuntimeError("lint worker ended without a result") from None
        if isinstance(result, BaseException):
            raise result
        assert isinstance(result, LintResult)
        return result


def lint_parallel(linter: Linter, records: Iterable[Record | Row], *, after: int = PARALLEL_AFTER) -> LintResult:
    """Lint `records` (Records, or fixtures.iter_rows's rows) in order, on two
    cores past `after` records; the finished result."""
    it = iter(records)
    add = linter.add
    for n, record in enumerate(it, 1):
        add(record)
        if n >= after:
            break
    else:
        return linter.finish()
    # The worker starts with the first raw NDJSON line (plain message dicts,
    # YAML and JSON arrays have none: they stay in this process).
    for record in it:
        if isinstance(record, tuple) or (record.raw is not None and record.error is None):
            break
        add(record)
    else:
        return linter.finish()
    pipeline = _Pipeline(linter)
    try:
        _feed(pipeline, itertools.chain((record,), it))
        return pipeline.result()
    finally:
        pipeline.close()


def _feed(pipeline: _Pipeline, it: Iterator[Record | Row]) -> None:
    """Chunks of records (one file each) to the worker, with their verdicts when
    the worker is the slower process (the two processes stay evenly loaded)."""
    file = ""
    lines: list[int] = []
    raws: list[bytes] = []
    whole: dict[int, Record] = {}
    found: dict[int, Verdict] | None = None
    planned: dict[int, Planned] | None = None
    verdict_of = message_verdict
    checker = pipeline.linter.plan_checker
    for item in it:
        if type(item) is tuple:  # a Row: an NDJSON line parsed alone (most lines)
            ifile, line, msg, raw = item
        else:
            record: Any = item
            ifile, line, msg, raw = record.file, record.line, record.message, record.raw
            # fixtures sets raw only on a non-blank line it parsed (no strip() here).
            if not raw or record.error is not None:
                raw = None
        if ifile != file or len(lines) >= _CHUNK_RECORDS:
            if lines:
                pipeline.send((file, lines, b"".join(raws), whole, found, planned))
                lines, raws, whole = [], [], {}
            file = ifile
            found = None if pipeline.worker_hungry() else {}
            # The plan is checked where the verdicts are: the worker is the busier
            # side with a plan unless this process takes its checks too.
            planned = None if found is None or checker is None else {}
        i = len(lines)
        lines.append(line)
        if raw is None:
            raws.append(b"\n")
            whole[i] = record
            if record.error is not None:
                continue
        else:
            raws.append(raw if raw[-1] == 10 else raw + b"\n")
        if found is not None:
            verdict = verdict_of(msg)
            if verdict is not CLEAN and (verdict[0] or verdict[1] or verdict[2]):
                found[i] = verdict
            if planned is not None and raw is not None:
                _plan_findings(checker, msg, ifile, line, planned, i)  # type: ignore[arg-type]
    if lines:
        pipeline.send((file, lines, b"".join(raws), whole, found, planned))


def _plan_findings(checker: PlanChecker, msg: Any, file: str, line: int, planned: dict[int, Planned], i: int) -> None:
    """Run the plan checker on one message here; keep what it emits, in order."""
    out: Planned = []
    checker.check(msg, file, line, lambda *args, **kwargs: out.append((args, kwargs)))
    if out:
        planned[i] = out
