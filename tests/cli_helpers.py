"""Run the real `cdpio` CLI in a subprocess, as a user would."""

from __future__ import annotations

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
    *args: str, cwd: str | Path | None = None, env: dict | None = None, input: str | None = None, timeout: float = 120
) -> Result:
    full_env = clean_env(**{"COLUMNS": "200", **(env or {})})
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


def write_config(directory: Path, text: str, name: str = "cdpio.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(text, encoding="utf-8")
    return path
