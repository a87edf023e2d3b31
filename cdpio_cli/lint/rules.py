"""The lint rules: ids, default severities, hints, and how config and
`--disable` select and re-grade them (`Severities`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from cdpio_cli import limits, mapping
from cdpio_cli.errors import UsageError
from cdpio_cli.messages import Severity
from cdpio_cli.plan import PLAN_RULES

OFF = "off"  # a rule that does not run (the default of the opt-in rules)
SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO, OFF)

INPUT_RULE = "input/unreadable"

# "older than 72 hours" in the texts of customerio/old-event: Customer.io's campaign window.
WINDOW_HOURS = int(limits.CAMPAIGN_WINDOW.total_seconds() // 3600)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # default
    summary: str
    hint: str = ""


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            INPUT_RULE,
            Severity.ERROR,
            "a record could not be read or parsed",
            "fix the file at that line; every other record was still checked",
        ),
        # naming
        Rule(
            "naming/event-title-case",
            Severity.WARNING,
            "event name is not in Title Case",
            'Segment recommends Title Case event names ("Signed Up", "Order Completed")',
        ),
        Rule(
            "naming/event-variants",
            Severity.WARNING,
            "one event under variants of case, spacing or punctuation",
            "pick one spelling; Customer.io treats each spelling as a different event",
        ),
        Rule(
            "naming/dynamic-event-name",
            Severity.WARNING,
            "event name contains a dynamic value (date, id, number, email, UUID)",
            "keep the name fixed and move the value into a property",
        ),
        Rule(
            "naming/event-object-action",
            OFF,
            'event name is not in "Object Action" order (opt-in: word order is a style choice)',
            'Segment\'s spec suggests "Object Action" ("Order Completed"); "Signed Up" style is also common',
        ),
        Rule(
            "naming/property-key-style",
            Severity.WARNING,
            "property and trait keys mix snake_case and camelCase across the data set",
            "pick one style; Segment recommends snake_case property names",
        ),
        Rule(
            "naming/key-variants",
            Severity.WARNING,
            "one key under two spellings (firstName and first_name)",
            "send one spelling; both end up as separate Customer.io attributes",
        ),
        Rule(
            "naming/dynamic-property-key",
            Severity.WARNING,
            "property or trait key contains a dynamic value",
            "use a fixed key and put the value in it",
        ),
        # identity
        Rule(
            "identity/user-id-whitespace",
            Severity.WARNING,
            "userId contains whitespace",
            'trim ids before sending; " u1" and "u1" are different people in Customer.io',
        ),
        Rule(
            "identity/user-id-variants",
            Severity.WARNING,
            "userIds that differ only by case or whitespace",
            "normalise ids at the source; Customer.io ids are case-sensitive",
        ),
        Rule(
            "identity/mixed-id-kinds",
            Severity.WARNING,
            "emails used as userId for some people and other ids for others",
            "use one kind of id (a stable database id) and send the email as a trait",
        ),
        Rule(
            "identity/unlinked-anonymous",
            Severity.INFO,
            "anonymousIds whose events no identify or alias ever links to a userId",
            "call identify (with the anonymousId) when the visitor signs in",
        ),
        Rule(
            "identity/identify-without-email",
            Severity.WARNING,
            "person identified but never with traits.email",
            "send traits.email on identify; Customer.io cannot email a person without one",
        ),
        # Customer.io: one rule per limit in the table (cdpio_cli/limits.py)
        *(
            Rule(
                limit.rule,
                Severity.ERROR,
                f"{limit.what} over {limit.maximum:,} {limit.unit}",
                f"Customer.io rejects the operation with 400 ({limit.error.format(name='NAME')!r}); "
                f"limit: {limit.maximum:,} {limit.unit}",
            )
            for limit in limits.TABLE
        ),
        Rule(
            "customerio/page-without-url",
            Severity.ERROR,
            "page without properties.url: the destination drops it",
            "send properties.url (analytics.js does this by itself); it becomes the page name",
        ),
        Rule(
            "customerio/screen-without-name",
            Severity.ERROR,
            "screen without name: the destination drops it",
            "send the screen name",
        ),
        Rule(
            "customerio/device-without-user-id",
            Severity.ERROR,
            "device event without userId: the destination drops it",
            "send device events after identify, with userId",
        ),
        Rule(
            "customerio/device-without-token",
            Severity.ERROR,
            "device event without context.device.token: the destination drops it",
            "Segment does not collect push tokens; set context.device.token yourself",
        ),
        Rule(
            "customerio/device-without-type",
            Severity.ERROR,
            "device event without context.device.type: the destination drops it",
            "set context.device.type (ios or android)",
        ),
        Rule(
            "customerio/dropped",
            Severity.ERROR,
            "a message the Customer.io (Actions) destination drops (a required field is missing)",
            "run `cdpio explain` on the file for the mapping of each message",
        ),
        Rule(
            "customerio/millisecond-timestamp",
            Severity.WARNING,
            "a date attribute or property in milliseconds",
            "Customer.io reads numeric dates as unix seconds; divide by 1000 or send ISO-8601",
        ),
        Rule(
            "customerio/old-event",
            Severity.INFO,
            f"events older than {WINDOW_HOURS} hours: they will not trigger campaigns",
            "fine for history imports; use recent timestamps when a test must trigger a campaign",
        ),
        # traits
        Rule(
            "traits/type-drift",
            Severity.WARNING,
            "a trait whose type changes between messages",
            'send one type (true, not "true"); segments and liquid compare by type',
        ),
        Rule(
            "properties/type-drift",
            Severity.WARNING,
            "an event property whose type changes between messages of the same event",
            "send one type per property",
        ),
        # tracking plan (cdpio_cli/plan.py; run with --plan or lint.plan)
        *(Rule(*r) for r in PLAN_RULES),
    )
}

# spec/* rules: ids and severities come from messages.spec_problems.
SPEC_PREFIX = "spec/"
SPEC_HINTS = {
    "spec/no-identity": "set userId or anonymousId on every message",
    "spec/track-without-event": "set the event name",
    "spec/missing-type": "set type to identify, track, page, screen, group or alias",
    "spec/bad-timestamp": "send ISO-8601 in UTC, e.g. 2024-05-01T12:00:00.000Z",
    "spec/message-too-large": "move bulky data out of the message; Segment's limit is 32 KB",
}


# --------------------------------------------------------------------------
# Rule selection: config `lint.disable` / `lint.severity`, --disable
# --------------------------------------------------------------------------


def _pattern_matches(pattern: str, rule_id: str) -> bool:
    if pattern == rule_id:
        return True
    if pattern.endswith("/*") or "*" in pattern:
        return fnmatch.fnmatchcase(rule_id, pattern)
    return rule_id.startswith(pattern.rstrip("/") + "/")  # `naming` = `naming/*`


def _check_pattern(pattern: str, where: str) -> None:
    if pattern.startswith(SPEC_PREFIX) or pattern in ("spec", "spec/*"):
        return  # spec ids are owned by messages.spec_problems
    if any(_pattern_matches(pattern, rid) for rid in RULES):
        return
    import difflib

    close = difflib.get_close_matches(pattern, list(RULES), n=1)
    hint = f"did you mean {close[0]}?" if close else "the rule ids are listed in docs/lint.md"
    raise UsageError(f"{where}: unknown lint rule {pattern!r}", hint=hint)


class Severities:
    """Effective severity per rule id, computed once per id."""

    def __init__(self, disable: Iterable[str] = (), overrides: dict[str, str] | None = None):
        self.disable = list(disable)
        self.overrides = dict(overrides or {})
        for pattern in self.disable:
            _check_pattern(pattern, "lint disable")
        for pattern, level in self.overrides.items():
            _check_pattern(pattern, "lint severity")
            if level not in SEVERITIES:
                raise UsageError(
                    f"lint severity for {pattern!r} is {level!r}", hint="use one of error, warning, info, off"
                )
        self._cache: dict[tuple[str, str], str] = {}

    def of(self, rule_id: str, default: str) -> str:
        # Keyed by default too: a tracking plan sets the default of plan/unplanned-*.
        cached = self._cache.get((rule_id, default))
        if cached is not None:
            return cached
        level = default
        if rule_id != INPUT_RULE:  # unreadable input is not a style choice
            exact = self.overrides.get(rule_id)
            if exact is not None:
                level = exact
            else:
                matches = [p for p in self.overrides if _pattern_matches(p, rule_id)]
                # A group pattern re-grades rules; only the exact id turns on an opt-in rule.
                if matches and default != OFF:
                    level = self.overrides[max(matches, key=len)]
            if any(_pattern_matches(p, rule_id) for p in self.disable):
                level = OFF
        self._cache[(rule_id, default)] = level
        return level


_DROP_RULES = (
    ("trackPageView", "properties.url", "customerio/page-without-url"),
    ("trackScreenView", "name", "customerio/screen-without-name"),
    ("createUpdateDevice", "userId", "customerio/device-without-user-id"),
    ("deleteDevice", "userId", "customerio/device-without-user-id"),
    ("createUpdateDevice", "context.device.token", "customerio/device-without-token"),
    ("deleteDevice", "context.device.token", "customerio/device-without-token"),
    ("createUpdateDevice", "context.device.type", "customerio/device-without-type"),
)


def drop_rule(result: mapping.Mapping) -> str:
    """The lint rule for a destination drop (customerio/dropped when no narrower one)."""
    reason = result.drop_reason or ""
    requires = reason.split(" requires ", 1)[1] if " requires " in reason else ""
    for action, fld, rule_id in _DROP_RULES:
        if result.action == action and requires.startswith(fld):
            return rule_id
    return "customerio/dropped"


def rules_table() -> list[tuple[str, str, str]]:
    """(id, default severity, summary) for --help and docs."""
    return [(r.id, r.severity, r.summary) for r in RULES.values()]
