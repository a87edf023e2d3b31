"""The starter config `cdpio init` writes."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cdpio_cli.errors import UsageError


def starter_config_text() -> str:
    return resources.files("cdpio_cli").joinpath("templates/cdpio.yaml").read_text(encoding="utf-8")


def write_starter_config(path: str, *, force: bool = False) -> Path:
    """Write the starter config; refuse to overwrite without force."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a directory", hint="pass a file path such as cdpio.yaml")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists", hint="pass --force to overwrite it")
    try:
        target.write_text(starter_config_text(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    return target
