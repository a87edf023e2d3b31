"""One exception family for everything the user can fix.

The CLI turns a CdpioError into one line on stderr and its exit code; nothing
else reaches the user as a traceback.  Messages must never contain a secret:
build them from masked values (credentials.mask) only.
"""

from __future__ import annotations

# Exit codes (docs/output.md "Exit codes").  When several apply the most
# important wins: INTERRUPTED > USAGE > CREDENTIAL > UNREACHABLE > CHECK_FAILED.
EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_CREDENTIAL = 3
EXIT_UNREACHABLE = 4
EXIT_INTERRUPTED = 130

_PRIORITY = {
    EXIT_INTERRUPTED: 5,
    EXIT_USAGE: 4,
    EXIT_CREDENTIAL: 3,
    EXIT_UNREACHABLE: 2,
    EXIT_CHECK_FAILED: 1,
    EXIT_OK: 0,
}


def worst_exit_code(codes) -> int:
    """Combine exit codes by importance (130 > 2 > 3 > 4 > 1 > 0)."""
    best = EXIT_OK
    for code in codes:
        if _PRIORITY.get(code, 0) > _PRIORITY.get(best, 0):
            best = code
    return best


class CdpioError(Exception):
    """An error the user can act on: a one-line message, an exit code and a hint."""

    exit_code = EXIT_CHECK_FAILED

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

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The config file is missing, unreadable, invalid YAML or fails the schema."""


class InputError(UsageError):
    """A fixture file could not be read or parsed."""


class CredentialError(CdpioError):
    """A service rejected a credential (exit 3)."""

    exit_code = EXIT_CREDENTIAL


class UnreachableError(CdpioError):
    """A service could not be reached: network, timeout, 5xx after retries (exit 4)."""

    exit_code = EXIT_UNREACHABLE


class CheckFailed(CdpioError):
    """A check ran and failed: unexpected status, not delivered, lint error (exit 1)."""

    exit_code = EXIT_CHECK_FAILED
