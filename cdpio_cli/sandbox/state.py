"""Everything a running sandbox remembers, and the pipeline behind ingest.

Segment and Pipelines requests are *accepted* on the hot path (auth, limits,
messageId dedupe, record) and queued; the queue is *drained* (Segment ingest
drops, then the mapping package, then the workspace) when the server is idle, whenever
something reads the workspace or deliveries, and at once if the queue grows
past `max_pending_bytes`.  Real Segment is asynchronous too, and this keeps
ingest fast enough never to cap a replay.

Nothing here ever stores a credential: the request log has method, path,
route and outcome only, and recorded messages lose their `writeKey`.
"""

from __future__ import annotations

import errno
import gc
import itertools
import os
import re
import sys
import threading
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

import orjson

from cdpio_cli.fixtures import merge_batch_shared
from cdpio_cli.mapping import V1_METRICS, map_message, map_subscribed
from cdpio_cli.mapping import Mapping as Mapped
from cdpio_cli.messages import ingest_drop_reason
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.people import compact_json
from cdpio_cli.sandbox.workspace import Workspace

if TYPE_CHECKING:
    import asyncio

    from cdpio_cli.sandbox.campaigns import AppRateLimit, CampaignEngine
    from cdpio_cli.sandbox.faults import FaultInjector

DESTINATION_NOT_CONNECTED = "destination not connected"
DESTINATION_OTHER_WORKSPACE = "destination writes to another workspace (its siteId)"
DUPLICATE = "duplicate_message_id"
_PROJECT_SEGMENT = re.compile(r"(/projects/)[^/]+")

# Delivery: (messageId, type, label, userId, anonymousId, route, status, reason,
#            action, operations as JSON bytes, received at)


