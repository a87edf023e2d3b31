"""A Segment-shaped batch travels from the spool to the request with its
items joined (spool.SpoolBatch, batching.Batch, SegmentStyleRoute.build_joined):
the same request bytes as `build_request`, and each message's bytes for its
dead-letter line."""

from __future__ import annotations

import io
import threading

import pytest

from cdpio_cli.replay.batching import Batch, Batcher, BatchSinks
from cdpio_cli.replay.cutting import Cutter
from cdpio_cli.replay.options import ReplayResult
from cdpio_cli.routes.registry import build_sender

ITEMS = [b'{"type":"track","i":1}', b'{"i":22,"s":"a,b"}', b"{}", b'{"x":[1,2,3]}']


def _route(name: str = "segment"):
    credentials = {
        "segment.write_key": "k" * 32,
        "customerio.pipelines_api_key": "p" * 32,
        "customerio.site_id": "a" * 20,
        "customerio.track_api_key": "b" * 20,
    }
    return build_sender(name, "http://127.0.0.1:9", credentials, batch_size=3)


@pytest.mark.parametrize("name", ["segment", "pipelines", "customerio"])
def test_build_joined_is_build_request(name):
    route = _route(name)
    at = "2030-01-01T00:00:00.000Z"
    for items in (ITEMS, ITEMS[:1], []):
        joined, listed = route.build_joined(b",".join(items), sent_at=at), route.build_request(items, sent_at=at)
        assert (joined.method, joined.url, joined.headers, joined.content, joined.secrets) == (
            listed.method,
            listed.url,
            listed.headers,
            listed.content,
            listed.secrets,
        )


def read_spool_batches(spool: io.BytesIO) -> list[Batch]:
    """The batches a spool holds, as the senders would take them (the tests' own sinks)."""
    got: list[Batch] = []
    sinks = BatchSinks(
        lambda b: got.append(b) or True,
        got.append,
        threading.BoundedSemaphore(99),
        threading.Event(),
        threading.Lock(),
        ReplayResult(),
    )
    spool.seek(0)
    Batcher(["in.ndjson"], [0], sinks, dry_run=False).run(spool)
    return got


def _batches(records: list[tuple[str, bytes]]) -> list[Batch]:
    """Cut ("ok", item) and ("dl", dead-letter line) records, spool, read back."""
    spool = io.BytesIO()
    cutter = Cutter(_route(), spool, ["in.ndjson"])
    for index, (kind, data) in enumerate(records):
        if kind == "ok":
            cutter.add(0, index, index + 1, None, data)
        else:
            cutter.add_resolved(0, index, data)
    cutter.flush()
    return read_spool_batches(spool)


def test_each_message_of_a_joined_batch_is_found_for_its_dead_letter_line():
    records = [("ok", ITEMS[0]), ("dl", b'{"bad":1}\n'), ("ok", ITEMS[1]), ("ok", ITEMS[2]), ("ok", ITEMS[3])]
    batches = _batches(records)
    assert [b.joined for b in batches] == [b",".join(ITEMS[:3]), ITEMS[3]]
    assert [b.dl_lines for b in batches] == [[b'{"bad":1}\n'], []]
    assert [b.n_items for b in batches] == [3, 1]
    messages = [b.message(mi) for b in batches for mi in range(b.count)]
    assert messages == [("in.ndjson", line, item) for line, item in zip([1, 3, 4, 5], ITEMS, strict=True)]


def test_a_batch_of_dead_letter_lines_only_needs_no_request():
    (batch,) = _batches([("dl", b'{"bad":1}\n'), ("dl", b'{"bad":2}\n')])
    assert batch.n_items == 0 and batch.joined == b"" and batch.count == 0
    assert batch.dl_lines == [b'{"bad":1}\n', b'{"bad":2}\n']
