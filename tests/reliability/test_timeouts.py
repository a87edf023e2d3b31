"""Timeouts: against a service that accepts connections and never answers,
every command ends with exit 4 and a clear "timed out" message, bounded by
its configured timeout -- not hanging.

Never a wall-clock assertion: each command gets a subprocess timeout well
above what its own timeouts allow (requests x attempts x timeout, plus
start-up), and finishing before it is the proof.  The cases run at once:
they spend their time waiting on sockets, not on the CPU.
"""

from __future__ import annotations

import pytest

from tests.cli_helpers import write_config
from tests.reliability._support import SilentServer, assert_clean_failure, msgs, run_all, write_ndjson

# A long sweep (every command against a service that never answers): .ci/run runs it with -m slow.
pytestmark = pytest.mark.slow

CONFIG = """\
version: 1
verify: {timeout: 1s, poll_interval: 200ms}
replay: {timeout: 1s, max_retries: 1}
"""

# name -> (args, subprocess bound in seconds).  check-keys asks up to six
# services, each with up to three attempts of --timeout seconds.
CASES = {
    "check-keys": (("check-keys", "--timeout", "1"), 60),
    "replay-flags": (("replay", "in.ndjson", "--timeout", "1", "--max-retries", "1", "--rate", "0"), 45),
    "replay-config": (("replay", "in.ndjson", "--rate", "0"), 45),  # replay.timeout from the config
    "replay-customerio": (("replay", "in.ndjson", "--route", "customerio", "--timeout", "1", "--max-retries", "0"), 45),
    # send-test, verify and doctor: the only timeouts a user can set are the
    # delivery wait (--timeout / --within / verify.timeout).
    "send-test": (("send-test", "--timeout", "1s"), 60),
    "verify": (("verify", "--user-id", "u1", "--within", "1s"), 60),
    "doctor": (("doctor", "--within", "1s"), 60),
}


@pytest.fixture(scope="module")
def silent_results(tmp_path_factory):
    with SilentServer() as server:
        jobs = {}
        for name, (args, bound) in CASES.items():
            work = tmp_path_factory.mktemp(name)
            write_config(work, CONFIG)
            write_ndjson(work / "in.ndjson", msgs(20))
            jobs[name] = (("--sandbox-url", server.url, *args), {"cwd": work, "timeout": bound})
        results = run_all(jobs, workers=len(jobs))
        assert server.accepted > 0
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_a_silent_service_ends_the_command_with_exit_4(silent_results, name):
    res = silent_results[name]
    assert res is not None, f"did not finish within {CASES[name][1]} s"
    assert_clean_failure(res, 4)
    assert "timed out" in res.stderr, res.stderr


def test_connection_refused_is_exit_4_and_says_so(tmp_path):
    from tests.reliability._support import closed_port, run_bounded

    write_config(tmp_path, CONFIG)
    res = run_bounded(
        "--sandbox-url", f"http://127.0.0.1:{closed_port()}", "check-keys", "--timeout", "1", cwd=tmp_path, timeout=60
    )
    assert_clean_failure(res, 4)
    assert "could not connect" in res.stderr or "could not reach" in res.stderr, res.stderr
