"""cdpio replay against the sandbox over real loopback sockets: formats,
validation, dead letters, exactly-once under faults, resume after SIGKILL,
rate limiting, exit codes, and no secrets anywhere."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpio_cli import messages
from cdpio_cli.errors import UsageError
from cdpio_cli.replay import ReplayOptions, load_checkpoint, replay
from cdpio_cli.routes import registry
from cdpio_cli.routes.registry import build_sender
from cdpio_cli.sandbox import defaults
from tests.cli_helpers import clean_env, run_cli, write_config

SANDBOX_CREDENTIALS = {
    "segment.write_key": defaults.WRITE_KEY,
    "customerio.site_id": defaults.SITE_ID,
    "customerio.track_api_key": defaults.TRACK_API_KEY,
    "customerio.pipelines_api_key": defaults.PIPELINES_API_KEY,
}
FAST = dict(rate=None, concurrency=4, base_delay=0.001, max_delay=0.01, max_retry_after=0.02)


def msgs(n, prefix="u", **extra):
    return [
        {"type": "track", "event": "Order Completed", "userId": f"{prefix}{i}", "properties": {"i": i}, **extra}
        for i in range(n)
    ]


def write_ndjson(path: Path, items) -> Path:
    path.write_text("".join(json.dumps(m) + "\n" for m in items), encoding="utf-8")
    return path


def route_for(sb, name="segment", **kw):
    return build_sender(name, sb.endpoint(registry.get(name).service), SANDBOX_CREDENTIALS, **kw)


def sandbox_deliveries(sb):
    return httpx.get(sb.url + "/_sandbox/deliveries").json()


def delivered_ids(sb) -> list[str]:
    return [d["messageId"] for d in sandbox_deliveries(sb)["deliveries"] if d["status"] == "delivered"]


def request_total(sb) -> int:
    return httpx.get(sb.url + "/_sandbox/requests").json()["total"]


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


# --- formats ------------------------------------------------------------------


def test_every_input_format_and_gzip(sandbox, tmp_path):
    items = msgs(12)
    for i, m in enumerate(items):
        m["messageId"] = f"fmt-{i}"
    files = [
        write_ndjson(tmp_path / "a.ndjson", items[0:2]),
        tmp_path / "b.json",
        tmp_path / "c.yaml",
        tmp_path / "d.ndjson.gz",
        tmp_path / "e.json.gz",
        tmp_path / "f.jsonl",
    ]
    files[1].write_text(json.dumps(items[2:4], indent=2))
    files[2].write_text(yaml.safe_dump(items[4:6]))
    files[3].write_bytes(gzip.compress("".join(json.dumps(m) + "\n" for m in items[6:8]).encode()))
    files[4].write_bytes(gzip.compress(json.dumps({"batch": items[8:10]}).encode()))
    write_ndjson(files[5], items[10:12])
    result = replay([str(f) for f in files], route_for(sandbox), ReplayOptions(**FAST))
    assert result.exit_code() == 0, result.summary()
    assert (result.read, result.sent, result.accepted) == (12, 12, 12)
    assert sorted(delivered_ids(sandbox)) == sorted(m["messageId"] for m in items)


def test_stdin_is_spooled_for_the_two_passes(sandbox, tmp_path):
    import io

    data = "".join(json.dumps(m) + "\n" for m in msgs(5))
    stdin = io.TextIOWrapper(io.BytesIO(data.encode()))
    result = replay(["-"], route_for(sandbox), ReplayOptions(**FAST, dead_letter=str(tmp_path / "dl")), stdin=stdin)
    assert result.accepted == 5 and len(delivered_ids(sandbox)) == 5


# --- validation ---------------------------------------------------------------


def bad_file(tmp_path) -> Path:
    lines = [
        json.dumps(msgs(1)[0]),
        "{not json",
        json.dumps(msgs(1, prefix="v")[0]),
        json.dumps({"type": "track", "userId": "x"}),
        json.dumps(msgs(1, prefix="w")[0]),
    ]
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_invalid_input_stops_before_anything_is_sent(sandbox, tmp_path):
    path = bad_file(tmp_path)
    result = replay([str(path)], route_for(sandbox), ReplayOptions(**FAST))
    assert result.stopped_invalid and result.exit_code() == 2
    assert [(e.file, e.line) for e in result.invalid_examples] == [(str(path), 2), (str(path), 4)]
    assert "event" in result.invalid_examples[1].reason
    assert request_total(sandbox) == 0
    assert not (tmp_path / "mixed.dead-letter.ndjson").exists()


def test_skip_invalid_sends_the_rest_and_dead_letters_the_invalid(sandbox, tmp_path):
    path = bad_file(tmp_path)
    dl = tmp_path / "dl.ndjson"
    result = replay([str(path)], route_for(sandbox), ReplayOptions(**FAST, skip_invalid=True, dead_letter=str(dl)))
    assert (result.invalid, result.accepted) == (2, 3) and result.exit_code() == 1
    lines = read_lines(dl)
    assert [(x["_cdpio"]["file"], x["_cdpio"]["line"]) for x in lines] == [(str(path), 2), (str(path), 4)]
    assert all(x["_cdpio"]["reason"].startswith("invalid:") for x in lines)
    assert lines[1]["type"] == "track" and lines[1]["userId"] == "x"  # the message itself
    assert len(delivered_ids(sandbox)) == 3


def test_dry_run_sends_nothing(sandbox, tmp_path):
    path = write_ndjson(tmp_path / "in.ndjson", msgs(30))
    result = replay([str(path)], route_for(sandbox, batch_size=10), ReplayOptions(**FAST, dry_run=True))
    assert (result.would_send, result.requests, result.sent) == (30, 3, 0)
    assert result.exit_code() == 0 and request_total(sandbox) == 0


# --- dead letters ----------------------------------------------------------------


def test_dead_letter_round_trip(sandbox_factory, tmp_path):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(25))
    broken = sandbox_factory(fail_rate=1.0, fail_status=400)  # not retryable: all to the dead letter
    dl = tmp_path / "in.dead-letter.ndjson"
    first = replay([str(src)], route_for(broken, batch_size=10), ReplayOptions(**FAST, dead_letter=str(dl)))
    assert (first.failed, first.accepted, first.exit_code()) == (25, 0, 1)
    lines = read_lines(dl)
    assert len(lines) == 25 and {x["_cdpio"]["http_status"] for x in lines} == {400}
    assert all("injected" in x["_cdpio"]["reason"] and x["_cdpio"]["attempts"] == 1 for x in lines)
    assert [x["_cdpio"]["line"] for x in lines] == list(range(1, 26))
    ids = [x["messageId"] for x in lines]

    record = tmp_path / "recorded.ndjson"
    healthy = sandbox_factory(record=str(record))
    second = replay([str(dl)], route_for(healthy), ReplayOptions(**FAST, dead_letter=str(tmp_path / "dl2")))
    assert second.exit_code() == 0 and second.accepted == 25
    accepted = read_lines(record)
    assert sorted(m["messageId"] for m in accepted) == sorted(ids)  # same ids: dedupe-safe
    assert not any("_cdpio" in m for m in accepted)


def test_dead_letter_may_not_overwrite_an_input(sandbox, tmp_path):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(2))
    with pytest.raises(UsageError, match="also an input"):
        replay([str(src)], route_for(sandbox), ReplayOptions(**FAST, dead_letter=str(src)))


# --- exactly once under faults ---------------------------------------------------


def test_every_event_delivered_exactly_once_under_faults(sandbox_factory, tmp_path):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(600))
    sb = sandbox_factory(fail_rate=0.2, drop_connections=0.2, throttle=150, seed=42)
    result = replay(
        [str(src)],
        route_for(sb, batch_size=10),
        ReplayOptions(**FAST, max_retries=20, dead_letter=str(tmp_path / "dl")),
    )
    assert result.exit_code() == 0, result.summary()
    assert result.accepted == 600 and result.failed == 0 and result.retried > 0
    codes = set(result.status_counts)
    assert {"200", "500", "error"} <= codes
    ids = delivered_ids(sb)
    assert len(ids) == 600 and len(set(ids)) == 600
    summary = sandbox_deliveries(sb)["summary"]
    # Dropped connections make the client resend what already arrived: the
    # sandbox saw duplicates and dropped exactly those.
    assert summary["drop_reasons"].get("duplicate_message_id", 0) == summary["received"] - 600
    assert not (tmp_path / "dl").exists()


def test_customerio_route_exactly_once_drops_and_207(sandbox_factory, tmp_path):
    items = msgs(40, prefix="c")
    items.insert(5, {"type": "page", "userId": "c1", "name": "Home"})  # mapping drop
    items.insert(9, {"type": "track", "userId": "c2", "event": "E" * 120})  # 207 for this op
    src = write_ndjson(tmp_path / "in.ndjson", items)
    sb = sandbox_factory(drop_connections=0.3, seed=3)
    dl = tmp_path / "dl.ndjson"
    result = replay(
        [str(src)],
        route_for(sb, "customerio", batch_size=8),
        ReplayOptions(**FAST, max_retries=20, dead_letter=str(dl)),
    )
    assert result.dropped_by_mapping == 1 and "properties.url" in result.drop_examples[0].reason
    assert (result.accepted, result.failed) == (40, 1)
    (line,) = read_lines(dl)
    assert line["event"] == "E" * 120 and line["_cdpio"]["http_status"] == 207
    assert "100 bytes" in line["_cdpio"]["reason"] and line["_cdpio"]["line"] == 10
    from cdpio_cli import transport

    with transport.make_client(5.0) as client:  # the App API is faulted too: read with retries
        for i in range(40):  # one event each, despite dropped connections and retries
            spec = transport.RequestSpec(
                "GET",
                sb.endpoint("app") + f"/v1/customers/c{i}/activities?type=event&limit=100",
                {"Authorization": f"Bearer {defaults.APP_API_KEY}"},
            )
            got = transport.send(client, spec, transport.RetryPolicy(20, 0.001, 0.01))
            assert len(got.json()["activities"]) == 1


def test_batches_are_cut_by_bytes(sandbox, tmp_path):
    big = [
        {"type": "track", "event": "Big", "userId": f"b{i}", "properties": {"blob": "x" * 30_000}} for i in range(40)
    ]
    src = write_ndjson(tmp_path / "big.ndjson", big)
    result = replay([str(src)], route_for(sandbox, batch_size=2500), ReplayOptions(**FAST))
    assert result.accepted == 40 and result.status_counts == {"200": result.requests}
    assert result.requests >= 3  # 40 x 30 KB cannot fit in fewer 500 KB requests


# --- rewrites ------------------------------------------------------------------------


def test_rewrites_prefix_new_ids_and_shifted_timestamps(sandbox_factory, tmp_path):
    items = [
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"email": "u1@example.com"},
            "timestamp": "2020-01-01T00:00:00.000Z",
            "messageId": "keep-1",
        },
        {"type": "alias", "userId": "u2", "previousId": "anon-2", "timestamp": "2020-01-01T01:00:00Z"},
        {"type": "track", "anonymousId": "a3", "event": "Viewed", "timestamp": "2020-01-01T00:30:00Z"},
    ]
    src = write_ndjson(tmp_path / "in.ndjson", items)
    record = tmp_path / "rec.ndjson"
    sb = sandbox_factory(record=str(record))
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    result = replay([str(src)], route_for(sb), ReplayOptions(**FAST, id_prefix="t-", shift_timestamps=True))
    after = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert result.accepted == 3
    got = {m.get("userId") or m.get("anonymousId"): m for m in read_lines(record)}
    assert set(got) == {"t-u1", "t-u2", "t-a3"} and got["t-u2"]["previousId"] == "t-anon-2"
    assert got["t-u1"]["messageId"] == "keep-1"  # kept
    assert uuid.UUID(got["t-u2"]["messageId"]).version == 5  # derived, stable
    stamps = {k: datetime.fromisoformat(v["timestamp"].replace("Z", "+00:00")) for k, v in got.items()}
    assert before <= stamps["t-u2"] <= after  # newest = now
    assert stamps["t-u2"] - stamps["t-u1"] == timedelta(hours=1)  # spacing kept
    assert stamps["t-a3"] - stamps["t-u1"] == timedelta(minutes=30)


def test_new_message_ids_replays_the_same_file_again(sandbox, tmp_path):
    items = msgs(5)
    for i, m in enumerate(items):
        m["messageId"] = f"fixed-{i}"
    src = write_ndjson(tmp_path / "in.ndjson", items)
    replay([str(src)], route_for(sandbox), ReplayOptions(**FAST))
    replay([str(src)], route_for(sandbox), ReplayOptions(**FAST))  # all duplicates
    assert len(delivered_ids(sandbox)) == 5
    replay([str(src)], route_for(sandbox), ReplayOptions(**FAST, new_message_ids=True))
    assert len(delivered_ids(sandbox)) == 10


# --- checkpoint and resume ------------------------------------------------------------


def test_resume_after_sigkill_loses_and_duplicates_nothing(sandbox, tmp_path):
    n = 400
    src = write_ndjson(tmp_path / "in.ndjson", msgs(n))  # no messageIds: derived ones must be stable
    ckpt = tmp_path / "replay.ckpt"
    env = clean_env()
    cmd = [
        sys.executable,
        "-m",
        "cdpio_cli",
        "--sandbox-url",
        sandbox.url,
        "-q",
        "replay",
        str(src),
        "--checkpoint",
        str(ckpt),
        "--rate",
        "60",
        "--batch-size",
        "5",
        "--concurrency",
        "3",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            data = load_checkpoint(str(ckpt)) if ckpt.exists() else None
            if data and data["inputs"][0]["done"] >= 60:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    state = load_checkpoint(str(ckpt))
    assert not state["complete"] and 60 <= state["inputs"][0]["done"] < n
    before = len(delivered_ids(sandbox))
    assert before < n

    resumed = run_cli(
        "--sandbox-url",
        sandbox.url,
        "--json",
        "replay",
        str(src),
        "--checkpoint",
        str(ckpt),
        "--rate",
        "0",
        cwd=tmp_path,
    )
    assert resumed.code == 0, resumed.stderr
    summary = resumed.json["summary"]
    assert summary["skipped_resumed"] == state["inputs"][0]["done"]
    assert load_checkpoint(str(ckpt))["complete"]
    ids = delivered_ids(sandbox)
    assert len(ids) == n and len(set(ids)) == n
    assert all(uuid.UUID(i).version == 5 for i in ids)  # ours, not assigned by the service

    again = run_cli("--sandbox-url", sandbox.url, "--json", "replay", str(src), "--checkpoint", str(ckpt), cwd=tmp_path)
    assert again.code == 0 and again.json["summary"]["sent"] == 0
    assert len(delivered_ids(sandbox)) == n


def test_checkpoint_refuses_other_flags_or_inputs(sandbox, tmp_path):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(3))
    other = write_ndjson(tmp_path / "other.ndjson", msgs(3))
    ckpt = str(tmp_path / "c.ckpt")
    replay([str(src)], route_for(sandbox), ReplayOptions(**FAST, checkpoint=ckpt, id_prefix="a-"))
    with pytest.raises(UsageError, match="id_prefix"):
        replay([str(src)], route_for(sandbox), ReplayOptions(**FAST, checkpoint=ckpt, id_prefix="b-"))
    with pytest.raises(UsageError, match="other input files"):
        replay([str(other)], route_for(sandbox), ReplayOptions(**FAST, checkpoint=ckpt, id_prefix="a-"))
    Path(ckpt).write_text("{}")
    with pytest.raises(UsageError, match="not a cdpio replay checkpoint"):
        replay([str(src)], route_for(sandbox), ReplayOptions(**FAST, checkpoint=ckpt))


# --- rate ---------------------------------------------------------------------------------


def test_rate_limit_gives_zero_429s_from_a_sandbox_throttling_at_that_rate(sandbox_factory, tmp_path):
    rate = 60
    src = write_ndjson(tmp_path / "in.ndjson", msgs(90))
    sb = sandbox_factory(throttle=rate)
    result = replay([str(src)], route_for(sb, batch_size=1), ReplayOptions(rate=rate, concurrency=4, max_retries=0))
    assert result.status_counts == {"200": 90}
    stamps = sorted(d["receivedAt"] for d in sandbox_deliveries(sb)["deliveries"])
    achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert achieved < rate * 1.5  # loose: an unpaced client would be many times faster


# --- CLI --------------------------------------------------------------------------------------

CONFIG = """\
version: 1
segment:
  write_key: ${WK}
