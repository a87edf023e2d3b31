"""A `cdpio` process ends as Python's exit would end it, without the teardown
(cdpio_cli/cli/exiting.py): threads waited for, atexit handlers run, output
flushed, the same exit status."""

from __future__ import annotations

import subprocess
import sys

from tests.cli_helpers import clean_env

PRELUDE = """
import atexit, sys, threading, time
from cdpio_cli.cli.exiting import exit_process
atexit.register(lambda: sys.stdout.write(" atexit"))
sys.stdout.write("buffered")
sys.stderr.write("err")
"""


def _run(body: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + body], capture_output=True, text=True, timeout=60, env=clean_env()
    )


def test_atexit_handlers_run_and_output_is_flushed_with_the_exit_code():
    proc = _run("exit_process(3)")
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "buffered atexit", "err")
    assert _run("exit_process(None)").returncode == 0


def test_a_thread_python_would_wait_for_is_waited_for():
    body = """
def late():
    time.sleep(0.3)
    sys.stdout.write(" thread")
threading.Thread(target=late).start()
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # not waited for, as by Python
exit_process(0)
"""
    proc = _run(body)
    assert (proc.returncode, proc.stdout) == (0, "buffered thread atexit")


def test_a_message_is_printed_as_sys_exit_prints_it():
    proc = _run("exit_process('cdpio: bye')")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "buffered atexit", "errcdpio: bye\n")


def test_a_closed_stdout_ends_as_python_ends_it():
    # Python's own exit: the flush fails, the exit status stays the one given.
    ours = subprocess.run(
        [sys.executable, "-c", PRELUDE + "sys.stdout.close(); exit_process(4)"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert ours.returncode == 4


def test_the_cli_process_keeps_its_output_and_exit_codes():
    def cdpio(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cdpio_cli", *args], capture_output=True, text=True, timeout=60, env=clean_env()
        )

    version = cdpio("--version")
    assert version.returncode == 0 and version.stdout.startswith("cdpio ")
    unknown = cdpio("no-such-command")
    assert unknown.returncode == 2 and "No such command" in unknown.stderr
