"""Issue 12, the client's network side: against a hostile server (hostile.py)
cdpio never hands credentials to a foreign host, reads bounded response bodies,
ends every command within its documented bound, reports an answer of the wrong
shape clearly, and masks secrets before cutting texts short.

Never a wall-clock assertion: each command gets a generous subprocess bound,
and finishing before it is the proof.  Memory is the peak RSS of the CLI
process (ru_maxrss, measured by a wrapper process whose only child it is).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from cdpio_cli.sandbox import defaults
from tests.cli_helpers import write_config
from tests.reliability._support import assert_clean_failure, msgs, run_all, run_bounded, write_ndjson
from tests.reliability.hostile import WEEK, HostileServer, child_env, make_tls, run_measured

pytest.importorskip("cryptography")

SANDBOX_CONFIG = """\
version: 1
verify: {timeout: 2s, poll_interval: 200ms}
"""

# --- finding 1: credentials and redirects -------------------------------------------------------

EVIL = "evil.localtest"
EU = "track-eu.customer.io"
TRACK_CONFIG = """\
version: 1
customerio:
  site_id: ${SID}
  track_api_key: ${TKEY}
  region: us
  track_endpoint: ${TRACK_ENDPOINT}
replay: {max_retries: 0, timeout: 5s, rate: 0, batch_size: 1, concurrency: 1}
"""
TRACK_ENV = {"SID": defaults.SITE_ID, "TKEY": defaults.TRACK_API_KEY}
REGION_BODY = {"url": "https://track.customer.io", "region": "us", "environment_id": 1}


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    ctx, cafile = make_tls(d, [EVIL, EU])
    return ctx, child_env(d, [EVIL, EU], cafile)


def _track_run(work: Path, env: dict, origin_url: str, *args: str):
    work.mkdir(exist_ok=True)
    write_config(work, TRACK_CONFIG)
    write_ndjson(work / "in.ndjson", msgs(3))
    return run_bounded(*args, cwd=work, env={**env, **TRACK_ENV, "TRACK_ENDPOINT": origin_url}, timeout=90)


def test_credentials_follow_a_redirect_only_to_the_eu_track_host_never_to_a_foreign_one(tmp_path, tls):
    ctx, env = tls
    # A foreign https host (a name that is neither loopback nor *.customer.io):
    # it must see no request at all -- no Authorization header, and no event
    # data either -- and its answer must not count as "authenticated".
    with (
        HostileServer("ok", ssl_context=ctx, body=REGION_BODY) as evil,
        HostileServer("redirect", ssl_context=ctx, to=evil.url(EVIL)) as origin,
    ):
        replay = _track_run(
            tmp_path / "evil",
            env,
            origin.url(),
            "replay",
            "in.ndjson",
            "--route",
            "customerio",
            "--dead-letter",
            "dl.ndjson",
        )
        keys = _track_run(tmp_path / "evil", env, origin.url(), "--json", "check-keys", "--timeout", "5")
        assert "Traceback" not in replay.output + keys.output, replay.stderr + keys.stderr
        # The test proves something only if cdpio did talk to the origin with credentials.
        assert origin.seen and all("authorization" in r.headers for r in origin.seen), origin.seen
        assert [r for r in evil.seen if "authorization" in r.headers] == []
        assert evil.seen == [], "a credentialed request (and its body) followed a redirect to a foreign host"
    assert replay.code != 0 and EVIL in replay.stderr and "not followed" in replay.stderr, replay.stderr
    track = [c for c in keys.json["checks"] if c["id"] == "customerio.track" and c["tier"] == "authenticated"]
    assert track and track[0]["status"] == "failed", track
    assert EVIL in track[0]["message"], track

    # The EU Track host over https may see them: the redirect carries them, and
    # later batches go straight there.
    with (
        HostileServer("ok", ssl_context=ctx) as eu,
        HostileServer("redirect", ssl_context=ctx, to=eu.url(EU)) as origin,
    ):
        res = _track_run(
            tmp_path / "eu",
            env,
            origin.url(),
            "--json",
            "replay",
            "in.ndjson",
            "--route",
            "customerio",
            "--dead-letter",
            "dl.ndjson",
        )
        assert res.code == 0, res.stderr
        assert len(origin.seen) == 1, "later batches should go straight to the EU host"
        assert len(eu.seen) == 3 and all("authorization" in r.headers for r in eu.seen)


# --- findings 3, 4, 5: size, time and shape --------------------------------------------------------


def _args_for(name: str) -> tuple[str, ...]:
    return {
        "check-keys": ("check-keys", "--timeout", "2"),
        "check-keys-json": ("--json", "check-keys", "--timeout", "2"),
        "send-test": ("send-test", "--timeout", "2s", "--no-verify"),
        "replay": (
            "replay",
            "in.ndjson",
            "--timeout",
            "1",
            "--max-retries",
            "0",
            "--rate",
            "0",
            "--dead-letter",
            "dl.ndjson",
        ),
    }[name]


# (behaviour, params, command, subprocess bound in s).  The commands' own bounds
# are a few seconds (docs/security.md); the subprocess bounds leave room for a
# loaded machine.  Before the fix, each of these ran for minutes.
TIME_CASES = {
    "slowloris-check-keys": ("slowloris", {"interval": 0.3}, "check-keys", 60),
    "slowloris-replay": ("slowloris", {"interval": 0.3}, "replay", 60),
    "retry-after-check-keys": ("retry_after", {"seconds": 999999}, "check-keys", 60),
    "retry-after-send-test": ("retry_after", {"seconds": WEEK}, "send-test", 60),
}
SHAPE_CASES = {
    "list": [{"region": "us"}],
    "string": "ok",
}


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory):
    servers = {name: HostileServer(b, **params) for name, (b, params, _, _) in TIME_CASES.items()}
    servers.update({f"shape-{k}": HostileServer("ok", body=v) for k, v in SHAPE_CASES.items()})
    for s in servers.values():
        s.__enter__()
    try:
        jobs = {}
        for name, server in servers.items():
            command, bound = ("check-keys-json", 60) if name.startswith("shape-") else TIME_CASES[name][2:]
            work = tmp_path_factory.mktemp(name)
            write_config(work, SANDBOX_CONFIG)
            write_ndjson(work / "in.ndjson", msgs(3))
            jobs[name] = (("--sandbox-url", server.url(), *_args_for(command)), {"cwd": work, "timeout": bound})
        return run_all(jobs, workers=len(jobs)), {n: list(s.seen) for n, s in servers.items()}
    finally:
        for s in servers.values():
            s.__exit__(None, None, None)


@pytest.mark.slow  # a sweep: .ci/run runs it with -m slow
@pytest.mark.parametrize("name", [n for n in TIME_CASES if n.startswith("slowloris")])
def test_a_server_trickling_bytes_cannot_hold_a_command(hostile_results, name):
    results, seen = hostile_results
    res = results[name]
    assert res is not None, f"did not finish within {TIME_CASES[name][3]} s (slowloris held it)"
    assert seen[name], "the slow server was never asked"
    assert_clean_failure(res, 4)
    assert "timed out" in res.stderr, res.stderr


@pytest.mark.parametrize("name", [n for n in TIME_CASES if n.startswith("retry-after")])
def test_a_retry_after_of_a_week_is_not_waited_for(hostile_results, name):
    results, seen = hostile_results
    res = results[name]
    assert res is not None, f"did not finish within {TIME_CASES[name][3]} s (waited for Retry-After)"
    assert seen[name], "the server was never asked"
    assert_clean_failure(res, 4)
    assert "429" in res.stderr and "retry after" in res.stderr, res.stderr


@pytest.mark.parametrize("kind", list(SHAPE_CASES))
def test_a_200_with_json_of_the_wrong_shape_is_a_clear_failure(hostile_results, kind):
    results, _ = hostile_results
    res = results[f"shape-{kind}"]
    assert res is not None
    assert "Traceback" not in res.output and "internal error" not in res.output, res.stderr
    assert res.code == 4, res.stderr
    doc = res.json  # still one JSON document under --json
    checks = {c["id"]: c for c in doc["checks"] if c["tier"] == "authenticated"}
    for check_id in ("customerio.track", "customerio.app"):
        assert checks[check_id]["status"] == "failed", checks[check_id]
        assert f"a JSON {kind}" in checks[check_id]["message"], checks[check_id]


# Memory: a normal check-keys run is the baseline; a 100 MB body or a gzip
# bomb of 100 MB may add no more than the cap (10 MB) and some slack.  Before
# the fix each added twice its size.
BIG = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def memory_results(tmp_path_factory):
    cases = {
        "baseline": HostileServer("ok", body=REGION_BODY),
        "huge": HostileServer("huge", size=BIG),
        "gzip-bomb": HostileServer("gzip_bomb", size=BIG),
    }
    for s in cases.values():
        s.__enter__()
    try:
        from concurrent.futures import ThreadPoolExecutor

        def one(item):
            name, server = item
            work = tmp_path_factory.mktemp(f"mem-{name}")
            write_config(work, SANDBOX_CONFIG)
            return name, run_measured(
                "--sandbox-url", server.url(), "check-keys", "--timeout", "5", cwd=work, timeout=120
            )

        with ThreadPoolExecutor(3) as pool:
            return dict(pool.map(one, cases.items()))
    finally:
        for s in cases.values():
            s.__exit__(None, None, None)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["huge", "gzip-bomb"])
def test_response_bodies_are_capped_with_memory_bounded(memory_results, name):
    base, res = memory_results["baseline"], memory_results[name]
    assert "Traceback" not in res.output, res.stderr
    assert res.code == 4, res.stderr
    assert "larger than 10 MB" in res.stderr, res.stderr
    assert res.maxrss_mb < base.maxrss_mb + 64, (res.maxrss_mb, base.maxrss_mb)


# --- finding 5: timeouts that are not numbers of seconds --------------------------------------------

BAD_TIMEOUTS = ["inf", "nan", "1e300", "-1"]


def test_timeout_flags_must_be_finite_positive_seconds(tmp_path):
    write_config(tmp_path, SANDBOX_CONFIG)
    write_ndjson(tmp_path / "in.ndjson", msgs(1))
    jobs = {}
    for value in BAD_TIMEOUTS:
        jobs[("check-keys", value)] = (
            ("--sandbox-url", "http://127.0.0.1:9", "check-keys", f"--timeout={value}"),
            {"cwd": tmp_path, "timeout": 60},
        )
    jobs[("replay", "nan")] = (
        ("--sandbox-url", "http://127.0.0.1:9", "replay", "in.ndjson", "--timeout=nan"),
        {"cwd": tmp_path, "timeout": 60},
    )
    for key, res in run_all(jobs).items():
        assert res is not None, key
        assert_clean_failure(res, 2)
        lines = [line for line in res.stderr.splitlines() if not line.startswith("using the sandbox at ")]
        assert len(lines) == 1 and lines[0].startswith("cdpio: error: --timeout "), (key, res.stderr)


# --- finding 6: masking before truncation, base64 credential pairs ------------------------------------

WK = "wkQz7SECRETcdpioWriteKey4821x"  # 29 characters, alphanumeric
SID, TKEY = "5ec2e7a1b2c3d4e5f6a7", "5ec2e7f0e1d2c3b4a596"
MASK_CONFIG = """\
version: 1
segment:
  write_key: ${WK}
  endpoint: ${ENDPOINT}
