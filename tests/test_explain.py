"""explain.py and `cdpio explain`: the verdict per message, and agreement with the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from cdpio_cli import explain
from cdpio_cli.fixtures import iter_records
from cdpio_cli.sandbox import defaults
from tests.cli_helpers import run_cli

DATA = Path(__file__).parent / "data" / "lint"
T = "2026-01-10T12:00:00.000Z"

# Messages each dropped somewhere, with where and why.
DROPPED = [
    ({"type": "track", "event": "Signed Up", "timestamp": T}, "segment", "no_user_anon_id"),
    ({"type": "track", "userId": "u1", "timestamp": T}, "segment", "event_not_defined"),
    (
        {"type": "page", "userId": "u1", "name": "Pricing", "properties": {"path": "/pricing"}},
        "destination",
        "MESSAGE_REJECTED: trackPageView requires properties.url",
    ),
    (
        {"type": "track", "userId": "u1", "event": "Application Opened", "context": {"device": {"type": "ios"}}},
        "destination",
        "MESSAGE_REJECTED: createUpdateDevice requires context.device.token",
    ),
    (
        {
            "type": "track",
            "anonymousId": "a1",
            "event": "Application Installed",
            "context": {"device": {"type": "ios", "token": "tok"}},
        },
        "destination",
        "MESSAGE_REJECTED: createUpdateDevice requires userId",
    ),
    (
        {"type": "track", "userId": "u1", "event": "Device Deleted"},
        "destination",
        "MESSAGE_REJECTED: deleteDevice requires context.device.token",
    ),
    (
        {"type": "screen", "userId": "u1", "properties": {}},
        "destination",
        "MESSAGE_REJECTED: trackScreenView requires name",
    ),
]


@pytest.mark.parametrize("msg,where,reason", DROPPED)
def test_dropped_messages_say_where_and_why(msg, where, reason):
    exp = explain.explain_message(msg)
    assert exp.dropped and exp.dropped_by == where
    assert exp.drop_reason.startswith(reason)
    assert exp.operations == []


def test_sent_messages_show_action_and_v2_bodies():
    exp = explain.explain_message(
        {
            "type": "track",
            "userId": "usr_1",
            "event": "Signed Up",
            "messageId": "m1",
            "timestamp": T,
            "properties": {"plan_type": "pro"},
        }
    )
    assert not exp.dropped and exp.action == "trackEvent"
    [op] = exp.operations
    assert op["type"] == "person" and op["action"] == "event" and op["name"] == "Signed Up"
    assert op["identifiers"] == {"id": "usr_1"} and op["attributes"] == {"plan_type": "pro"}
    assert isinstance(op["timestamp"], int)
    assert explain.operation_summary(op) == "person/event 'Signed Up' id=usr_1 (1 attribute)"


def test_explain_records_keeps_unreadable_lines():
    exps = list(explain.explain_records(iter_records([str(DATA / "bad_lines.ndjson")])))
    assert [(e.line, e.dropped_by) for e in exps] == [(1, None), (3, "input"), (4, None)]


def test_summary_counts():
    summary = explain.ExplainSummary()
    for msg, _, _ in DROPPED:
        summary.add(explain.explain_message(msg))
    summary.add(explain.explain_message({"type": "identify", "userId": "u", "traits": {"email": "a@b.co"}}))
    data = summary.to_dict()
    assert data["messages"] == 8 and data["sent"] == 1 and data["dropped"] == 7
    assert data["dropped_by"] == {"segment": 2, "destination": 5}


def _all_messages() -> list[dict]:
    msgs = [r.message for r in iter_records([str(DATA / "clean.ndjson")])]
    msgs += [dict(m) for m, _, _ in DROPPED]
    for i, msg in enumerate(msgs):
        msg["messageId"] = f"explain-{i}"
    return msgs


def test_explain_agrees_with_the_sandbox(sandbox):
    msgs = _all_messages()
    resp = httpx.post(
        f"{sandbox.url}/segment/v1/batch", json={"batch": msgs}, auth=(defaults.WRITE_KEY, ""), timeout=30
    )
    assert resp.status_code == 200, resp.text
    rows = httpx.get(f"{sandbox.url}/_sandbox/deliveries", timeout=30).json()["deliveries"]
    by_id = {row["messageId"]: row for row in rows}
    assert len(by_id) == len(msgs)
    for msg in msgs:
        exp = explain.explain_message(msg)
        row = by_id[msg["messageId"]]
        assert row["status"] == ("dropped" if exp.dropped else "delivered"), (msg, row)
        assert row["reason"] == exp.drop_reason, (msg, row)
        if not exp.dropped:
            assert row["action"] == exp.action
            assert row["operations"] == exp.operations


# --- CLI ----------------------------------------------------------------------


def _write_ndjson(path: Path, msgs) -> str:
    path.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    return str(path)


def test_cli_explain_json_and_exit_codes(tmp_path):
    path = _write_ndjson(
        tmp_path / "m.ndjson",
        [m for m, _, _ in DROPPED[:3]] + [{"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}}],
    )
    res = run_cli("explain", path, "--json", cwd=tmp_path)
    assert res.code == 0, res.output
    doc = json.loads(res.stdout)
    statuses = [(c["line"], c["status"], c["id"]) for c in doc["checks"]]
    assert statuses == [
        (1, "warning", "segment-ingest"),
        (2, "warning", "segment-ingest"),
        (3, "warning", "trackPageView"),
        (4, "passed", "createUpdatePerson"),
    ]
    assert doc["checks"][3]["details"]["operations"][0]["identifiers"] == {"id": "u1"}
    assert doc["summary"]["dropped"] == 3 and doc["summary"]["sent"] == 1
    assert "dropped by the destination" in res.stderr

    only = run_cli("explain", path, "--only-dropped", "--json", cwd=tmp_path)
    assert [c["line"] for c in only.json["checks"]] == [1, 2, 3]
    assert run_cli("explain", path, "--fail-on-drop", cwd=tmp_path).code == 1


def test_cli_verbose_shows_bodies_and_bad_input_exits_2(tmp_path):
    path = _write_ndjson(tmp_path / "m.ndjson", [{"type": "track", "userId": "u1", "event": "Signed Up"}])
    res = run_cli("explain", path, "--verbose", cwd=tmp_path)
    assert res.code == 0 and '"action": "event"' in res.stderr
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"type": "track",\n')
    res = run_cli("explain", str(bad), cwd=tmp_path)
    assert res.code == 2 and "Traceback" not in res.stderr
    res = run_cli("explain", str(tmp_path / "missing.json"), cwd=tmp_path)
    assert res.code == 2 and "no such file" in res.stderr
