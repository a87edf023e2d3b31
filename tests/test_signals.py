"""SIGTERM (a cancelled CI job, `docker stop`) stops every command as Ctrl-C
does: one line, exit 130, no traceback, nothing left running.  Replay's own
report on an interrupt is tested in tests/reliability/test_replay_spool_signals.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.cli_helpers import clean_env


@pytest.mark.parametrize("command", [["send-test"], ["doctor"], ["check-keys"]])
def test_sigterm_stops_a_command_like_ctrl_c(sandbox_factory, tmp_path, command):
    sb = sandbox_factory(latency=2.0)  # every answer is slow: the command is mid-request
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpio_cli", "--sandbox-url", sb.url, *command],
        cwd=tmp_path,
        env=clean_env(COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not httpx.get(sb.url + "/_sandbox/requests").json()["requests"]:
        time.sleep(0.02)  # wait until it is really talking to the services
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cdpio: interrupted" in err
    assert "Traceback" not in err + out
