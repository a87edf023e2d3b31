"""The Customer.io route's batches from the cutter to the request: the
ordinary lane's operations spooled joined with b"," (CustomerioRoute.build_joined
wraps them, the same bytes as `build_request`), `owners` only when a message
maps to other than one operation, each message cut from the spool only for its
dead-letter line, and `Cutter.add_mapped` (the common message's operation
encoded directly) spooling what `prepare` would."""

from __future__ import annotations

import io

import orjson

from cdpio_cli.replay.cutting import Cutter
from cdpio_cli.routes.registry import build_sender
from tests.test_replay_joined import read_spool_batches

TS = "2024-05-01T10:00:00.000Z"


def _route(batch_size: int = 3):
    credentials = {"customerio.site_id": "a" * 20, "customerio.track_api_key": "b" * 20}
    return build_sender("customerio", "http://127.0.0.1:9", credentials, batch_size=batch_size)


def _track(i: int) -> dict:
    return {"type": "track", "userId": f"u{i}", "event": "Order Completed", "messageId": f"m{i}", "timestamp": TS}


MESSAGES = [
    _track(0),
    _track(1),
    {"type": "identify", "traits": {"email": "e@x.io"}, "messageId": "m2", "timestamp": TS},  # not the quick path
    {**_track(3), "event": "Report Delivery Event", "properties": {"deliveryId": "d", "metric": "opened"}},  # metrics
    {**_track(4), "event": "Report Delivery Event", "properties": {}},  # dropped by the mapping
    _track(5),
    {"type": "track", "userId": "u6", "event": "Application Installed", "messageId": "m6", "timestamp": TS},
    _track(7),
]


def _cut(route, how: str) -> io.BytesIO:
    spool = io.BytesIO()
    cutter = Cutter(route, spool, ["in.ndjson"])
    for index, msg in enumerate(MESSAGES):
        data = orjson.dumps(msg)
        if how == "add_mapped":
            cutter.add_mapped(0, index, index + 1, msg, data)
        else:
            cutter.add_prepared(0, index, index + 1, msg, data, route.prepare(msg, data))
    cutter.add_resolved(0, len(MESSAGES), b'{"bad":1}\n')
    cutter.flush()
    return spool


def test_add_mapped_spools_what_prepare_gives():
    route = _route()
    assert _cut(route, "add_mapped").getvalue() == _cut(route, "prepare").getvalue()


def test_the_spooled_batches_carry_the_same_requests_and_messages():
    route = _route()
    batches = read_spool_batches(_cut(route, "add_mapped"))
    requests, messages = [], []
    for b in batches:
        if b.joined is not None:
            assert b.lane == "batch" and b.n_items == len(b.sizes)
            requests.append((b.lane, b.joined))
        elif b.items:
            requests.append((b.lane, b",".join(b.items)))
        messages += [b.message(mi) for mi in range(b.count)]
    # The same requests as the items `prepare` gives, cut the same way.
    expected, lane, items, prepared_messages = [], None, [], []
    for line, msg in enumerate(MESSAGES, 1):
        prepared = route.prepare(msg, orjson.dumps(msg))
        if prepared.dropped is not None:
            continue
        prepared_messages.append(("in.ndjson", line, orjson.dumps(msg)))
        if items and (prepared.lane != lane or len(items) + len(prepared.items) > route.lane_limits(lane)):
            expected.append((lane, b",".join(items)))
            items = []
        lane = prepared.lane
        items += prepared.items
        if len(items) >= route.lane_limits(lane):
            expected.append((lane, b",".join(items)))
            items = []
    if items:
        expected.append((lane, b",".join(items)))
    assert requests == expected
    assert any(lane == "metrics" for lane, _ in requests)
    assert messages == prepared_messages
    assert batches[-1].dl_lines == [b'{"bad":1}\n']


def test_owners_only_when_a_message_maps_to_other_than_one_operation():
    route = _route(batch_size=50)
    spool = io.BytesIO()
    cutter = Cutter(route, spool, ["in.ndjson"])
    for index, item_counts in enumerate([1, 1, 2, 1]):
        items = [b'{"i":%d,"j":%d}' % (index, j) for j in range(item_counts)]
        cutter.add_items(0, index, index + 1, b'{"m":%d}' % index, items)
    cutter.flush()
    for index in range(3):  # one operation each: item i is message i
        cutter.add_items(0, 4 + index, 5 + index, b'{"m":%d}' % (4 + index), [b'{"i":%d}' % (4 + index)])
    cutter.flush()
    first, second = read_spool_batches(spool)
    assert first.owners == [0, 1, 2, 2, 3] and first.n_items == 5 and first.count == 4
    assert second.owners is None and second.n_items == 3
    assert [first.message(mi)[2] for mi in range(4)] == [b'{"m":%d}' % i for i in range(4)]
    assert second.joined == b'{"i":4},{"i":5},{"i":6}' and second.message(2) == ("in.ndjson", 7, b'{"m":6}')
