"""`--rate R` never puts more than R requests into any one second, and the
sandbox's throttle bucket has a configurable capacity, so it can refuse a
burst that a full second's worth of tokens would hide."""

from __future__ import annotations

import bisect
import random
import signal

import httpx

from cdpio_cli.replay import ReplayOptions, replay, replay_burst
from cdpio_cli.sandbox import defaults
from cdpio_cli.transport import TokenBucket
from tests.test_replay import msgs, route_for, write_ndjson
from tests.test_sandbox_cli import run as run_cli
from tests.test_sandbox_cli import start as start_cli


def _max_in_window(stamps: list[float], width: float) -> int:
    """The most arrivals in any half-open window [t, t + width)."""
    stamps = sorted(stamps)
    return max(bisect.bisect_left(stamps, t + width) - i for i, t in enumerate(stamps))


def test_rate_never_bursts_above_r_in_any_second():
    """The limiter replay builds for `--rate R` (with its catch-up burst),
    driven by a clock that jumps as a busy machine's does: every second-long
    window holds at most R requests, at the start, after an idle pause and
    while late senders catch up."""
    rate = 100
    now = [1000.0]
    bucket = TokenBucket(rate, burst=replay_burst(rate), clock=lambda: now[0])
    rng = random.Random(3)
    used = []
    for i in range(2000):
        if i == 700:
            now[0] += 30.0  # idle: the bucket would bank a burst
        elif i % 50 == 0:
            now[0] += rng.uniform(0.0, 0.04)  # a stall: senders wake late
        slot = bucket.reserve()
        used.append(max(slot, now[0]))  # a slot in the past is used now
        now[0] = max(now[0], slot)
    assert _max_in_window(used, 1.0) <= rate
    # ...and it still paces at the rate over the run (the burst wins back stalls).
    assert len(used) / (used[-1] - used[0] - 30.0) > rate * 0.97


def test_replay_at_a_rate_gets_no_429_from_a_tight_sandbox_bucket(sandbox_factory, tmp_path):
    # The sandbox's bucket holds a quarter second of requests, not a full one:
    # a client that keeps to the rate is never refused.
    rate, n = 40, 60
    src = write_ndjson(tmp_path / "in.ndjson", msgs(n))
    sb = sandbox_factory(throttle=rate, throttle_burst=rate / 4)
    result = replay([str(src)], route_for(sb, batch_size=1), ReplayOptions(rate=rate, concurrency=8, max_retries=0))
    assert result.status_counts == {"200": n}


def _track(sb, mid: str) -> int:
    return httpx.post(
        sb.endpoint("segment") + "/v1/track",
        auth=(defaults.WRITE_KEY, ""),
        timeout=30,
        json={"userId": "u1", "event": "A", "messageId": mid},
    ).status_code


def test_sandbox_throttle_bucket_capacity_is_configurable(sandbox_factory):
    # One request per 100 s, with a bucket of three: three pass, the fourth is refused.
    sb = sandbox_factory(throttle=0.01, throttle_burst=3)
    assert [_track(sb, f"m{i}") for i in range(4)] == [200, 200, 200, 429]


def test_cli_throttle_burst_flag_is_honoured():
    # `cdpio sandbox --throttle-burst N` sets the same bucket: three pass, the fourth is refused.
    proc, url, _ = start_cli("--throttle", "0.01", "--throttle-burst", "3")
    try:
        codes = [
            httpx.post(
                url + "/segment/v1/track",
                auth=(defaults.WRITE_KEY, ""),
                timeout=30,
                json={"userId": "u1", "event": "A", "messageId": f"c{i}"},
            ).status_code
            for i in range(4)
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert codes == [200, 200, 200, 429]


def test_cli_throttle_burst_bad_value_is_one_usage_line():
    for args, expected in (
        (
            ("--throttle", "10", "--throttle-burst", "0.5"),
            "--throttle-burst must be a number of requests of at least 1",
        ),
        (
            ("--throttle", "10", "--throttle-burst", "nan"),
            "--throttle-burst must be a number of requests of at least 1",
        ),
        (("--throttle-burst", "3"), "--throttle-burst needs --throttle"),
    ):
        r = run_cli("--port", "0", *args)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr  # one line, no traceback
        assert r.stderr.startswith("cdpio: error: ")
        assert expected in r.stderr