customerio:
  site_id: ${SID}
  track_api_key: ${TKEY}
  pipelines_api_key: ${PKEY:-}
  region: us
"""
SECRET_WK = "SecretWriteKeyForTests0123456789"
SECRET_TK = "5ec2e7000000000000ff"


def test_cli_json_summary_and_no_secrets_anywhere(sandbox_factory, tmp_path):
    sb = sandbox_factory(write_key=SECRET_WK, track_api_key=SECRET_TK, fail_rate=0.5, fail_status=503, seed=9)
    write_config(tmp_path, CONFIG)
    src = write_ndjson(tmp_path / "in.ndjson", msgs(60))
    env = {"WK": SECRET_WK, "SID": defaults.SITE_ID, "TKEY": SECRET_TK}
    res = run_cli(
        "--sandbox-url",
        sb.url,
        "--json",
        "replay",
        str(src),
        "--route",
        "customerio",
        "--max-retries",
        "0",
        "--batch-size",
        "10",
        "--rate",
        "0",
        "--concurrency",
        "1",
        cwd=tmp_path,
        env=env,
    )
    assert res.code == 1, res.stderr
    doc = res.json  # stdout is one JSON document
    s = doc["summary"]
    for key in (
        "read",
        "invalid",
        "sent",
        "accepted",
        "failed",
        "retried",
        "status_counts",
        "latency_ms",
        "events_per_second",
        "dead_letter",
    ):
        assert key in s
    assert s["read"] == 60 and s["accepted"] + s["failed"] == 60 and s["failed"] > 0
    assert set(s["latency_ms"]) == {"p50", "p95", "p99"}
    dl = Path(tmp_path / s["dead_letter"]) if not os.path.isabs(s["dead_letter"]) else Path(s["dead_letter"])
    text = dl.read_text()
    assert len(text.splitlines()) == s["failed"]
    import base64

    basic = base64.b64encode(f"{defaults.SITE_ID}:{SECRET_TK}".encode()).decode()
    for blob in (res.stdout, res.stderr, text, (tmp_path / "cdpio.yaml").read_text().replace("${TKEY}", "")):
        assert SECRET_TK not in blob and SECRET_WK not in blob and basic not in blob
    assert "replay:" in res.stderr and "status:" in res.stderr


def test_cli_exit_2_on_invalid_input_with_file_and_line(sandbox, tmp_path):
    path = bad_file(tmp_path)
    res = run_cli("--sandbox-url", sandbox.url, "replay", str(path), cwd=tmp_path)
    assert res.code == 2
    assert f"{path}:2: invalid JSON" in res.stderr and f"{path}:4: track message has no event" in res.stderr
    assert "--skip-invalid" in res.stderr and "Traceback" not in res.stderr
    assert request_total(sandbox) == 0


def test_cli_exit_3_when_credentials_are_rejected(sandbox, tmp_path):
    write_config(tmp_path, CONFIG)
    src = write_ndjson(tmp_path / "in.ndjson", msgs(50))
    env = {"WK": defaults.WRITE_KEY, "SID": defaults.SITE_ID, "TKEY": "0000000000000000beef"}
    res = run_cli(
        "--sandbox-url",
        sandbox.url,
        "--json",
        "replay",
        str(src),
        "--route",
        "customerio",
        "--batch-size",
        "5",
        "--concurrency",
        "1",
        cwd=tmp_path,
        env=env,
    )
    assert res.code == 3, res.stderr
    s = res.json["summary"]
    assert s["aborted"] == "credential" and s["accepted"] == 0 and s["not_sent"] > 0
    assert "0000000000000000beef" not in res.output


def test_cli_exit_4_when_the_service_cannot_be_reached(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = write_ndjson(tmp_path / "in.ndjson", msgs(20))
    res = run_cli(
        "--sandbox-url",
        f"http://127.0.0.1:{port}",
        "--json",
        "replay",
        str(src),
        "--max-retries",
        "1",
        "--timeout",
        "2",
        cwd=tmp_path,
    )
    assert res.code == 4, res.stderr
    assert res.json["summary"]["accepted"] == 0
    assert "could not connect" in res.stderr


def test_cli_dry_run_and_bad_flags(tmp_path):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(7))
    res = run_cli("--json", "replay", str(src), "--dry-run", "--route", "customerio", cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert res.json["summary"]["would_send"] == 7
    bad = run_cli("replay", str(src), "--batch-size", "3000", cwd=tmp_path)
    assert bad.code == 2 and "2500" in bad.stderr
    missing = run_cli("replay", str(tmp_path / "nope.ndjson"), cwd=tmp_path)
    assert missing.code == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    for rate in ("nan", "inf", "-1"):
        res = run_cli("--json", "replay", str(src), "--rate", rate, cwd=tmp_path)
        assert res.code == 2 and "--rate" in res.json["error"]["message"], (rate, res.stdout, res.stderr)


# --- the pre-pass fast path never disagrees with the validator -----------------------


from cdpio_cli.replay import fast_valid  # noqa: E402

_ABSENT = object()
_ids = st.sampled_from([_ABSENT, None, "", "  ", "u1", "user@example.com", 42, True, 0.5])
_objects = st.sampled_from([_ABSENT, None, {}, {"a": 1}, [], "x", 3])
_stamps = st.sampled_from(
    [
        _ABSENT,
        None,
        "2024-03-01T00:00:00Z",
        "2024-03-01T00:00:00.123Z",
        "2024-03-01T00:00:00+02:00",
        "2024-03-01T00:00:00.1234567Z",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-03-01",
        "2024-03-01 10:00:00",
        "yesterday",
        1709251200,
        "",
    ]
)


@settings(max_examples=600, deadline=None)
@given(
    mtype=st.sampled_from(
        [_ABSENT, None, "track", "identify", "page", "screen", "group", "alias", "x", ["track"], {"a": 1}]
    ),
    user=_ids,
    anon=_ids,
    event=st.sampled_from([_ABSENT, None, "", "Signed Up", 5]),
    name=st.sampled_from([_ABSENT, None, "Home", 3]),
    props=_objects,
    traits=_objects,
    context=_objects,
    ts=_stamps,
    ots=_stamps,
    sent=_stamps,
    mid=st.sampled_from([_ABSENT, None, "m-1", "x" * 101, 7]),
    pad=st.sampled_from([0, 40_000]),
)
def test_fast_valid_implies_spec_valid(mtype, user, anon, event, name, props, traits, context, ts, ots, sent, mid, pad):
    fields = {
        "type": mtype,
        "userId": user,
        "anonymousId": anon,
        "event": event,
        "name": name,
        "properties": props,
        "traits": traits,
        "context": context,
        "timestamp": ts,
        "originalTimestamp": ots,
        "sentAt": sent,
        "messageId": mid,
    }
    msg = {k: v for k, v in fields.items() if v is not _ABSENT}
    if pad:
        msg["padding"] = "p" * pad
    size = messages.message_size(msg)
    if fast_valid(msg, size):
        errors = [p for p in messages.spec_problems(msg, size=size) if p.severity == messages.Severity.ERROR]
        assert errors == [], (msg, errors)


def test_fast_valid_accepts_the_common_clean_message():
    msg = {
        "type": "track",
        "userId": "u1",
        "event": "Signed Up",
        "properties": {"plan": "pro"},
        "context": {"ip": "1.2.3.4"},
        "timestamp": "2024-03-01T10:00:00.000Z",
        "messageId": "m-1",
    }
    assert fast_valid(msg, messages.message_size(msg))


def test_ctrl_c_stops_cleanly_with_130_and_resumes(sandbox, tmp_path):
    n = 300
    src = write_ndjson(tmp_path / "in.ndjson", msgs(n))
    ckpt = tmp_path / "replay.ckpt"
    # Wide enough that a long temporary path in the resume hint is not wrapped.
    env = clean_env(COLUMNS="1000")
    cmd = [
        sys.executable,
        "-m",
        "cdpio_cli",
        "--sandbox-url",
        sandbox.url,
        "replay",
        str(src),
        "--checkpoint",
        str(ckpt),
        "--rate",
        "50",
        "--batch-size",
        "5",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        data = load_checkpoint(str(ckpt)) if ckpt.exists() else None
        if data and data["inputs"][0]["done"] >= 30:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert f"--checkpoint {ckpt}" in err and "Traceback" not in err
    state = load_checkpoint(str(ckpt))
    assert not state["complete"] and state["inputs"][0]["done"] < n
    resumed = run_cli(
        "--sandbox-url", sandbox.url, "replay", str(src), "--checkpoint", str(ckpt), "--rate", "0", cwd=tmp_path
    )
    assert resumed.code == 0, resumed.stderr
    ids = delivered_ids(sandbox)
    assert len(ids) == n and len(set(ids)) == n


def test_pipelines_route_accepts_identify_by_email_alone(sandbox, tmp_path):
    items = [{"type": "identify", "traits": {"email": "only-email@example.com", "plan": "pro"}}]
    src = write_ndjson(tmp_path / "in.ndjson", items)
    seg = replay([str(src)], route_for(sandbox), ReplayOptions(**FAST))
    assert seg.stopped_invalid  # Segment drops it: no userId/anonymousId
    pipe = replay([str(src)], route_for(sandbox, "pipelines"), ReplayOptions(**FAST))
    assert pipe.exit_code() == 0 and pipe.accepted == 1
    assert len(delivered_ids(sandbox)) == 1


def test_customerio_route_follows_the_eu_redirect_once(sandbox_factory, tmp_path):
    sb = sandbox_factory(region="eu")
    src = write_ndjson(tmp_path / "in.ndjson", msgs(30, prefix="eu"))
    route = build_sender("customerio", sb.endpoint("track", "us"), SANDBOX_CREDENTIALS, batch_size=10)
    result = replay([str(src)], route, ReplayOptions(**{**FAST, "concurrency": 1}))
    assert result.accepted == 30
    assert result.status_counts == {"307": 1, "200": 3}  # redirected once, then straight to EU
    assert route.base_url.endswith("/track-eu")


def _interrupt_replay(sandbox, tmp_path, *extra):
    """Start a CLI replay, SIGINT it once the checkpoint shows progress."""
    n = 300
    src = write_ndjson(tmp_path / "in.ndjson", msgs(n))
    ckpt = tmp_path / "replay.ckpt"
    env = clean_env()
    env["COLUMNS"] = "200"
    cmd = [
        sys.executable,
        "-m",
        "cdpio_cli",
        "--sandbox-url",
        sandbox.url,
        *extra,
        "replay",
        str(src),
        "--checkpoint",
        str(ckpt),
        "--rate",
        "50",
        "--batch-size",
        "5",
        "--concurrency",
        "4",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        data = load_checkpoint(str(ckpt)) if ckpt.exists() else None
        if data and data["inputs"][0]["done"] >= 30:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err, ckpt, n


def test_interrupted_replay_reports_failure_in_json_junit_and_table(sandbox, tmp_path):
    junit = tmp_path / "report.xml"
    code, out, err, ckpt, n = _interrupt_replay(sandbox, tmp_path, "--json", "--junit", str(junit))
    assert code == 130, err
    doc = json.loads(out)
    assert doc["ok"] is False and doc["exit_code"] == 130
    stop = [c for c in doc["checks"] if c["id"] == "replay.interrupted"]
    assert len(stop) == 1 and stop[0]["status"] == "failed"
    assert f"--checkpoint {ckpt}" in stop[0]["message"]
    assert "FAILED:" in err and "OK:" not in err and "Traceback" not in err
    import xml.etree.ElementTree as ET

    failures = ET.parse(junit).getroot().iter("failure")
    assert any(f.get("type", "").endswith(".interrupted") and str(ckpt) in (f.text or "") for f in failures)
    # `accepted` counts what the checkpoint covers (committed in input order);
    # what was answered 2xx behind an unresolved batch is counted apart, so the
    # summary reconciles with the status histogram (5 messages a request).
    s = doc["summary"]
    assert s["interrupted"] and not s["complete"]
    assert s["status_counts"].get("200", 0) * 5 == s["accepted"] + s["accepted_uncommitted"]
    assert s["accepted_uncommitted"] <= s["not_sent"]
    assert s["accepted"] == load_checkpoint(str(ckpt))["totals"]["accepted"]


def test_checkpoint_in_a_missing_directory_is_a_usage_error_before_sending(sandbox, tmp_path):
    src = write_ndjson(tmp_path / "in.ndjson", msgs(5))
    ckpt = tmp_path / "no-such-dir" / "replay.ckpt"
    res = run_cli("--sandbox-url", sandbox.url, "replay", str(src), "--checkpoint", str(ckpt), cwd=tmp_path)
    assert res.code == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("cdpio: error:")]
    assert len(lines) == 1 and str(ckpt) in lines[0] and "does not exist" in lines[0]
    assert "mkdir" in lines[0] and "internal error" not in res.stderr and "Traceback" not in res.stderr
    assert request_total(sandbox) == 0
    as_json = run_cli(
        "--sandbox-url", sandbox.url, "--json", "replay", str(src), "--checkpoint", str(tmp_path), cwd=tmp_path
    )  # a directory, not a file
    assert as_json.code == 2 and "is a directory" in as_json.json["error"]["message"]
    assert request_total(sandbox) == 0


# --- the dead-letter file: no write keys, and the text of unreadable lines -----------


def test_dead_letter_never_holds_a_write_key_and_keeps_unreadable_text(sandbox_factory, tmp_path):
    sb = sandbox_factory(fail_rate=1.0, fail_status=400, seed=1)  # every send is dead-lettered
    wk = ["InMessageWriteKey0001", "InBrokenLineWriteKey02", "InInvalidWriteKey0003", "InListWriteKey000004"]
    broken = '{"type": "track", "writeKey": "%s", "event": "Cut", "userId": "u' % wk[1]
    long_broken = '{"type": "track", "properties": {"blob": "' + "x" * 100_000
    lines = [
        json.dumps({"type": "track", "event": "E", "userId": "u1", "messageId": "m-1", "writeKey": wk[0]}),
        broken,
        json.dumps({"type": "track", "userId": "u3", "writeKey": wk[2]}),  # no event: invalid
        json.dumps([{"type": "track", "event": "E", "userId": "u4", "writeKey": wk[3]}]),
        long_broken,
    ]
    src = tmp_path / "in.ndjson"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dl = tmp_path / "dl.ndjson"
    res = run_cli(
        "--sandbox-url",
        sb.url,
        "--json",
        "replay",
        str(src),
        "--skip-invalid",
        "--dead-letter",
        str(dl),
        "--max-retries",
        "0",
        cwd=tmp_path,
    )
    assert res.code == 1, res.stderr
    text = dl.read_text(encoding="utf-8")
    for key in wk:
        assert key not in text and key not in res.output
    assert '"writeKey"' not in text.replace('"writeKey": "[removed by cdpio]"', "")
    by_line = {d["_cdpio"]["line"]: d for d in read_lines(dl)}
    assert set(by_line) == {1, 2, 3, 4, 5}
    assert by_line[1]["messageId"] == "m-1" and "writeKey" not in by_line[1]
    assert by_line[2]["_cdpio"]["raw"] == broken.replace(wk[1], "[removed by cdpio]")
    assert "writeKey" not in by_line[3] and by_line[3]["userId"] == "u3"
    assert by_line[4]["_cdpio"]["value"] == [{"type": "track", "event": "E", "userId": "u4"}]
    cut = by_line[5]["_cdpio"]
    assert cut["raw"] == long_broken[: 64 * 1024] and "truncated" in cut["raw_note"]
    assert f"{len(long_broken):,} bytes" in cut["raw_note"]

    # Replaying the dead-letter file names what is wrong with each line, and a
    # line with no message keeps its original text when it is dead-lettered again.
    again = run_cli("--sandbox-url", sb.url, "--json", "replay", str(dl), cwd=tmp_path)
    assert again.code == 2 and "Traceback" not in again.stderr
    reasons = [c["message"] for c in again.json["checks"] if c["id"] == "replay.invalid"]
    assert sum("could not be read" in r and "_cdpio.raw" in r for r in reasons) == 2
    assert sum("not a message object" in r and "_cdpio.value" in r for r in reasons) == 1
    dl2 = tmp_path / "dl2.ndjson"
    skipped = run_cli(
        "--sandbox-url",
        sb.url,
        "replay",
        str(dl),
        "--skip-invalid",
        "--dead-letter",
        str(dl2),
        "--max-retries",
        "0",
        cwd=tmp_path,
    )
    assert skipped.code == 1, skipped.stderr
    kept = {d["_cdpio"]["raw"]: d["_cdpio"].get("raw_note") for d in read_lines(dl2) if "raw" in d["_cdpio"]}
    assert kept == {by_line[2]["_cdpio"]["raw"]: None, cut["raw"]: cut["raw_note"]}


@pytest.mark.parametrize("status,retries,code", [(500, 1, 4), (503, 0, 4), (400, 0, 1), (429, 0, 1)])
def test_cli_exit_4_when_every_request_failed_with_5xx_after_retries(sandbox_factory, tmp_path, status, retries, code):
    # Nothing accepted and every failure the service's (5xx after the retries):
    # exit 4, as for check-keys and send-test; a 4xx (429 included) is a
    # rejection: exit 1.  Either way the messages are in the dead-letter file.
    sb = sandbox_factory(fail_rate=1.0, fail_status=status, seed=3)
    src = write_ndjson(tmp_path / "in.ndjson", msgs(20))
    res = run_cli(
        "--sandbox-url",
        sb.url,
        "--json",
        "replay",
        str(src),
        "--batch-size",
        "10",
        "--max-retries",
        str(retries),
        "--rate",
        "0",
        cwd=tmp_path,
    )
    assert res.code == code, res.stderr
    s = res.json["summary"]
    assert s["accepted"] == 0 and s["failed"] == 20 and "aborted" not in s
    assert s["status_counts"] == {str(status): 2 * (retries + 1)}
    assert len(read_lines(tmp_path / s["dead_letter"])) == 20
    assert res.json["exit_code"] == code


def test_cli_exit_1_when_some_were_accepted_and_the_rest_failed_with_5xx(sandbox_factory, tmp_path):
    sb = sandbox_factory(fail_rate=0.5, fail_status=500, seed=5)
    src = write_ndjson(tmp_path / "in.ndjson", msgs(40))
    res = run_cli(
        "--sandbox-url",
        sb.url,
        "--json",
        "replay",
        str(src),
        "--batch-size",
        "2",
        "--max-retries",
        "0",
        "--rate",
        "0",
        "--concurrency",
        "1",
        cwd=tmp_path,
    )
    assert res.code == 1, res.stderr
    s = res.json["summary"]
    assert s["accepted"] > 0 and s["failed"] > 0 and s["accepted"] + s["failed"] == 40
