"""Names that nearly match: `Signed up` vs `Signed Up`, `signed_up` vs `Signed Up`.

A campaign's trigger event spelled differently from the event the app sends
never fires; send-test, verify (campaigns.py) and `cdpio audit` name the
difference.
"""

from __future__ import annotations

import re


def words(name: str) -> tuple[str, ...]:
    """`Signed Up`, `signed_up`, `signed-up`, `SignedUp ` -> ("signed", "up")."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return tuple(w for w in re.split(r"[\s_\-.]+", spaced.lower()) if w)


def near_miss(expected: str, candidates: list[str]) -> str | None:
    """A candidate with the same words as `expected` but not the same spelling."""
    key = words(expected)
    return next((c for c in candidates if c != expected and words(c) == key and key), None)


def difference(a: str, b: str) -> str:
    """What differs between two near-identical names, with carets under it."""

    def squash(text: str) -> str:
        return re.sub(r"[\s_\-]+", " ", text).strip()

    if a.lower() == b.lower():
        kind = "case differs"
    elif squash(a) == squash(b):
        kind = "snake_case vs spaced words" if "_" in a + b else "spacing differs"
    elif squash(a).lower() == squash(b).lower():
        kind = "case and " + ("snake_case vs spaced words" if "_" in a + b else "spacing") + " differ"
    else:
        kind = "spelling differs"
    marks = "".join(
        "^" if i >= len(a) or i >= len(b) or a[i] != b[i] else " " for i in range(max(len(a), len(b)))
    ).rstrip()
    return f"{kind} (`{a}` vs `{b}`, at `{marks}`)" if marks else kind
