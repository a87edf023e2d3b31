"""Credential hygiene: clean pasted keys, say what was removed, mask, check format.

Pasted keys pick up trailing newlines (secret files end in one), spaces,
non-breaking and zero-width characters, and wrapping quotes.  The services see
a different key and answer 401, or Segment silently drops everything.  We
clean them and say exactly what we removed, never the value.

Every cleaned secret is also registered here, so any text that leaves cdpio
(tables, JSON, JUnit, errors) can be passed through `redact` as a last guard.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdpio_cli.results import Check, Report

# Invisible characters that are never part of a key.
_ZERO_WIDTH = {
    "\u200b": "zero-width space",
    "\u200c": "zero-width non-joiner",
    "\u200d": "zero-width joiner",
    "\u2060": "word joiner",
    "\ufeff": "byte-order mark",
    "\u00ad": "soft hyphen",
}
_NAMED_SPACE = {
    "\n": "newline",
    "\r": "carriage return",
    "\t": "tab",
    " ": "space",
    "\u00a0": "non-breaking space",
    "\u202f": "narrow non-breaking space",
    "\u2007": "figure space",
    "\u3000": "ideographic space",
}
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019"}


# eq=False, repr=False: nothing compares or prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).
@dataclass(eq=False, repr=False)
class CleanResult:
    """A pasted value cleaned of quotes and stray whitespace, with what was fixed."""

    value: str
    fixes: list[str] = field(default_factory=list)
    # Characters left in the value that no service accepts in an HTTP header
    # (`position 17: U+00A0 NO-BREAK SPACE`); a key with any is unusable.
    problems: list[str] = field(default_factory=list)


def _is_space(ch: str) -> bool:
    if ch in _NAMED_SPACE or ch.isspace():
        return True
    if ch.isascii():
        return False  # the only ASCII space separator, " ", is isspace()
    import unicodedata  # 4.7 ms of import: only for a key with a character beyond ASCII

    return unicodedata.category(ch) == "Zs"


def _describe_run(chars: str, where: str) -> str:
    """'a trailing newline', '2 leading spaces', 'a leading space and a tab'."""
    groups: list[tuple[str, int]] = []
    for ch in chars:
        name = _NAMED_SPACE.get(ch) or _ZERO_WIDTH.get(ch) or f"U+{ord(ch):04X} whitespace"
        if groups and groups[-1][0] == name:
            groups[-1] = (name, groups[-1][1] + 1)
        else:
            groups.append((name, 1))
    parts = []
    for i, (name, count) in enumerate(groups):
        prefix = f"{where} " if i == 0 else ""
        if count == 1:
            parts.append(f"a {prefix}{name}")
        else:
            plural = name + ("es" if name.endswith("s") else "s")
            parts.append(f"{count} {prefix}{plural}")
    return " and ".join(parts)


# unicodedata has no names for control characters.
_CONTROL_NAMES = {
    "\x00": "NULL",
    "\t": "CHARACTER TABULATION",
    "\n": "LINE FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
}


def char_name(ch: str) -> str:
    """`U+00A0 NO-BREAK SPACE`: how a character is named in messages."""
    import unicodedata  # only when a message names a character (see _is_space)

    name = unicodedata.name(ch, None) or _CONTROL_NAMES.get(ch) or "<control>"
    return f"U+{ord(ch):04X} {name}"


def header_safe(ch: str) -> bool:
    """Can this character be part of a credential?  Every key, token and id
    of Segment and Customer.io is printable ASCII, and HTTP header values are
    ASCII (RFC 9110 section 5.5) with no spaces inside a Basic/Bearer token."""
    return "\x21" <= ch <= "\x7e"


def clean(raw: str) -> CleanResult:
    """Strip what cannot belong to a key and describe each removal; list each
    character left that no service can accept, by its position in `raw`."""
    # (position in raw, character): positions survive the stripping below.
    chars = list(enumerate(raw, start=1))
    fixes: list[str] = []
    # Invisible characters anywhere (they survive copy/paste from web pages).
    invisible = [ch for _, ch in chars if ch in _ZERO_WIDTH]
    if invisible:
        chars = [(i, ch) for i, ch in chars if ch not in _ZERO_WIDTH]
        names = sorted({_ZERO_WIDTH[ch] for ch in invisible})
        count = len(invisible)
        fixes.append(f"removed {count} invisible character{'s' if count > 1 else ''} ({', '.join(names)})")
    for _ in range(3):  # whitespace and quotes can nest: ' "key" \n'
        before = len(chars)
        i = 0
        while i < len(chars) and _is_space(chars[i][1]):
            i += 1
        j = len(chars)
        while j > i and _is_space(chars[j - 1][1]):
            j -= 1
        if i:
            fixes.append("removed " + _describe_run("".join(ch for _, ch in chars[:i]), "leading"))
        if j < len(chars):
            fixes.append("removed " + _describe_run("".join(ch for _, ch in chars[j:]), "trailing"))
        chars = chars[i:j]
        first, last = (chars[0][1], chars[-1][1]) if chars else ("", "")
        if len(chars) >= 2 and first in _QUOTE_PAIRS and last == _QUOTE_PAIRS[first]:
            kind = {'"': "double quotes", "'": "single quotes", "`": "backticks"}.get(first, "curly quotes")
            fixes.append(f"removed wrapping {kind}")
            chars = chars[1:-1]
        if len(chars) == before:
            break
    problems = [f"position {i}: {char_name(ch)}" for i, ch in chars if not header_safe(ch)]
    return CleanResult(value="".join(ch for _, ch in chars), fixes=fixes, problems=problems)


UNUSABLE_HINT = (
    "type the key again or copy it afresh from the service's settings page; web pages turn "
    "spaces and dashes into look-alike characters"
)


def unusable_message(problems: list[str], *, sent_nothing: bool = True) -> str:
    """`has a character no service accepts: position 17: U+00A0 NO-BREAK SPACE`."""
    n = len(problems)
    head = "has a character" if n == 1 else f"has {n} characters"
    return (
        f"{head} no service accepts: "
        + ", ".join(problems[:5])
        + (f" and {n - 5} more" if n > 5 else "")
        + ("; cdpio sent nothing with it" if sent_nothing else "")
    )


def mask(value: str | None) -> str:
    """At most the length and the last four characters: `[20 chars, ends 9f3a]`."""
    if value is None or value == "":
        return "[empty]"
    n = len(value)
    if n < 12:  # too short to show any of it safely
        return f"[{n} chars]"
    if not all(header_safe(ch) for ch in value[-4:]):
        return f"[{n} chars]"  # a NUL or control character would garble every output
    return f"[{n} chars, ends {value[-4:]}]"


# ---------------------------------------------------------------------------
# Format hints: a surprising format is a warning, never a rejection.
# ---------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class FormatHint:
    """Whether a value looks like the credential it is meant to be (a warning only)."""

    ok: bool
    message: str
    region: str | None = None  # a region the value itself reveals


def format_hint(field_name: str, value: str) -> FormatHint:
    """Does `value` look like a credential of this kind (its CredentialSpec.check_format)?"""
    from cdpio_cli.routes import registry

    if not value:
        return FormatHint(False, "is empty")
    spec = registry.credential(field_name)
    if spec is None or spec.check_format is None:
        return FormatHint(True, "present")
    return spec.check_format(value)


# ---------------------------------------------------------------------------
# Redaction: the last guard on everything cdpio prints or writes.
# ---------------------------------------------------------------------------

_GIVEN: set[str] = set()  # the secrets as registered (raw and cleaned forms)
_SECRETS: set[str] = set()  # those plus their Basic-auth (base64) forms
_ORDER: list[str] = []  # _SECRETS, longest first (a longer form may contain a shorter one)


def _b64_forms(text: str) -> set[str]:
    """`text` base64-encoded as a Basic token would be, padded and unpadded,
    standard and URL-safe alphabets."""
    data = text.encode("utf-8")
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        token = encode(data).decode("ascii")
        forms.update((token, token.rstrip("=")))
    return forms


def secret_forms(values: Iterable[str | None]) -> set[str]:
    """Every way these secrets can appear in text: as they are, and as the
    base64 of each credential pair a Basic header carries (`site_id:key`,
    `key:` for Segment and legacy Pipelines keys, `:key`)."""
    plain = {v for v in values if v}
    forms = set(plain)
    for a in plain:
        forms |= _b64_forms(f"{a}:") | _b64_forms(f":{a}")
        for b in plain:
            if a != b:
                forms |= _b64_forms(f"{a}:{b}")
    return {f for f in forms if len(f) >= 6}  # shorter strings would redact ordinary words


def register_secret(*values: str | None) -> None:
    """Remember a secret (raw and cleaned forms) so `redact` can hide it,
    its base64 forms included."""
    for value in values:
        if not value:
            continue
        for form in {value, value.strip()}:
            if len(form) >= 6:  # shorter strings would redact ordinary words
                _GIVEN.add(form)
    _SECRETS.clear()
    _SECRETS.update(secret_forms(_GIVEN))
    _ORDER[:] = sorted(_SECRETS, key=len, reverse=True)


def forget_secrets() -> None:
    _GIVEN.clear()
    _SECRETS.clear()
    _ORDER.clear()


def mask_all(text: str, forms: Iterable[str]) -> str:
    """Replace each of `forms` (longest first) in text by its mask."""
    for secret in forms:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return text


def redact(text: str) -> str:
    """Replace every registered secret (and its base64 forms) in text by its mask."""
    if not _SECRETS:
        return text
    return mask_all(text, _ORDER)


def _redact_dict(obj: dict[str, Any]) -> dict[str, Any]:
    return {redact(k) if isinstance(k, str) else k: _redact_value(v) for k, v in obj.items()}


def _redact_value(obj: Any) -> Any:  # JSON-like evidence: any nesting of dicts, lists and scalars
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return _redact_dict(obj)
    if isinstance(obj, list):
        return [_redact_value(v) for v in obj]
    return obj


def redact_check(check: Check) -> Check:
    """Redact every text field of a results.Check in place; returns it."""
    if _SECRETS:
        check.message = redact(check.message)
        check.hint = redact(check.hint) if check.hint else check.hint
        check.id = redact(check.id)
        check.details = _redact_dict(check.details)
    return check


def redact_report(report: Report) -> None:
    """Redact every text field of a results.Report in place."""
    if not _SECRETS:
        return
    if isinstance(report.checks, list):  # a results.CheckSpool redacts as it writes
        for check in report.checks:
            redact_check(check)
    report.summary = _redact_dict(report.summary)
    report.notes = [redact(n) for n in report.notes]
