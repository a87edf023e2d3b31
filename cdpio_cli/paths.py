"""Output paths are checked before any work is done: a report, checkpoint,
dead-letter or record file that cannot be written must fail the command up
front (exit 2), not after every event was sent."""

from __future__ import annotations

import os

from cdpio_cli.errors import UsageError


def check_writable_file(path: str, flag: str, example: str) -> None:
    """`flag PATH` will be written (created, appended or replaced): its
    directory must exist and be writable, and PATH must not be a directory."""
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a directory", hint=f"pass {flag} with a file path, e.g. {example}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{flag} {path}: the directory {parent} does not exist",
                         hint=f"create it (mkdir -p {parent}), or pass {flag} with a path in an existing directory")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: the file is not writable", hint=f"pass {flag} with a writable file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: the directory {parent} is not writable",
                         hint=f"pass {flag} with a path in a writable directory")