customerio:
  site_id: ${SID}
  track_api_key: ${TKEY}
  track_endpoint: ${ENDPOINT}
  region: us
replay: {max_retries: 0, timeout: 5s, rate: 0}
"""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _fragments() -> list[str]:
    """What must never appear: each secret without its last four characters
    (a mask may show those), and each base64 credential pair, padded or not."""
    pairs = [f"{WK}:", f":{WK}", f"{SID}:{TKEY}", f"{TKEY}:"]
    out = [WK[:-4], SID[:-4], TKEY[:-4], WK[:12]]
    for pair in pairs:
        token = _b64(pair)
        out += [token, token.rstrip("="), token[:-4]]
    return out


@pytest.mark.parametrize(
    "route,body",
    [
        # The key straddles the 300-character cut of error texts.
        ("segment", b"E" * 282 + WK.encode() + b" more"),
        # Basic tokens echoed without the word "Basic".
        ("segment", json.dumps({"message": f"bad token {_b64(WK + ':')} / {_b64(WK + ':').rstrip('=')}"}).encode()),
        (
            "customerio",
            json.dumps({"message": f"bad token {_b64(SID + ':' + TKEY).rstrip('=')} {_b64(':' + WK)}"}).encode(),
        ),
    ],
)
def test_secrets_are_masked_before_texts_are_cut_and_in_base64(tmp_path, route, body):
    with HostileServer("answer", status=400, body=body) as server:
        write_config(tmp_path, MASK_CONFIG)
        write_ndjson(tmp_path / "in.ndjson", msgs(2))
        env = {"WK": WK, "SID": SID, "TKEY": TKEY, "ENDPOINT": server.url()}
        res = run_bounded(
            "--json",
            "replay",
            "in.ndjson",
            "--route",
            route,
            "--dead-letter",
            "dl.ndjson",
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        assert server.seen, "the server was never asked"
    assert "Traceback" not in res.output and res.code == 1, res.stderr
    dead_letter = (tmp_path / "dl.ndjson").read_text()
    assert "400" in dead_letter, dead_letter  # the reason was written, so it was checked
    for where, text in (("stderr", res.stderr), ("--json", res.stdout), ("dead-letter", dead_letter)):
        for fragment in _fragments():
            assert fragment not in text, f"{fragment!r} in {where}"