class SandboxState:
    def __init__(self, options: SandboxOptions):
        self.options = options
        self.lock = threading.RLock()
        self._workspace = Workspace()
        self.started_at = time.time()
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()
        self._record = _RecordFile(options.record) if options.record else None
        self.idle_drainer: asyncio.Task[None] | None = None  # the asyncio task draining between requests
        self.faults: FaultInjector | None = None  # the FaultInjector, once the app has built it
        self.app_rate_limit: AppRateLimit | None = None  # the App API's 10 requests/s, once asked
        self.campaign_engine: CampaignEngine | None = None  # once the App API campaign routes are asked
        self.stopping = False  # set when the server shuts down
        # Longest first, so a credential containing another is hidden whole.
        self._path_secrets = sorted(
            (
                (value, "<" + name.replace(" ", "_") + ">")
                for name, value in options.credentials().items()
                if len(value) >= 8
            ),
            key=lambda pair: -len(pair[0]),
        )
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._workspace.reset()
            self.seen_message_ids: set[str] = set()
            self.pending: list[_Pending] = []
            self.pending_events = 0
            self.pending_bytes = 0
            self.last_accept = 0.0
            self.deliveries: deque[tuple] = deque(maxlen=self.options.max_deliveries)
            self.requests: deque[dict] = deque(maxlen=self.options.max_requests)
            self.counts: Counter[str] = Counter()
            self.drop_reasons: Counter[str] = Counter()
            self.request_count = 0

    def close(self) -> None:
        if self._record is not None:
            self._record.close()
            self._record = None

    @property
    def workspace(self) -> Workspace:
        """The Customer.io workspace, with every accepted message applied."""
        with self.lock:
            self.drain()
            return self._workspace

    # --- request log ----------------------------------------------------

    def scrub_path(self, path: str) -> str:
        """The path as the request log keeps it: no credential in it.

        The settings lookup carries a write key in its path, and so does the same
        lookup sent to a wrong prefix or with a doubled slash: any `/projects/<x>`
        segment is hidden, and so is every credential the sandbox accepts.
        """
        path = _PROJECT_SEGMENT.sub(r"\1<write_key>", path)
        for value, label in self._path_secrets:
            if value in path:
                path = path.replace(value, label)
        return path

    def log_request(self, method: str, path: str, route: str, status: int, messages: int = 0) -> dict:
        path = self.scrub_path(path)
        entry = {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "messages": messages,
            "dropped": 0,
            "drops": [],
        }
        self.requests.append(entry)
        self.request_count += 1
        return entry

    # --- accept (hot path) ----------------------------------------------

    def new_message_id(self) -> str:
        return f"sbx-{self._id_prefix}-{next(self._ids)}"

    def accept(
        self,
        body: bytes,
        items: list,
        route: str,
        entry: dict,
        *,
        drop_all: str | None = None,
        force_type: str | None = None,
        defaults: dict | None = None,
    ) -> None:
        """Queue messages Segment (or Pipelines) answered 200 for.

        Only the decisions that shape the answer happen here: messageId dedupe
        (and ids for messages without one) and recording.  The queue keeps the
        raw body, not the parsed messages: a few hundred bytes per event
        instead of a few KB, so a large replay can wait in it.

        With `drop_all` every message is dropped for that reason (unknown key,
        wrong region, too many events) and is neither deduped nor recorded.
        """
        now = time.time()
        with self.lock:
            duplicates: set[int] | None = None
            new_ids: dict[int, str] | None = None
            if drop_all is None:
                seen = self.seen_message_ids
                fresh: set[str] = set()
                for i, m in enumerate(items):
                    if type(m) is not dict:
                        continue
                    mid = m.get("messageId")
                    if type(mid) is not str or not mid:
                        if new_ids is None:
                            new_ids = {}
                        new_ids[i] = self.new_message_id()
                    elif mid in seen or mid in fresh:
                        if duplicates is None:
                            duplicates = set()
                        duplicates.add(i)
                    else:
                        fresh.add(mid)
                if self._record is not None:
                    # Before the ids count as seen: a request that could not be
                    # recorded is not accepted, and its retry is no duplicate.
                    self._write_record(self._record, items, force_type, defaults, duplicates, new_ids)
                seen |= fresh
            self.pending.append(
                _Pending(
                    body,
                    force_type is not None,
                    route,
                    entry,
                    now,
                    drop_all,
                    force_type,
                    defaults,
                    duplicates,
                    new_ids,
                    len(items),
                )
            )
            self.pending_events += len(items)
            self.pending_bytes += len(body)
            self.counts["received"] += len(items)
            self.last_accept = time.monotonic()
            if self.pending_bytes > self.options.max_pending_bytes:
                self.drain()

    def drop_unread(self, route: str, entry: dict, reason: str) -> None:
        """Count a request dropped without being read (too large to keep) as one
        dropped message: its messages were never parsed."""
        with self.lock:
            self.counts["received"] += 1
            self.counts["dropped"] += 1
            self.drop_reasons[reason] += 1
            entry["messages"] = entry["dropped"] = 1
            entry["drops"].append(reason)
            self.deliveries.append(_delivery(None, route, reason, None, None, time.time()))

    @staticmethod
    def _write_record(
        record: _RecordFile,
        items: list,
        force_type: str | None,
        defaults: dict | None,
        duplicates: set[int] | None,
        new_ids: dict[int, str] | None,
    ) -> None:
        lines = []
        for i, m in enumerate(items):
            if type(m) is dict and not (duplicates and i in duplicates):
                lines.append(
                    orjson.dumps(_normalise(dict(m), force_type, defaults, new_ids.get(i) if new_ids else None))
                )
        if lines:
            record.append(b"\n".join(lines) + b"\n")

    # --- drain ----------------------------------------------------------

    def drain(self, limit: int | None = None) -> int:
        """Map queued messages into the workspace (or drop them, with the reason).

        All of them, or whole requests until at least `limit` messages.
        Returns how many were processed.
        """
        with self.lock:
            if not self.pending:
                return 0
            if limit is None:
                batches, self.pending = self.pending, []
            else:
                count = 0
                cut = 0
                while cut < len(self.pending) and count < limit:
                    count += self.pending[cut].count
                    cut += 1
                batches, self.pending = self.pending[:cut], self.pending[cut:]
            done = 0
            # Mapping allocates many small acyclic objects: with the collector
            # on, its passes over them cost as much as the mapping itself.
            collecting = gc.isenabled()
            gc.disable()
            try:
                for batch in batches:
                    self.pending_events -= batch.count
                    self.pending_bytes -= len(batch.body)
                    done += batch.count
                    self._drain(batch)
            finally:
                if collecting:
                    gc.enable()
            return done

    def _drain(self, batch: _Pending) -> None:
        enabled = self.options.segment_destination_enabled
        other_site = self.options.segment_destination_site_id not in (None, self.options.site_id)
        subscriptions = self.options.subscriptions
        workspace = self._workspace
        deliveries = self.deliveries
        counts, reasons = self.counts, self.drop_reasons
        route, entry, received = batch.route, batch.entry, batch.received
        payload = orjson.loads(batch.body)
        items = [payload] if batch.single else payload["batch"]
        duplicates, new_ids = batch.duplicates, batch.new_ids
        force_type, defaults = batch.force_type, batch.defaults
        for i, msg in enumerate(items):
            action = None
            ops = None
            reason = batch.drop_all
            if duplicates and i in duplicates:
                reason = DUPLICATE
            if type(msg) is dict:
                _normalise(msg, force_type, defaults, new_ids.get(i) if new_ids else None)
            if reason is None:
                reason = _ingest_drop_reason(msg)
                if reason == "no_user_anon_id" and route.startswith("pipelines") and identifies_by_email(msg):
                    # Pipelines identifies by traits.email alone (docs/contracts.md).
                    reason = None
            if reason is None and not enabled and route.startswith("segment"):
                reason = DESTINATION_NOT_CONNECTED
            if reason is None and other_site and route.startswith("segment"):
                reason = DESTINATION_OTHER_WORKSPACE
            if reason is None:
                # The workspace applies Customer.io's limits itself (the same
                # cdpio_cli/limits.py table), as Customer.io would on receipt.
                # Only Segment runs the destination's subscriptions; the
                # direct routes map every message the default way.
                mapped = (
                    map_subscribed(msg, subscriptions)
                    if subscriptions is not None and route.startswith("segment")
                    else map_message(msg, check_limits=False)
                )
                action = mapped.action
                if not mapped.ok:
                    reason = mapped.drop_reason
                else:
                    ops = mapped.operations
                    reason = _apply_mapped(workspace, mapped)
            if reason is None:
                counts["delivered"] += 1
            else:
                counts["dropped"] += 1
                reasons[reason] += 1
                entry["dropped"] += 1
                if reason not in entry["drops"]:
                    entry["drops"].append(reason)
            deliveries.append(_delivery(msg, route, reason, action, ops, received))

    # --- views ----------------------------------------------------------

    def delivery_views(
        self,
        *,
        message_id: str | None = None,
        user_id: str | None = None,
        status: str | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        with self.lock:
            self.drain()
            rows = list(self.deliveries)
        out = []
        for row in rows:
            if message_id is not None and row[0] != message_id:
                continue
            if user_id is not None and row[3] != user_id:
                continue
            if status is not None and row[6] != status:
                continue
            if route is not None and not row[5].startswith(route):
                continue
            out.append(row)
        if limit is not None:
            out = out[-limit:]
        return [_delivery_view(row) for row in out]

    def summary(self) -> dict:
        with self.lock:
            self.drain()
            return {
                "received": self.counts["received"],
                "delivered": self.counts["delivered"],
                "dropped": self.counts["dropped"],
                "drop_reasons": dict(self.drop_reasons),
            }


class RecordError(Exception):
    """`--record` could not write; nothing of the request was accepted."""

    def __init__(self, path: str, exc: OSError):
        super().__init__(f"--record {path}: {exc.strerror or exc}")
        self.path = path
        self.reason = exc.strerror or str(exc)


class _RecordFile:
    """The `--record` NDJSON file: whole requests appended, or nothing.

    A write that fails part-way (a full disk, a file-size limit) is cut back
    to where it started, so the file never ends in half a line and the
    client's retry appends the request once.  Created 0600: it holds event
    data.
    """

    def __init__(self, path: str):
        self.path = path
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            # Never through a symlink: it could point anywhere.
            self.fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OSError(
                    exc.errno,
                    "is a symbolic link; pass --record with the path of a "
                    "regular file (the sandbox does not write through symlinks)",
                    path,
                ) from None
            raise
        self.failing: str | None = None  # the reason of the last failure, until a write succeeds

    def append(self, data: bytes) -> None:
        fd = self.fd
        start = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            error = RecordError(self.path, exc)
            if self.failing != error.reason:
                print(
                    f"cdpio sandbox: warning: {error}; answering 503 until it can write again",
                    file=sys.stderr,
                    flush=True,
                )
            self.failing = error.reason
            raise error from None
        if self.failing is not None:
            print(f"cdpio sandbox: --record {self.path} is writable again", file=sys.stderr, flush=True)
            self.failing = None

    def close(self) -> None:
        os.close(self.fd)


class _Pending:
    """One accepted request waiting to be mapped: its raw body and the decisions made."""

    __slots__ = (
        "body",
        "single",
        "route",
        "entry",
        "received",
        "drop_all",
        "force_type",
        "defaults",
        "duplicates",
        "new_ids",
        "count",
    )

    def __init__(
        self,
        body: bytes,
        single: bool,
        route: str,
        entry: dict,
        received: float,
        drop_all: str | None,
        force_type: str | None,
        defaults: dict | None,
        duplicates: set[int] | None,
        new_ids: dict[int, str] | None,
        count: int,
    ) -> None:
        self.body = body
        self.single = single
        self.route = route
        self.entry = entry
        self.received = received
        self.drop_all = drop_all
        self.force_type = force_type
        self.defaults = defaults
        self.duplicates = duplicates
        self.new_ids = new_ids
        self.count = count


def identifies_by_email(msg: Any) -> bool:
    """An identify by traits.email alone, which Pipelines accepts (pipelines.json
    `#/paths/~1identify/post/description`; docs/contracts.md)."""
    return (
        isinstance(msg, dict)
        and msg.get("type") == "identify"
        and isinstance(msg.get("traits"), dict)
        and bool(msg["traits"].get("email"))
    )


def _apply_mapped(workspace: Workspace, mapped: Mapped) -> str | None:
    """Apply a mapped message's operations; the drop reason when Customer.io refuses one."""
    if mapped.endpoint == V1_METRICS:
        for op in mapped.operations:
            workspace.apply_metric(op)
        return None
    for op in mapped.operations:
        err = workspace.apply(op)
        if err is not None:
            # What Segment's Delivery Overview shows as "Failed delivery: 400".
            return f"CUSTOMERIO_400: {err.message}"
    return None


def _normalise(msg: dict, force_type: str | None, defaults: dict | None, new_id: str | None) -> dict:
    """The message as Segment stores it: batch context/integrations applied, the
    call's type set, an id where it had none, and never the write key."""
    if defaults:
        # In place: the batch item's own keys win (one rule with the fixture reader).
        msg.update(merge_batch_shared(msg, defaults))
    if force_type is not None:
        msg["type"] = force_type
    if new_id is not None:
        msg["messageId"] = new_id
    msg.pop("writeKey", None)
    return msg


# Timestamp problems never make Segment drop a message on ingest (they carry no
# ingest code), so they are left out of the check: parsing them is the
# costliest part of it.
_NO_INGEST_CODE = ("timestamp", "originalTimestamp", "sentAt")


def _ingest_drop_reason(msg: Any) -> str | None:
    if type(msg) is dict and ("timestamp" in msg or "sentAt" in msg or "originalTimestamp" in msg):
        msg = {k: v for k, v in msg.items() if k not in _NO_INGEST_CODE}
    return ingest_drop_reason(msg)


def _label(msg: dict) -> Any:
    mtype = msg.get("type")
    if mtype == "track":
        return msg.get("event")
    return msg.get("name")


def _delivery(msg: Any, route: str, reason: str | None, action: str | None, ops: Any, received: float) -> tuple:
    if type(msg) is not dict:
        return (None, None, None, None, None, route, "dropped", reason, None, None, received)
    return (
        msg.get("messageId"),
        msg.get("type"),
        _label(msg),
        msg.get("userId"),
        msg.get("anonymousId"),
        route,
        "dropped" if reason else "delivered",
        reason,
        action,
        compact_json(ops) if ops else None,
        received,
    )


def _delivery_view(row: tuple) -> dict:
    mid, mtype, label, user_id, anon, route, status, reason, action, ops, received = row
    view = {
        "messageId": mid,
        "type": mtype,
        "userId": user_id,
        "anonymousId": anon,
        "route": route,
        "status": status,
        "reason": reason,
        "action": action,
        "operations": orjson.loads(ops) if ops else [],
        "receivedAt": received,
    }
    view["event" if mtype == "track" else "name"] = label
    return view
