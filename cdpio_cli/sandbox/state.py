"""Everything a running sandbox remembers, and the pipeline behind ingest.

Segment and Pipelines requests are *accepted* on the hot path (auth, limits,
messageId dedupe, record) and queued; the queue is *drained* (Segment ingest
drops, then mapping.py, then the workspace) in bulk whenever something reads
the workspace or the queue grows past `drain_threshold`.  Real Segment is
asynchronous too, and this keeps ingest fast enough never to cap a replay.

Nothing here ever stores a credential: the request log has method, path,
route and outcome only, and recorded messages lose their `writeKey`.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import Counter, deque
from typing import Any

import orjson

from cdpio_cli.mapping import V1_METRICS, map_message
from cdpio_cli.messages import ingest_drop_reason
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.workspace import Workspace

DESTINATION_NOT_CONNECTED = "destination not connected"
DUPLICATE = "duplicate_message_id"

# Pending item: (message, route, request entry, received at, ingest drop reason)
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
        self._record = open(options.record, "ab") if options.record else None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._workspace.reset()
            self.seen_message_ids: set[str] = set()
            self.pending: list[tuple] = []
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

    def log_request(self, method: str, path: str, route: str, status: int,
                    messages: int = 0) -> dict:
        entry = {"method": method, "path": path, "route": route, "status": status,
                 "messages": messages, "dropped": 0, "drops": []}
        self.requests.append(entry)
        self.request_count += 1
        return entry

    # --- accept (hot path) ----------------------------------------------

    def new_message_id(self) -> str:
        return f"sbx-{self._id_prefix}-{next(self._ids)}"

    def accept(self, items: list, route: str, entry: dict, *, drop_all: str | None = None,
               force_type: str | None = None, defaults: dict | None = None) -> None:
        """Queue messages Segment (or Pipelines) answered 200 for.

        With `drop_all` every message is dropped for that reason (unknown key,
        wrong region, too many events) and is neither deduped nor recorded.
        """
        now = time.time()
        with self.lock:
            pending = self.pending
            if drop_all is not None:
                pending.extend((m, route, entry, now, drop_all) for m in items)
            else:
                seen = self.seen_message_ids
                record = [] if self._record is not None else None
                for m in items:
                    if type(m) is not dict:
                        pending.append((m, route, entry, now, None))
                        continue
                    if defaults:
                        # Batch-level context/integrations apply to every item.
                        for key, value in defaults.items():
                            if key not in m:
                                m[key] = value
                    if force_type is not None:
                        m["type"] = force_type
                    m.pop("writeKey", None)
                    mid = m.get("messageId")
                    if type(mid) is not str or not mid:
                        mid = m["messageId"] = self.new_message_id()
                    elif mid in seen:
                        pending.append((m, route, entry, now, DUPLICATE))
                        continue
                    seen.add(mid)
                    pending.append((m, route, entry, now, None))
                    if record is not None:
                        record.append(m)
                if record:
                    self._record.write(b"".join(orjson.dumps(m) + b"\n" for m in record))
                    self._record.flush()
            self.counts["received"] += len(items)
            if len(pending) >= self.options.drain_threshold:
                self.drain()

    # --- drain ----------------------------------------------------------

    def drain(self) -> None:
        """Map every queued message into the workspace (or drop it, with the reason)."""
        with self.lock:
            if not self.pending:
                return
            pending, self.pending = self.pending, []
            enabled = self.options.segment_destination_enabled
            workspace = self._workspace
            deliveries = self.deliveries
            counts, reasons = self.counts, self.drop_reasons
            for msg, route, entry, received, reason in pending:
                action = None
                ops = None
                if reason is None:
                    reason = ingest_drop_reason(msg)
                    if (reason == "no_user_anon_id" and route.startswith("pipelines")
                            and msg.get("type") == "identify"
                            and isinstance(msg.get("traits"), dict) and msg["traits"].get("email")):
                        # Pipelines identifies by traits.email alone (customerio-api.md §4).
                        reason = None
                if reason is None and not enabled and route.startswith("segment"):
                    reason = DESTINATION_NOT_CONNECTED
                if reason is None:
                    mapped = map_message(msg)
                    action = mapped.action
                    if not mapped.ok:
                        reason = mapped.drop_reason
                    else:
                        ops = mapped.operations
                        if mapped.endpoint == V1_METRICS:
                            for op in ops:
                                workspace.apply_metric(op)
                        else:
                            for op in ops:
                                err = workspace.apply(op)
                                if err is not None:
                                    # What Segment's Delivery Overview shows as "Failed delivery: 400".
                                    reason = f"CUSTOMERIO_400: {err.message}"
                                    break
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

    def delivery_views(self, *, message_id: str | None = None, user_id: str | None = None,
                       status: str | None = None, route: str | None = None,
                       limit: int | None = None) -> list[dict]:
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
            return {"received": self.counts["received"], "delivered": self.counts["delivered"],
                    "dropped": self.counts["dropped"], "drop_reasons": dict(self.drop_reasons)}


def _label(msg: dict) -> Any:
    mtype = msg.get("type")
    if mtype == "track":
        return msg.get("event")
    return msg.get("name")


def _delivery(msg: Any, route: str, reason: str | None, action: str | None, ops: Any,
              received: float) -> tuple:
    if type(msg) is not dict:
        return (None, None, None, None, None, route, "dropped", reason, None, None, received)
    return (msg.get("messageId"), msg.get("type"), _label(msg), msg.get("userId"),
            msg.get("anonymousId"), route, "dropped" if reason else "delivered", reason, action,
            orjson.dumps(ops) if ops else None, received)


def _delivery_view(row: tuple) -> dict:
    mid, mtype, label, user_id, anon, route, status, reason, action, ops, received = row
    view = {"messageId": mid, "type": mtype, "userId": user_id, "anonymousId": anon,
            "route": route, "status": status, "reason": reason, "action": action,
            "operations": orjson.loads(ops) if ops else [],
            "receivedAt": received}
    view["event" if mtype == "track" else "name"] = label
    return view
