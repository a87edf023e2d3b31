"""Run the real `cdpio` CLI as a user would: in-process through `main(argv)`
(the way httpie's test helper does), or in a subprocess where the process
itself is under test (signals, a hung server, stdin/TTY handling, timeouts).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cdpio_cli.ci import CI_ENV_VARS

# Env vars that would leak the developer's own setup (or the CI job the suite
# runs in: CI=true makes cdpio refuse an unconfigured sandbox) into a test.
_SCRUB = (
    "CDPIO_CONFIG",
    "GITHUB_STEP_SUMMARY",
    "NO_COLOR",
    "FORCE_COLOR",
    "SEGMENT_WRITE_KEY",
    "CUSTOMERIO_SITE_ID",
    "CUSTOMERIO_TRACK_API_KEY",
    "CUSTOMERIO_APP_API_KEY",
    "CUSTOMERIO_PIPELINES_API_KEY",
    "SEGMENT_PUBLIC_API_TOKEN",
    *CI_ENV_VARS,
)


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the developer's or the CI job's settings, plus `extra`:
    the environment every CLI subprocess a test starts should get."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("CDPIO_SANDBOX_")}
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(
    *args: str,
    cwd: str | Path | None = None,
    env: dict | None = None,
    input: str | None = None,
    timeout: float = 120,
    subprocess_: bool = False,
) -> Result:
    """Run `cdpio ARGS`.  In-process by default; `subprocess_=True` (or
    CDPIO_TEST_SUBPROCESS=1 for the whole suite) starts a real process, which
    is what a test of signals, timeouts or process exit needs, and so does an
    environment that changes how Python starts (PYTHONPATH)."""
    full_env = clean_env(**{"COLUMNS": "200", **(env or {})})
    if subprocess_ or "PYTHONPATH" in (env or {}) or os.environ.get("CDPIO_TEST_SUBPROCESS") == "1":
        proc = subprocess.run(
            [sys.executable, "-m", "cdpio_cli", *args],
            cwd=cwd,
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)
    return _run_in_process(list(args), cwd=cwd, env=full_env, input=input)


class _Stream(io.TextIOWrapper):
    """A captured, non-terminal text stream with a `.buffer`, like a pipe's."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict", newline="\n", write_through=True)

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]


def _run_in_process(argv: list[str], *, cwd, env: dict[str, str], input: str | None) -> Result:
    """One `main(argv)` call with its own environment, working directory and
    standard streams, restored afterwards: what a fresh process would see."""
    from cdpio_cli import credentials
    from cdpio_cli.cli.app import main

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    out, err = _Stream(), _Stream()
    code = 0
    try:
        os.environ.clear()
        os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = io.StringIO(input or "")
        sys.stdout, sys.stderr = out, err
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        # A process forgets the secrets it registered when it exits.
        credentials.forget_secrets()
    return Result(code, out.text(), err.text())


def write_config(directory: Path, text: str, name: str = "cdpio.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(text, encoding="utf-8")
    return path
