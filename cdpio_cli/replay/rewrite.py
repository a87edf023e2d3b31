"""The per-message rewrites (`--new-message-ids`, `--id-prefix`,
`--shift-timestamps`, a messageId for every message) and the timestamps they use."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from cdpio_cli import messages
from cdpio_cli.replay.deadletter import DL_KEY, WRITE_KEY_FIELD

# messageIds derived for messages that have none: stable across resumed runs.
ID_NAMESPACE = uuid.UUID("6f1c7a52-2b8e-4c55-9a51-3f0f2d7c9e11")
TIMESTAMP_KEYS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")
_ID_KEYS = ("userId", "anonymousId", "previousId")


def _format_ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_timestamp(msg: dict[str, Any]) -> datetime | None:
    for key in ("timestamp", "originalTimestamp"):
        parsed = messages.parse_timestamp(msg.get(key))
        if parsed is not None:
            return parsed
    return None


class Rewriter:
    """The per-message rewrites, applied identically in every run of a job."""

    def __init__(self, *, seed: str, new_message_ids: bool, id_prefix: str | None, shift: timedelta | None):
        self.seed = seed
        self.new_message_ids = new_message_ids
        self.id_prefix = id_prefix or None
        self.shift = shift

    def derived_id(self, source_key: str, index: int) -> str:
        return str(uuid.uuid5(ID_NAMESPACE, f"{self.seed}\x00{source_key}\x00{index}"))

    def apply(self, msg: dict[str, Any], source_key: str, index: int) -> bool:
        """Rewrite in place; return whether anything changed."""
        changed = False
        if DL_KEY in msg:
            del msg[DL_KEY]  # a dead-letter file replays as is
            changed = True
        # The route authenticates; a key inside a message is never sent or
        # written anywhere (the dead-letter file is built from the rewritten message).
        if WRITE_KEY_FIELD in msg:
            del msg[WRITE_KEY_FIELD]
            changed = True
        if self.id_prefix:
            for key in _ID_KEYS:
                value = msg.get(key)
                if isinstance(value, bool) or value is None or value == "":
                    continue
                if isinstance(value, (str, int, float)):
                    msg[key] = f"{self.id_prefix}{value}"
                    changed = True
        mid = msg.get("messageId")
        if self.new_message_ids or not isinstance(mid, str) or not mid:
            msg["messageId"] = self.derived_id(source_key, index)
            changed = True
        if self.shift is not None:
            shift_timestamps(msg, self.shift)
            changed = True
        return changed


def shift_timestamps(msg: dict[str, Any], shift: timedelta) -> None:
    for key in TIMESTAMP_KEYS:
        parsed = messages.parse_timestamp(msg.get(key))
        if parsed is not None:
            msg[key] = _format_ts(parsed + shift)
