"""One exception family for everything the user can fix.

The CLI turns a CdpioError into one line on stderr and its exit code; nothing
else reaches the user as a traceback.  Messages must never contain a secret:
build them from masked values (credentials.mask) only.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from cdpio_cli.enums import TextEnum


class ExitCode(IntEnum):
    """The exit codes (docs/output.md "Exit codes").  When several apply the most
    important wins: INTERRUPTED > USAGE > CREDENTIAL > UNREACHABLE > CHECK_FAILED."""

    OK = 0
    CHECK_FAILED = 1  # a check failed: status, delivery, lint error
    USAGE = 2  # usage, config or input error
    CREDENTIAL = 3  # a service rejected a credential
    UNREACHABLE = 4  # network, timeout, 5xx after retries
    INTERRUPTED = 130  # Ctrl-C or a signal stopped the run

    def __str__(self) -> str:  # "2", not "ExitCode.USAGE", on every Python
        return str(self.value)


class FailureKind(TextEnum):
    """Why a failed check failed; decides its exit code (`exit_code_for`)."""

    CHECK = "check"
    USAGE = "usage"
    CREDENTIAL = "credential"
    UNREACHABLE = "unreachable"
    INTERRUPTED = "interrupted"


_FAILURE_EXIT = {
    FailureKind.CHECK: ExitCode.CHECK_FAILED,
    FailureKind.USAGE: ExitCode.USAGE,
    FailureKind.CREDENTIAL: ExitCode.CREDENTIAL,
    FailureKind.UNREACHABLE: ExitCode.UNREACHABLE,
    FailureKind.INTERRUPTED: ExitCode.INTERRUPTED,
}

# Importance of each exit code when several apply (higher wins).
_PRIORITY: dict[int, int] = {
    ExitCode.INTERRUPTED: 5,
    ExitCode.USAGE: 4,
    ExitCode.CREDENTIAL: 3,
    ExitCode.UNREACHABLE: 2,
    ExitCode.CHECK_FAILED: 1,
    ExitCode.OK: 0,
}


def exit_code_for(kind: FailureKind) -> ExitCode:
    """The exit code a failure of this kind gives."""
    return _FAILURE_EXIT.get(kind, ExitCode.CHECK_FAILED)


def failure_for_exit_code(code: int) -> FailureKind:
    """The failure kind that yields `code` (for cores that decide an exit code
    first); CHECK for 0 or an unknown code."""
    return next((kind for kind, exit_code in _FAILURE_EXIT.items() if exit_code == code), FailureKind.CHECK)


def worst_exit_code(codes: Iterable[int]) -> ExitCode:
    """Combine exit codes by importance (130 > 2 > 3 > 4 > 1 > 0)."""
    best = ExitCode.OK
    for code in codes:
        if _PRIORITY.get(code, 0) > _PRIORITY[best]:
            best = ExitCode(code)
    return best


class CdpioError(Exception):
    """An error the user can act on: a one-line message, an exit code and a hint."""

    exit_code: ExitCode = ExitCode.CHECK_FAILED

    def __init__(self, message: str, *, hint: str | None = None, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.file = file
        self.line = line

    def location(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""

    def one_line(self) -> str:
        """`file:line: message (hint)` on a single line."""
        text = self.message
        loc = self.location()
        if loc:
            text = f"{loc}: {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return " ".join(text.split("\n"))

    def __str__(self) -> str:
        return self.one_line()


class UsageError(CdpioError):
    """Bad flags, bad config, bad input files (exit 2)."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The config file is missing, unreadable, invalid YAML or fails the schema."""


class InputError(UsageError):
    """A fixture file could not be read or parsed."""


class CredentialError(CdpioError):
    """A service rejected a credential (exit 3)."""

    exit_code = ExitCode.CREDENTIAL


class UnreachableError(CdpioError):
    """A service could not be reached: network, timeout, 5xx after retries (exit 4)."""

    exit_code = ExitCode.UNREACHABLE
