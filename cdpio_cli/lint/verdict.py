"""A message's own verdict (`message_verdict`): its spec/* findings, whether
Segment drops it on ingest, and what the Customer.io destination drops or
rejects.  It needs no data-set state, so lint.parallel computes it in another
process.

`is_clean` is a sound shortcut: for the common identify / track / page message
it proves that `messages.spec_problems` finds nothing and `mapping.map_message`
neither drops it nor breaks a Customer.io limit, without building the Track
body.  False means "not proven": `exact_verdict` then runs.
tests/test_lint_verdict.py holds `is_clean(m) => exact_verdict(m) is clean`
over generated messages.

Why each bound holds (the mapping's behaviour, cdpio_cli/mapping/):
- The person id is the userId (a non-blank string here); whatever identifier
  it resolves to, only `identifiers.id` is size-checked, and that is the userId.
- A string field converts to a number only when it looks like an ISO date
  (`iso_to_unix`: ten characters or more with "-" at index 4); a converted
  attribute is a number (never too long), and a converted date's JSON (12
  characters at most for years 1-9999) is no longer than its quoted string.
- Event data (properties, converted, plus "anonymous_id") is at most the
  message's own compact JSON plus a few bytes; spec-clean messages are at most
  32 KB, far under the 100,000-byte event-data limit.
- identify attributes are the traits (minus keys it moves), plus created_at,
  email and anonymous_id: each name and value is a trait's, or the
  anonymousId, so bounding those bounds every attribute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cdpio_cli import limits, mapping, messages
from cdpio_cli.lint.rules import drop_rule
from cdpio_cli.mapping import SEMANTIC_EVENTS
from cdpio_cli.messages import _TIMESTAMP_FIELDS, MAX_MESSAGE_BYTES, MAX_MESSAGE_ID_CHARS, parse_timestamp

_ID_MAX = limits.PERSON_ID.maximum
_NAME_MAX = limits.EVENT_NAME.maximum
_ATTR_COUNT_MAX = limits.ATTRIBUTE_COUNT.maximum
_ATTR_NAME_MAX = limits.ATTRIBUTE_NAME.maximum
_ATTR_VALUE_MAX = limits.ATTRIBUTE_VALUE.maximum
# Spec-clean messages are at most MAX_MESSAGE_BYTES; event data is at most that plus
# a renamed anonymous_id key.
assert MAX_MESSAGE_BYTES * 2 < limits.EVENT_DATA.maximum


# One finding before severities apply: (rule id, message, default severity or
# None for the rule's own, details).
Emit = tuple[str, str, str | None, dict[str, Any]]
# What one message's own rules find, without any data-set state: (dropped by
# Segment on ingest, spec findings, destination findings).
Verdict = tuple[bool, list[Emit], list[Emit]]
_NO_FINDINGS: list[Emit] = []
CLEAN: Verdict = (False, _NO_FINDINGS, _NO_FINDINGS)


def message_verdict(msg: Any) -> Verdict:
    """The spec/* findings, whether Segment drops the message on ingest, and
    (when it does not) what the Customer.io destination drops or rejects."""
    size = messages.message_size(msg) if isinstance(msg, dict) else 0
    # Most messages are provably clean without building their Track body.
    if type(msg) is dict and is_clean(msg, size):
        return CLEAN
    return exact_verdict(msg, size)


def exact_verdict(msg: Any, size: int) -> Verdict:
    """message_verdict without the shortcut; `size` is messages.message_size(msg) for a dict."""
    dropped_on_ingest = False
    spec: list[Emit] = _NO_FINDINGS
    problems = messages.spec_problems(msg, size=size)
    if problems:
        spec = []
        for p in problems:
            spec.append((p.rule, p.message, p.severity, {}))
            if p.ingest_code:
                dropped_on_ingest = True
    if dropped_on_ingest or not isinstance(msg, dict):
        return dropped_on_ingest, spec, _NO_FINDINGS
    return dropped_on_ingest, spec, _destination_findings(msg)


def _destination_findings(msg: dict) -> list[Emit]:
    """What the Customer.io destination drops, or Customer.io rejects."""
    result = mapping.map_message(msg)
    if result.violations:
        # Every limit the operations break, each under its own rule;
        # the sandbox drops the message for the first of them.
        return [
            (
                v.rule,
                f"{messages.describe(msg)}: {v.describe()}",
                None,
                {"action": result.action, "drop_reason": result.drop_reason, "customerio_error": v.message},
            )
            for v in result.violations
        ]
    if result.drop_reason is not None:
        reason = result.drop_reason.split(": ", 1)[-1]
        return [
            (
                drop_rule(result),
                f"{messages.describe(msg)}: the Customer.io destination drops it: {reason}",
                None,
                {"action": result.action, "drop_reason": result.drop_reason},
            )
        ]
    return _NO_FINDINGS


# The separators of the two canonical forms (`2026-11-01T10:00:00.000Z` and
# `2026-11-01T10:00:00Z`) at indexes 4, 7, 10, 13, 16 and 19 (value[4:20:3]), by length.
_SEPARATORS = {24: "--T::.", 20: "--T::Z"}
_fromisoformat = datetime.fromisoformat


def timestamp_ok(value: Any) -> bool:
    """`messages.parse_timestamp(value) is not None`, without its regex for the
    canonical forms: with the separators in place and a "Z" at the end, a string
    that `datetime.fromisoformat` reads (Python 3.11+: ASCII digits only, real
    dates and times) is one that parse_timestamp's canonical regex matches and
    that it returns parsed.  Anything else asks parse_timestamp.
    tests/test_lint_verdict.py holds the equality."""
    if type(value) is str and value[4:20:3] == _SEPARATORS.get(len(value)) and value[-1] == "Z":
        try:
            _fromisoformat(value)
            return True
        except ValueError:
            pass
    return parse_timestamp(value) is not None


def _utf8_over(text: str, limit: int) -> bool:
    return len(text) * 4 > limit and len(text.encode("utf-8")) > limit


def _date_like(text: str) -> bool:
    """True when the mapping may convert `text` to a number (iso_to_unix's first test)."""
    return len(text) >= 10 and text[4] == "-"


def is_clean(msg: dict, size: int) -> bool:
    """True only when `message_verdict(msg)` is (False, [], []); `size` is
    `messages.message_size(msg)`.  (Unrolled: it runs for every message.)"""
    get = msg.get
    user_id = get("userId")
    if type(user_id) is not str or size > MAX_MESSAGE_BYTES or not user_id.strip():
        return False
    if len(user_id) * 4 > _ID_MAX and len(user_id.encode("utf-8")) > _ID_MAX:
        return False
    # messages._shape_problems: objects, timestamps, the messageId.
    props, traits, context = get("properties"), get("traits"), get("context")
    if (
        (props is not None and type(props) is not dict)
        or (traits is not None and type(traits) is not dict)
        or (context is not None and type(context) is not dict)
    ):
        return False
    for key in _TIMESTAMP_FIELDS:
        value = get(key)
        if value is not None and not timestamp_ok(value):
            return False
    mid = get("messageId")
    if mid is not None and (type(mid) is not str or len(mid) > MAX_MESSAGE_ID_CHARS):
        return False
    anon = get("anonymousId")
    if anon is not None and (type(anon) is not str or _utf8_over(anon, _ATTR_VALUE_MAX)):
        return False  # it becomes an attribute
    mtype = get("type")
    if mtype == "track":
        return _event_clean(get("event"))
    if mtype == "page":
        name = get("name")
        url = props.get("url") if props is not None else None
        return (name is None or type(name) is str) and type(url) is str and url.strip() != "" and not _date_like(url)
    if mtype == "identify":
        return _traits_clean(traits, size)
    return False


def _event_clean(event: Any) -> bool:
    """A track event name that the spec, the trackEvent action and Customer.io accept."""
    if type(event) is not str or event in SEMANTIC_EVENTS or _date_like(event):
        return False
    name = event.strip()
    return name != "" and not _utf8_over(name, _NAME_MAX)


def _traits_clean(traits: Any, size: int) -> bool:
    """createUpdatePerson's attributes break no limit."""
    if traits is None:
        return True
    if len(traits) + 3 > _ATTR_COUNT_MAX or traits.get("objectId"):
        return False
    small = size <= _ATTR_VALUE_MAX  # then every value's JSON is smaller still
    for name, value in traits.items():
        if type(name) is not str:
            return False
        if len(name) * 4 > _ATTR_NAME_MAX and len(name.encode("utf-8")) > _ATTR_NAME_MAX:
            return False
        if small:
            continue
        if type(value) is str:
            if _utf8_over(value, _ATTR_VALUE_MAX):
                return False
        elif isinstance(value, (dict, list)) and limits.json_size(value) > _ATTR_VALUE_MAX:
            return False
    return True
