"""The base of cdpio's string vocabularies (status, tier, severity, failure kind).

A member is its value: it compares and hashes equal to the plain string, and
str(), f-strings, json and orjson print the value, so output stays byte for
byte what the strings printed.  (enum.StrEnum does this from Python 3.11;
cdpio supports 3.10.)
"""

from __future__ import annotations

from enum import Enum


class TextEnum(str, Enum):
    """A str enum whose members print as their value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)
