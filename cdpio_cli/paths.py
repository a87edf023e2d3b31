"""Output paths are checked before any work is done: a report, checkpoint,
dead-letter or record file that cannot be written must fail the command up
front (exit 2), not after every event was sent."""

from __future__ import annotations

import errno
import os
from typing import BinaryIO

from cdpio_cli.errors import UsageError


class OutputPathError(UsageError):
    """An output path that must not be written (a symlink, an input, another
    output): nothing is written, not even the JUnit report."""


def check_writable_file(path: str, flag: str, example: str) -> None:
    """`flag PATH` will be written (created, appended or replaced): its
    directory must exist and be writable, and PATH must not be a directory
    or a symbolic link (cdpio never writes through a link it did not create)."""
    if os.path.islink(path):
        raise OutputPathError(
            f"{flag} {path} is a symbolic link; cdpio does not write through links it did not create",
            hint=f"pass {flag} with the real path, or remove the link",
        )
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a directory", hint=f"pass {flag} with a file path, e.g. {example}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(
            f"{flag} {path}: the directory {parent} does not exist",
            hint=f"create it (mkdir -p {parent}), or pass {flag} with a path in an existing directory",
        )
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: the file is not writable", hint=f"pass {flag} with a writable file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"{flag} {path}: the directory {parent} is not writable",
            hint=f"pass {flag} with a path in a writable directory",
        )


def _identity(path: str) -> tuple:
    """What makes two paths the same file: the inode when it exists (hard
    links, symlinks, bind mounts), else the resolved path."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


def check_outputs(outputs: list[tuple[str, str]], inputs: list[str]) -> None:
    """Every file a command will write, checked together before any work:
    each writable, none a symlink, none the same file as another output or
    as an input.  `outputs` is [(flag, path)]; `inputs` are files read."""
    seen: dict[tuple, str] = {}
    input_ids: dict[tuple, str] = {}
    for path in inputs:
        input_ids.setdefault(_identity(path), path)
        input_ids.setdefault(("path", os.path.realpath(path)), path)
    for flag, path in outputs:
        check_writable_file(path, flag, path)
        ident = _identity(path)
        # Also compare resolved paths: a file that does not exist yet has no inode.
        resolved = ("path", os.path.realpath(path))
        for key in (ident, resolved):
            if key in input_ids:
                raise OutputPathError(
                    f"{flag} {path} is also an input file ({input_ids[key]}); writing it would destroy the input",
                    hint=f"pass {flag} with another path",
                )
            if key in seen and seen[key] != flag:
                raise OutputPathError(
                    f"{flag} {path} is the same file as {seen[key]}; one would overwrite the other",
                    hint=f"pass {flag} and {seen[key]} with different paths",
                )
        seen[ident] = seen[resolved] = flag


def open_private(path: str, *, append: bool = False, truncate: bool = False, buffering: int = -1) -> BinaryIO:
    """Open a file that holds event data for writing: created 0600, never
    through a symlink (O_NOFOLLOW), positioned at the end when `append`."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if truncate:
        flags |= os.O_TRUNC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputPathError(
                f"{path} is a symbolic link; cdpio does not write through links it did not create",
                hint="pass the real path, or remove the link",
            ) from None
        raise
    fh = os.fdopen(fd, "r+b", buffering=buffering)
    if append:
        fh.seek(0, os.SEEK_END)
    return fh
