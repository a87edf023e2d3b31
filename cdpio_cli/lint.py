"""Lint Segment-spec messages: spec, naming, identity, Customer.io limits, trait drift.

One pass over the records.  Per-message rules run as each message arrives;
data-set rules (naming consistency, identity fragmentation, type drift) keep
small aggregates in dicts -- names, ids, keys and first locations, never
whole messages -- and report when the pass ends.

Every rule has a stable id (`naming/event-title-case`), a default severity
(error, warning, info, or off = not run unless enabled) and a hint.  The
`spec/*` rules come straight from `messages.spec_problems`; the destination
drops (`customerio/page-without-url`, device events...) and Customer.io's
limits (`customerio/event-name-too-long`..., one table in cdpio_cli/limits.py)
come from `mapping.map_message`, so lint, explain and the sandbox agree.

Findings become `results.Check`s (see `findings_to_checks`): error -> failed,
warning -> warning, info -> passed with the message prefixed "info:" (an
informational note is not a failure and not a skipped check); the severity is
always in `details["severity"]`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cdpio_cli import limits, mapping, messages
from cdpio_cli.errors import UsageError
from cdpio_cli.messages import show_value
from cdpio_cli.plan import PLAN_RULES

ERROR, WARNING, INFO, OFF = "error", "warning", "info", "off"
SEVERITIES = (ERROR, WARNING, INFO, OFF)

CIO_CAMPAIGN_WINDOW = limits.CAMPAIGN_WINDOW

# Data-set aggregates stop growing past these sizes (memory stays bounded on
# pathological data, e.g. a unique event name per message).
MAX_TRACKED_NAMES = 100_000
MAX_TRACKED_IDS = 2_000_000

INPUT_RULE = "input/unreadable"


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
            ERROR,
            "a record could not be read or parsed",
            "fix the file at that line; every other record was still checked",
        ),
        # naming
        Rule(
            "naming/event-title-case",
            WARNING,
            "event name is not in Title Case",
            'Segment recommends Title Case event names ("Signed Up", "Order Completed")',
        ),
        Rule(
            "naming/event-variants",
            WARNING,
            "one event under variants of case, spacing or punctuation",
            "pick one spelling; Customer.io treats each spelling as a different event",
        ),
        Rule(
            "naming/dynamic-event-name",
            WARNING,
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
            WARNING,
            "property and trait keys mix snake_case and camelCase across the data set",
            "pick one style; Segment recommends snake_case property names",
        ),
        Rule(
            "naming/key-variants",
            WARNING,
            "one key under two spellings (firstName and first_name)",
            "send one spelling; both end up as separate Customer.io attributes",
        ),
        Rule(
            "naming/dynamic-property-key",
            WARNING,
            "property or trait key contains a dynamic value",
            "use a fixed key and put the value in it",
        ),
        # identity
        Rule(
            "identity/user-id-whitespace",
            WARNING,
            "userId contains whitespace",
            'trim ids before sending; " u1" and "u1" are different people in Customer.io',
        ),
        Rule(
            "identity/user-id-variants",
            WARNING,
            "userIds that differ only by case or whitespace",
            "normalise ids at the source; Customer.io ids are case-sensitive",
        ),
        Rule(
            "identity/mixed-id-kinds",
            WARNING,
            "emails used as userId for some people and other ids for others",
            "use one kind of id (a stable database id) and send the email as a trait",
        ),
        Rule(
            "identity/unlinked-anonymous",
            INFO,
            "anonymousIds whose events no identify or alias ever links to a userId",
            "call identify (with the anonymousId) when the visitor signs in",
        ),
        Rule(
            "identity/identify-without-email",
            WARNING,
            "person identified but never with traits.email",
            "send traits.email on identify; Customer.io cannot email a person without one",
        ),
        # Customer.io: one rule per limit in the table (cdpio_cli/limits.py)
        *(
            Rule(
                limit.rule,
                ERROR,
                f"{limit.what} over {limit.maximum:,} {limit.unit}",
                f"Customer.io rejects the operation with 400 ({limit.error.format(name='NAME')!r}); "
                f"limit: {limit.maximum:,} {limit.unit}",
            )
            for limit in limits.TABLE
        ),
        Rule(
            "customerio/page-without-url",
            ERROR,
            "page without properties.url: the destination drops it",
            "send properties.url (analytics.js does this by itself); it becomes the page name",
        ),
        Rule(
            "customerio/screen-without-name",
            ERROR,
            "screen without name: the destination drops it",
            "send the screen name",
        ),
        Rule(
            "customerio/device-without-user-id",
            ERROR,
            "device event without userId: the destination drops it",
            "send device events after identify, with userId",
        ),
        Rule(
            "customerio/device-without-token",
            ERROR,
            "device event without context.device.token: the destination drops it",
            "Segment does not collect push tokens; set context.device.token yourself",
        ),
        Rule(
            "customerio/device-without-type",
            ERROR,
            "device event without context.device.type: the destination drops it",
            "set context.device.type (ios or android)",
        ),
        Rule(
            "customerio/dropped",
            ERROR,
            "a message the Customer.io (Actions) destination drops (a required field is missing)",
            "run `cdpio explain` on the file for the mapping of each message",
        ),
        Rule(
            "customerio/millisecond-timestamp",
            WARNING,
            "a date attribute or property in milliseconds",
            "Customer.io reads numeric dates as unix seconds; divide by 1000 or send ISO-8601",
        ),
        Rule(
            "customerio/old-event",
            INFO,
            "events older than 72 hours: they will not trigger campaigns",
            "fine for history imports; use recent timestamps when a test must trigger a campaign",
        ),
        # traits
        Rule(
            "traits/type-drift",
            WARNING,
            "a trait whose type changes between messages",
            'send one type (true, not "true"); segments and liquid compare by type',
        ),
        Rule(
            "properties/type-drift",
            WARNING,
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


@dataclass(slots=True)
class Finding:
    rule: str
    severity: str
    message: str
    file: str | None = None
    line: int | None = None
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def location(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""


@dataclass
class LintResult:
    findings: list[Finding]
    messages: int = 0  # records read, valid or not
    invalid: int = 0  # records that could not be parsed
    by_severity: dict[str, int] = field(default_factory=dict)
    by_rule: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)  # over max_per_rule
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.by_severity.get(ERROR, 0)

    @property
    def warnings(self) -> int:
        return self.by_severity.get(WARNING, 0)

    @property
    def infos(self) -> int:
        return self.by_severity.get(INFO, 0)

    def summary(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "invalid": self.invalid,
            "findings": {s: self.by_severity.get(s, 0) for s in (ERROR, WARNING, INFO)},
            "by_rule": dict(sorted(self.by_rule.items())),
            "not_listed": dict(self.suppressed),
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


# --------------------------------------------------------------------------
# Name and key helpers (cached per distinct string by the caller)
# --------------------------------------------------------------------------

_CONNECTORS = {
    "a",
    "an",
    "and",
    "as",
    "at",
    "by",
    "for",
    "from",
    "in",
    "into",
    "of",
    "on",
    "onto",
    "or",
    "over",
    "per",
    "the",
    "to",
    "via",
    "vs",
    "with",
}
_LOWER_BRANDS = {
    "iOS",
    "iPadOS",
    "iPhone",
    "iPad",
    "iPod",
    "iCloud",
    "macOS",
    "tvOS",
    "watchOS",
    "visionOS",
    "eBay",
    "eCommerce",
    "npm",
    "gRPC",
}
_PAST_IRREGULAR = {
    "Sent",
    "Built",
    "Made",
    "Paid",
    "Won",
    "Lost",
    "Began",
    "Done",
    "Bought",
    "Sold",
    "Read",
    "Set",
    "Left",
    "Met",
    "Put",
    "Got",
    "Gave",
    "Given",
    "Taken",
    "Seen",
    "Shown",
    "Known",
    "Written",
    "Chosen",
    "Hidden",
    "Held",
    "Kept",
    "Found",
    "Brought",
    "Cut",
    "Upgraded",
    "Downgraded",
    "Reset",
    "Shared",
}

_DYNAMIC_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # UUID
    r"|[^\s@]+@[^\s@]+\.[A-Za-z]{2,}"  # email
    r"|\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"  # dates
    r"|(?<![A-Za-z])(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}"  # hex ids
    r"|\d{3,}"
)  # numbers
_SNAKE_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
_CAMEL_RE = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$")
_SPLIT_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NORMALISE_RE = re.compile(r"[\W_]+")
# Keys Segment's spec or the Customer.io destination define in a fixed style:
# using them is not "mixing styles".
_RESERVED_KEYS = {
    "firstName",
    "lastName",
    "createdAt",
    "first_name",
    "last_name",
    "created_at",
    "userId",
    "anonymousId",
    "objectId",
    "objectTypeId",
    "object_type_id",
    "objectAttributes",
    "relationshipAttributes",
    "deliveryId",
    "actionName",
    "actionValue",
    "actionType",
    "postalCode",
    "employee_count",
}
_TIME_KEY_RE = re.compile(r"(?:^|_)(?:at|date|time|timestamp|ts)$|(?:At|Date|Time|Timestamp)$|^date|^time")
# 2001-09-09 .. 2100 in milliseconds
_MS_LOW, _MS_HIGH = 1_000_000_000_000, 4_102_444_800_000


def title_case_problem(name: str) -> str | None:
    """Why `name` is not Title Case (None when it is)."""
    if name != name.strip():
        return "has leading or trailing spaces"
    if "  " in name:
        return "has double spaces"
    if "_" in name:
        return "uses underscores instead of spaces"
    words = name.split(" ")
    if len(words) == 1 and _CAMEL_RE.match(name):
        return "is camelCase"
    for i, word in enumerate(words):
        for part in word.split("-")[:1]:
            first = next((ch for ch in part if ch.isalnum()), "")
            if not first or first.isupper() or first.isdigit():
                continue
            if i > 0 and part.lower() in _CONNECTORS:
                continue
            if part in _LOWER_BRANDS or (len(part) > 1 and part[1].isupper()):
                continue
            return f"{part!r} is lowercase"
    return None


def suggest_title_case(name: str) -> str:
    words = []
    for word in re.split(r"[\s_-]+", name.strip()):
        if word in _LOWER_BRANDS or word.isupper():
            words.append(word)
        elif word:
            words.extend(_SPLIT_CAMEL_RE.sub(" ", word).split(" "))
    out = []
    for i, w in enumerate(words):
        if w in _LOWER_BRANDS or w.isupper() or (i > 0 and w.lower() in _CONNECTORS):
            out.append(w if w in _LOWER_BRANDS or w.isupper() else w.lower())
        else:
            out.append(w[:1].upper() + w[1:])
    return " ".join(out)


def is_object_action(name: str) -> bool:
    words = name.split()
    if len(words) < 2:
        return False
    last = words[-1]
    return last.endswith("ed") or last in _PAST_IRREGULAR


def dynamic_value(text: str) -> str | None:
    m = _DYNAMIC_RE.search(text)
    return m.group(0) if m else None


def key_style(key: str) -> str | None:
    if key in _RESERVED_KEYS:
        return None
    if _SNAKE_RE.match(key):
        return "snake_case"
    if _CAMEL_RE.match(key):
        return "camelCase"
    return None


def normalise(text: str) -> str:
    return _NORMALISE_RE.sub("", text.casefold())


def _value_type(value: Any) -> str | None:
    if value is None:
        return None  # clearing a trait is not a type change
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


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


# --------------------------------------------------------------------------
# The linter
# --------------------------------------------------------------------------


class Linter:
    """Feed records with `add`, then call `finish` for the result."""

    def __init__(
        self,
        *,
        disable: Iterable[str] = (),
        severity_overrides: dict[str, str] | None = None,
        now: datetime | None = None,
        max_per_rule: int | None = 100,
        plan=None,
    ):
        self.severities = Severities(disable, severity_overrides)
        self.now = now or datetime.now(timezone.utc)
        self.old_cutoff = self.now - CIO_CAMPAIGN_WINDOW
        self._cutoff_text = self.old_cutoff.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        self.max_per_rule = max_per_rule
        self.result = LintResult(findings=[])
        # Per-rule enabled flags, looked up once.
        self._on = {rid: self.severities.of(rid, r.severity) != OFF for rid, r in RULES.items()}
        # Per distinct event name: (title problem, dynamic value, object-action ok)
        self._event_names: dict[str, list] = {}  # name -> [count, file, line]
        self._key_seen: dict[tuple[str, str], tuple[str, int]] = {}  # (ns, key) -> first loc
        self._key_dynamic_checked: set[str] = set()
        self._style_first: dict[str, dict[str, tuple[str, int]]] = {"snake_case": {}, "camelCase": {}}
        self._user_ids: dict[str, list] = {}  # raw userId -> see _user_id
        self._user_norm: dict[str, str] = {}  # normalised -> first raw
        self._anon: dict[str, list] = {}  # anonymousId -> [file, line, anonymous messages]
        self._linked_anon: set[str] = set()
        self._trait_types: dict[str, dict[str, tuple[str, int, Any]]] = {}
        self._prop_types: dict[tuple[str, str], dict[str, tuple[str, int, Any]]] = {}
        self._old_events: list = [0, None, None]  # count, first file, first line
        self._truncated: set[str] = set()
        self._plan = None
        if plan is not None:
            from cdpio_cli.plan import PlanChecker

            self._plan = PlanChecker(plan, enabled=lambda rid, default: self.severities.of(rid, default) != OFF)

    # -- emitting ----------------------------------------------------------
    def emit(
        self,
        rule_id: str,
        message: str,
        file: str | None,
        line: int | None,
        *,
        default: str | None = None,
        hint: str | None = None,
        **details: Any,
    ) -> None:
        rule = RULES.get(rule_id)
        severity = self.severities.of(rule_id, default or (rule.severity if rule else ERROR))
        if severity == OFF:
            return
        res = self.result
        res.by_severity[severity] = res.by_severity.get(severity, 0) + 1
        count = res.by_rule.get(rule_id, 0) + 1
        res.by_rule[rule_id] = count
        if self.max_per_rule is not None and count > self.max_per_rule:
            res.suppressed[rule_id] = res.suppressed.get(rule_id, 0) + 1
            return
        if hint is None:
            hint = rule.hint if rule else SPEC_HINTS.get(rule_id)
        res.findings.append(Finding(rule_id, severity, message, file, line, hint or None, details))

    def _cap(self, table: dict, name: str, limit: int) -> bool:
        """True when `table` may grow; notes (once) when it may not."""
        if len(table) < limit:
            return True
        if name not in self._truncated:
            self._truncated.add(name)
            self.result.notes.append(
                f"{name}: more than {limit:,} distinct values; data-set checks cover the first ones only"
            )
        return False

    # -- per message -------------------------------------------------------
    def add(self, record) -> None:
        res = self.result
        res.messages += 1
        file, line = record.file, record.line
        if record.error is not None:
            res.invalid += 1
            self.emit(INPUT_RULE, record.error, file, line)
            return
        msg = record.message
        size = messages.message_size(msg) if isinstance(msg, dict) else 0
        problems = messages.spec_problems(msg, size=size)
        dropped_on_ingest = False
        for p in problems:
            self.emit(p.rule, p.message, file, line, default=p.severity)
            if p.ingest_code:
                dropped_on_ingest = True
        if not isinstance(msg, dict):
            return
        if self._plan is not None:
            self._plan.check(msg, file, line, self.emit)
        on = self._on
        mtype = msg.get("type")
        user_id = msg.get("userId")
        anon_id = msg.get("anonymousId")
        traits = msg.get("traits") if isinstance(msg.get("traits"), dict) else None
        props = msg.get("properties") if isinstance(msg.get("properties"), dict) else None

        if not dropped_on_ingest:
            result = mapping.map_message(msg)
            if result.violations:
                # Every limit the operations break, each under its own rule;
                # the sandbox drops the message for the first of them.
                for v in result.violations:
                    self.emit(
                        v.rule,
                        f"{messages.describe(msg)}: {v.describe()}",
                        file,
                        line,
                        action=result.action,
                        drop_reason=result.drop_reason,
                        customerio_error=v.message,
                    )
            elif result.drop_reason is not None:
                reason = result.drop_reason.split(": ", 1)[-1]
                self.emit(
                    drop_rule(result),
                    f"{messages.describe(msg)}: the Customer.io destination drops it: {reason}",
                    file,
                    line,
                    action=result.action,
                    drop_reason=result.drop_reason,
                )

        if isinstance(user_id, str) and user_id:
            self._user_id(user_id, msg, mtype, traits, file, line, size)
        if isinstance(anon_id, str) and anon_id:
            self._anonymous(anon_id, user_id, file, line)
        if mtype == "alias":
            prev = msg.get("previousId")
            if isinstance(prev, str):
                self._linked_anon.add(prev)

        if mtype == "track":
            event = msg.get("event")
            if isinstance(event, str) and event:
                self._event(event, file, line, size)
                if props:
                    self._properties(props, event, file, line, size)
        elif props and mtype in ("page", "screen"):
            self._keys(props, "properties", file, line)
        if traits is not None and mtype == "identify":
            self._traits(traits, file, line, size)
        if mtype in ("track", "page", "screen") and on["customerio/old-event"]:
            ts = msg.get("timestamp")
            if ts is not None:
                if type(ts) is str and len(ts) >= 20 and ts[10] == "T" and ts[-1] == "Z":
                    # Canonical UTC ISO strings compare as text: skip parsing.
                    is_old = ts[:19] < self._cutoff_text
                else:
                    parsed = messages.parse_timestamp(ts)
                    is_old = parsed is not None and parsed < self.old_cutoff
                if is_old:
                    old = self._old_events
                    old[0] += 1
                    if old[1] is None:
                        old[1], old[2] = file, line

    def _user_id(self, user_id, msg, mtype, traits, file, line, size) -> None:
        entry = self._user_ids.get(user_id)
        if entry is None:
            if not self._cap(self._user_ids, "userIds", MAX_TRACKED_IDS):
                return
            entry = [file, line, False, None, None]  # first seen, has email, first identify
            self._user_ids[user_id] = entry
            if self._on["identity/user-id-whitespace"] and (
                user_id != user_id.strip() or any(ch.isspace() or ch in "\u200b\ufeff" for ch in user_id)
            ):
                self.emit("identity/user-id-whitespace", f"userId {user_id!r} contains whitespace", file, line)
            norm = "".join(user_id.split()).casefold()
            first = self._user_norm.get(norm)
            if first is None:
                self._user_norm[norm] = user_id
            else:
                first_entry = self._user_ids[first]
                self.emit(
                    "identity/user-id-variants",
                    f"userId {user_id!r} differs from {first!r} "
                    f"({first_entry[0]}:{first_entry[1]}) only by case or whitespace",
                    file,
                    line,
                    variants=[first, user_id],
                )
        if mtype == "identify":
            if entry[3] is None:
                entry[3], entry[4] = file, line
            if not entry[2] and (mapping.is_email(user_id) or (traits and traits.get("email"))):
                entry[2] = True

    def _anonymous(self, anon_id, user_id, file, line) -> None:
        if user_id:
            self._linked_anon.add(anon_id)
            return
        entry = self._anon.get(anon_id)
        if entry is None:
            if not self._cap(self._anon, "anonymousIds", MAX_TRACKED_IDS):
                return
            self._anon[anon_id] = [file, line, 1]
        else:
            entry[2] += 1

    def _event(self, event: str, file, line, size) -> None:
        seen = self._event_names.get(event)
        if seen is not None:
            seen[0] += 1
            return
        if not self._cap(self._event_names, "event names", MAX_TRACKED_NAMES):
            return
        self._event_names[event] = [1, file, line]
        on = self._on
        if on["naming/event-title-case"]:
            problem = title_case_problem(event)
            if problem:
                suggestion = suggest_title_case(event)
                self.emit(
                    "naming/event-title-case",
                    f"event {event!r} is not Title Case ({problem})",
                    file,
                    line,
                    hint=f'rename it to "{suggestion}"' if suggestion != event else None,
                )
        if on["naming/dynamic-event-name"]:
            value = dynamic_value(event)
            if value:
                self.emit(
                    "naming/dynamic-event-name", f"event {event!r} contains a dynamic value ({value!r})", file, line
                )
        if on["naming/event-object-action"] and not is_object_action(event):
            self.emit(
                "naming/event-object-action",
                f'event {event!r} is not "Object Action" (noun + past-tense verb)',
                file,
                line,
            )

    def _keys(self, obj: dict, namespace: str, file, line) -> None:
        """Key style, spelling variants and dynamic keys (first sighting of each key)."""
        key_seen = self._key_seen
        for key in obj:
            if not isinstance(key, str):
                continue
            nk = (namespace, key)
            if nk in key_seen:
                continue
            if not self._cap(key_seen, "property keys", MAX_TRACKED_NAMES):
                return
            key_seen[nk] = (file, line)
            style = key_style(key)
            if style is not None:
                self._style_first[style].setdefault(key, (file, line))
            if key not in self._key_dynamic_checked:
                self._key_dynamic_checked.add(key)
                value = dynamic_value(key) if self._on["naming/dynamic-property-key"] else None
                if value:
                    self.emit(
                        "naming/dynamic-property-key",
                        f"{namespace} key {key!r} contains a dynamic value ({value!r})",
                        file,
                        line,
                    )

    def _properties(self, props: dict, event: str, file, line, size) -> None:
        self._keys(props, "properties", file, line)
        if self._on["properties/type-drift"]:
            self._drift(self._prop_types, props, event, file, line)
        self._ms_dates(props, "property", file, line)

    def _traits(self, traits: dict, file, line, size) -> None:
        self._keys(traits, "traits", file, line)
        if self._on["traits/type-drift"]:
            self._drift(self._trait_types, traits, None, file, line)
        self._ms_dates(traits, "trait", file, line)

    def _drift(self, table: dict, obj: dict, scope: str | None, file, line) -> None:
        for key, value in obj.items():
            vtype = _value_type(value)
            if vtype is None:
                continue
            tkey = key if scope is None else (scope, key)
            types = table.get(tkey)
            if types is None:
                if not self._cap(table, "trait and property keys", MAX_TRACKED_NAMES):
                    continue
                table[tkey] = {vtype: (file, line, show_value(value))}
                continue
            if vtype in types:
                continue
            first_type, (ffile, fline, fvalue) = next(iter(types.items()))
            types[vtype] = (file, line, show_value(value))
            if scope is None:
                self.emit(
                    "traits/type-drift",
                    f"trait {key!r} is {vtype} {show_value(value)} here but {first_type} {fvalue} at {ffile}:{fline}",
                    file,
                    line,
                    key=key,
                    types=list(types),
                )
            else:
                self.emit(
                    "properties/type-drift",
                    f"event {scope!r} property {key!r} is {vtype} {show_value(value)} here but "
                    f"{first_type} {fvalue} at {ffile}:{fline}",
                    file,
                    line,
                    event=scope,
                    key=key,
                    types=list(types),
                )

    def _ms_dates(self, obj: dict, what: str, file, line) -> None:
        if not self._on["customerio/millisecond-timestamp"]:
            return
        for key, value in obj.items():
            if (
                type(value) is int
                and _MS_LOW <= value <= _MS_HIGH
                and isinstance(key, str)
                and _TIME_KEY_RE.search(key)
            ):
                self.emit(
                    "customerio/millisecond-timestamp",
                    f"{what} {key!r} = {value} looks like milliseconds "
                    f"({datetime.fromtimestamp(value / 1000, timezone.utc):%Y-%m-%d})",
                    file,
                    line,
                )

    # -- end of data set ---------------------------------------------------
    def finish(self) -> LintResult:
        self._finish_event_variants()
        self._finish_key_rules()
        self._finish_identity()
        old = self._old_events
        if old[0]:
            self.emit(
                "customerio/old-event",
                f"{old[0]:,} event(s) are older than 72 hours (first here); Customer.io "
                "stores them but they will not trigger campaigns",
                old[1],
                old[2],
                count=old[0],
            )
        if self.result.suppressed:
            for rule_id, n in self.result.suppressed.items():
                self.result.notes.append(
                    f"{rule_id}: {n:,} more finding(s) not listed (limit {self.max_per_rule} per rule)"
                )
        return self.result

    def _finish_event_variants(self) -> None:
        if not self._on["naming/event-variants"]:
            return
        groups: dict[str, list[str]] = {}
        for name in self._event_names:
            groups.setdefault(normalise(name), []).append(name)
        for names in groups.values():
            if len(names) < 2:
                continue
            # The most used spelling is the main one; on a tie, a Title Case one.
            names.sort(key=lambda n: (-self._event_names[n][0], title_case_problem(n) is not None))
            main = names[0]
            main_count = self._event_names[main][0]
            for other in names[1:]:
                count, file, line = self._event_names[other]
                self.emit(
                    "naming/event-variants",
                    f"event {other!r} ({count:,} message(s)) is a variant of {main!r} ({main_count:,} message(s))",
                    file,
                    line,
                    variants=names,
                )

    def _finish_key_rules(self) -> None:
        snake, camel = self._style_first["snake_case"], self._style_first["camelCase"]
        if snake and camel:
            minority, majority = (
                ("camelCase", "snake_case") if len(camel) <= len(snake) else ("snake_case", "camelCase")
            )
            keys = self._style_first[minority]
            first_key = min(keys, key=lambda k: keys[k])
            file, line = keys[first_key]
            examples = list(keys)[:5]
            self.emit(
                "naming/property-key-style",
                f"keys mix styles: {len(self._style_first[majority])} {majority} and "
                f"{len(keys)} {minority} ({', '.join(examples)})",
                file,
                line,
                snake_case=list(snake)[:20],
                camelCase=list(camel)[:20],
            )
        if self._on["naming/key-variants"]:
            groups: dict[tuple[str, str], list[str]] = {}
            for ns, key in self._key_seen:
                groups.setdefault((ns, normalise(key)), []).append(key)
            for (ns, _), keys in groups.items():
                if len(keys) < 2:
                    continue
                for other in keys[1:]:
                    file, line = self._key_seen[(ns, other)]
                    ffile, fline = self._key_seen[(ns, keys[0])]
                    self.emit(
                        "naming/key-variants",
                        f"{ns} key {other!r} is also sent as {keys[0]!r} ({ffile}:{fline})",
                        file,
                        line,
                        variants=keys,
                    )

    def _finish_identity(self) -> None:
        on = self._on
        if on["identity/mixed-id-kinds"]:
            emails = [(u, e) for u, e in self._user_ids.items() if "@" in u and mapping.is_email(u)]
            if emails and len(emails) < len(self._user_ids):
                others = [(u, e) for u, e in self._user_ids.items() if not mapping.is_email(u)]
                minority, kind = (emails, "emails") if len(emails) <= len(others) else (others, "non-email ids")
                u, e = minority[0]
                self.emit(
                    "identity/mixed-id-kinds",
                    f"{len(emails):,} userId(s) are emails and {len(others):,} are not; "
                    f"{kind} such as {u!r} start here",
                    e[0],
                    e[1],
                    examples=[m[0] for m in minority[:5]],
                )
        if on["identity/identify-without-email"]:
            for user_id, (_, _, has_email, file, line) in self._user_ids.items():
                if file is not None and not has_email:
                    self.emit(
                        "identity/identify-without-email",
                        f"userId {user_id!r} is identified but never with traits.email",
                        file,
                        line,
                    )
        if on["identity/unlinked-anonymous"]:
            linked = self._linked_anon
            unlinked = [(a, e) for a, e in self._anon.items() if a not in linked]
            if unlinked:
                anon, (file, line, _) = unlinked[0]
                total = sum(e[2] for _, e in unlinked)
                self.emit(
                    "identity/unlinked-anonymous",
                    f"{len(unlinked):,} anonymousId(s) with {total:,} message(s) are never "
                    f"linked to a userId (first: {anon!r}); they stay separate anonymous "
                    "profiles",
                    file,
                    line,
                    count=len(unlinked),
                    examples=[a for a, _ in unlinked[:5]],
                )


def lint_records(
    records: Iterable,
    *,
    disable: Iterable[str] = (),
    severity_overrides: dict[str, str] | None = None,
    now: datetime | None = None,
    max_per_rule: int | None = 100,
    plan=None,
) -> LintResult:
    """Lint fixture records (cdpio_cli.fixtures.Record) in one pass; `plan` (a
    plan.Plan) adds the plan/* rules."""
    linter = Linter(
        disable=disable, severity_overrides=severity_overrides, now=now, max_per_rule=max_per_rule, plan=plan
    )
    add = linter.add
    for record in records:
        add(record)
    return linter.finish()


def lint_messages(msgs: Iterable[Any], *, file: str = "<messages>", **kwargs: Any) -> LintResult:
    """Lint plain message dicts (line = position, 1-based)."""
    from cdpio_cli.fixtures import Record

    return lint_records((Record(file, i, m) for i, m in enumerate(msgs, 1)), **kwargs)


# --------------------------------------------------------------------------
# Findings -> results.Check
# --------------------------------------------------------------------------


def findings_to_checks(result: LintResult) -> list:
    """error -> failed (an unreadable record: failure "usage", exit 2), warning ->
    warning, info -> info; severity in details."""
    from cdpio_cli import results

    checks = []
    for f in result.findings:
        if f.severity == ERROR:
            status = results.FAILED
        elif f.severity == WARNING:
            status = results.WARNING
        else:
            status = results.INFO  # shown and counted as info, never as ok
        message = f.message
        tier = "spec" if f.rule.startswith((SPEC_PREFIX, "input/")) else "lint"
        failure = results.FAILURE_USAGE if f.rule == INPUT_RULE else results.FAILURE_CHECK
        checks.append(
            results.Check(
                id=f.rule,
                route="lint",
                tier=tier,
                status=status,
                message=message,
                file=f.file,
                line=f.line,
                failure=failure,
                hint=f.hint,
                details={"severity": f.severity, **f.details},
            )
        )
    return checks


def rules_table() -> list[tuple[str, str, str]]:
    """(id, default severity, summary) for --help and docs."""
    return [(r.id, r.severity, r.summary) for r in RULES.values()]


# --------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------


def load_lint_settings(explicit_config: str | None) -> tuple[list[str], dict[str, str], str | None]:
    """(disable, severity overrides, config path) from the config's `lint:`
    section; empty when there is no config file."""
    from cdpio_cli import config as config_mod

    path = config_mod.find_config_path(explicit_config)
    if path is None:
        return [], {}, None
    # Lint reads only `lint:`: the secrets the file asks for need not be set.
    loaded = config_mod.load_config(path, uses=("lint",))
    section = loaded.config.lint
    return list(section.disable), dict(section.severity), str(path)
