"""Replay fixture files to a route: batching, rate limit, retries, dead-letter
file, resume from a checkpoint.  The CLI (`cdpio replay`) is a thin wrapper.

Shape of a run (one module each):

1. Read (`inputs`): the files, or stdin spooled to disk.
2. Pre-pass (`scan`), streaming, constant memory: validate every message
   (`validate`; any invalid one stops the run before anything is sent,
   unless `skip_invalid`), rewrite it (`rewrite`: ids, and a messageId fixed
   *before the first attempt*, so retries can never duplicate), count them,
   find the newest timestamp (`shift_timestamps`, in a pass of its own),
   cut the records into batches by count, bytes and lane (`cutting`), and
   write each batch ready to send to the spool (`spool`).
3. Main pass: sender threads (`send`) take the spooled batches in order,
   one at a time under one lock (`batching`), and share one transport
   client, a token bucket and the retry policy.
4. Batches are committed in input order (`commit`): dead-letter lines are
   appended (`deadletter`) and the checkpoint advanced (`checkpoint`) only up
   to the first batch still in flight.  A killed run therefore resumes
   exactly: the resolved prefix is skipped, the dead-letter file is cut back
   to what the checkpoint covers, and messages that were in flight are
   re-sent with the same messageIds (derived from the checkpoint's seed, file
   and position), which the services dedupe.

`run` holds the job (`Replay`) and its threads; `options` the options and
result types; `report` turns a result into checks; `route` is the one place
that knows routes by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdpio_cli.lazy import lazy_attributes

if TYPE_CHECKING:
    from cdpio_cli.replay.checkpoint import BAD_CHECKPOINT_HINT, ResumeState, checkpoint_problem, load_checkpoint
    from cdpio_cli.replay.defaults import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_CONCURRENCY,
        DEFAULT_MAX_RETRIES,
        DEFAULT_RATE,
        DEFAULT_TIMEOUT,
    )
    from cdpio_cli.replay.options import (
        Example,
        Progress,
        ReplayOptions,
        ReplayResult,
    )
    from cdpio_cli.replay.route import Route, route_from_settings
    from cdpio_cli.replay.run import Replay, replay, replay_burst
    from cdpio_cli.replay.validate import fast_valid

# The public names, loaded on first use: `cdpio_cli.replay.options` (the
# defaults the config falls back to) stays cheap to import without the
# sending machinery (transport client, threads) behind `run`.
_SOURCES = {
    "BAD_CHECKPOINT_HINT": "checkpoint",
    "ResumeState": "checkpoint",
    "checkpoint_problem": "checkpoint",
    "load_checkpoint": "checkpoint",
    "DEFAULT_BATCH_SIZE": "defaults",
    "DEFAULT_CONCURRENCY": "defaults",
    "DEFAULT_MAX_RETRIES": "defaults",
    "DEFAULT_RATE": "defaults",
    "DEFAULT_TIMEOUT": "defaults",
    "Example": "options",
    "Progress": "options",
    "ReplayOptions": "options",
    "ReplayResult": "options",
    "Route": "route",
    "route_from_settings": "route",
    "Replay": "run",
    "replay": "run",
    "replay_burst": "run",
    "fast_valid": "validate",
}


__getattr__ = lazy_attributes(__name__, globals(), _SOURCES)


__all__ = [
    "BAD_CHECKPOINT_HINT",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RATE",
    "DEFAULT_TIMEOUT",
    "Example",
    "Progress",
    "Replay",
    "ReplayOptions",
    "ReplayResult",
    "ResumeState",
    "Route",
    "checkpoint_problem",
    "fast_valid",
    "load_checkpoint",
    "replay",
    "replay_burst",
    "route_from_settings",
]
