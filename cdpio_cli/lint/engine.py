"""The streaming linter: per-message rules as each record arrives, data-set
rules (naming consistency, identity fragmentation, type drift) over small
aggregates when the pass ends."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from cdpio_cli import limits, mapping, messages
from cdpio_cli.fixtures import Record, Row
from cdpio_cli.lint.naming import (
    TYPE_NAMES,
    dynamic_value,
    is_object_action,
    key_style,
    normalise,
    suggest_title_case,
    title_case_problem,
    value_type,
)
from cdpio_cli.lint.report import Finding, LintResult
from cdpio_cli.lint.rules import INPUT_RULE, OFF, RULES, SPEC_HINTS, WINDOW_HOURS, Severities
from cdpio_cli.lint.verdict import Verdict, message_verdict
from cdpio_cli.messages import Severity, show_value
from cdpio_cli.plan import Plan, PlanChecker

# What the plan checker emitted for one message, as (args, kwargs) of `emit` calls.
Planned = list[tuple[tuple[Any, ...], dict[str, Any]]]

# Data-set aggregates stop growing past these sizes (memory stays bounded on
# pathological data, e.g. a unique event name per message).
MAX_TRACKED_NAMES = 100_000
MAX_TRACKED_IDS = 2_000_000
# Distinct key sets (and key + type shapes) remembered to skip repeated work
# in `_keys` and `_drift` (a cache: no finding depends on it).
MAX_KEY_SETS = 10_000

# Keys that name a date (customerio/millisecond-timestamp looks only at these).
_TIME_KEY_RE = re.compile(r"(?:^|_)(?:at|date|time|timestamp|ts)$|(?:At|Date|Time|Timestamp)$|^date|^time")
# Whitespace in a userId: re's \s is str.isspace() (Unicode whitespace), plus
# the zero-width space and the byte-order mark.
_SPACE_RE = re.compile(r"[\s\u200b\ufeff]")
# 2001-09-09 .. 2100 in milliseconds
_MS_LOW, _MS_HIGH = 1_000_000_000_000, 4_102_444_800_000


class Linter:
    """Feed records with `add`, then call `finish` for the result."""

    def __init__(
        self,
        *,
        disable: Iterable[str] = (),
        severity_overrides: dict[str, str] | None = None,
        now: datetime | None = None,
        max_per_rule: int | None = 100,
        plan: Plan | None = None,
    ) -> None:
        self.severities = Severities(disable, severity_overrides)
        self.now = now or datetime.now(timezone.utc)
        self.old_cutoff = self.now - limits.CAMPAIGN_WINDOW
        self._cutoff_text = self.old_cutoff.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        self.max_per_rule = max_per_rule
        self.result = LintResult(findings=[])
        # Per-rule enabled flags, looked up once.
        self._on = {rid: self.severities.of(rid, r.severity) != OFF for rid, r in RULES.items()}
        self._old_event_on = self._on["customerio/old-event"]
        # Per distinct event name: (title problem, dynamic value, object-action ok)
        self._event_names: dict[str, list] = {}  # name -> [count, file, line]
        self._key_seen: dict[tuple[str, str], tuple[str, int]] = {}  # (ns, key) -> first loc
        self._key_dynamic_checked: set[str] = set()
        self._key_sets: set[tuple[str, ...]] = set()  # (namespace, *keys) fully recorded
        self._shapes: set[tuple[Any, ...]] = set()  # (event or None, *keys, *types) fully recorded
        self._style_first: dict[str, dict[str, tuple[str, int]]] = {"snake_case": {}, "camelCase": {}}
        self._user_ids: dict[str, list] = {}  # raw userId -> see _user_id
        self._user_norm: dict[str, str] = {}  # normalised -> first raw
        self._anon: dict[str, list] = {}  # anonymousId -> [file, line, anonymous messages]
        self._linked_anon: set[str] = set()
        self._trait_types: dict[str, dict[str, tuple[str, int, Any]]] = {}
        self._prop_types: dict[tuple[str, str], dict[str, tuple[str, int, Any]]] = {}
        self._old_events: list = [0, None, None]  # count, first file, first line
        self._truncated: set[str] = set()
        self._plan: PlanChecker | None = None
        if plan is not None:
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
        severity = self.severities.of(rule_id, default or (rule.severity if rule else Severity.ERROR))
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
    def add(self, record: Record | Row, verdict: Verdict | None = None) -> None:
        """Lint one record (a Record, or a Row from fixtures.iter_rows); `verdict`
        is `message_verdict(record.message)` when another process computed it
        (lint.parallel)."""
        if isinstance(record, tuple):
            file, line, msg, _ = record
            self.add_message(msg, file, line, verdict)
            return
        if record.error is not None:
            res = self.result
            res.messages += 1
            res.invalid += 1
            self.emit(INPUT_RULE, record.error, record.file, record.line)
            return
        self.add_message(record.message, record.file, record.line, verdict)

    def add_message(
        self, msg: Any, file: str, line: int, verdict: Verdict | None = None, planned: Planned | None = None
    ) -> None:
        """`add` for a message read without error (lint.parallel's worker calls it
        directly); `planned` is what the plan checker emitted for it, when another
        process ran it (lint.parallel)."""
        self.result.messages += 1
        dropped_on_ingest, spec, destination = message_verdict(msg) if verdict is None else verdict
        emit = self.emit
        for rule_id, text, default, details in spec:
            emit(rule_id, text, file, line, default=default, **details)
        if not isinstance(msg, dict):
            return
        if planned is not None:
            for args, kwargs in planned:
                emit(*args, **kwargs)
        elif self._plan is not None:
            self._plan.check(msg, file, line, emit)
        if destination and not dropped_on_ingest:
            for rule_id, text, default, details in destination:
                emit(rule_id, text, file, line, default=default, **details)
        self._aggregate(msg, file, line)

    @property
    def plan_checker(self) -> PlanChecker | None:
        return self._plan

    def clean_adder(self, *, plan_checked: bool = False) -> Callable[[dict, str, int], None] | None:
        """All `add_message` does for a dict whose verdict is CLEAN when no plan
        is checked here (none, or `plan_checked` elsewhere and nothing found: the
        caller counts the message in `result.messages`); else None.
        lint.parallel's worker calls it for most messages."""
        return self._aggregate if self._plan is None or plan_checked else None

    def _aggregate(self, msg: dict, file: str, line: int) -> None:
        """The data-set aggregates.  This runs for every message: the common
        case (a known person, a known event, a known shape) is lookups only."""
        get = msg.get
        mtype = get("type")
        user_id = get("userId")
        if mtype == "identify":
            traits = get("traits")
            if not isinstance(traits, dict):
                traits = None
            if isinstance(user_id, str) and user_id:
                self._user_id(user_id, mtype, traits, file, line)
        else:
            traits = None  # only an identify's traits are read
            if isinstance(user_id, str) and user_id and user_id not in self._user_ids:
                self._user_id(user_id, mtype, traits, file, line)
        anon_id = get("anonymousId")
        if isinstance(anon_id, str) and anon_id:
            if user_id:
                self._linked_anon.add(anon_id)
            else:
                self._anonymous(anon_id, file, line)
        self._contents(get, mtype, traits, file, line)
        if self._old_event_on and mtype in ("track", "page", "screen"):
            self._timestamp(get("timestamp"), file, line)

    def _contents(self, get: Any, mtype: Any, traits: dict | None, file: str, line: int) -> None:
        """Event names, property and trait keys, their types and dates; alias links."""
        if mtype == "track":
            event = get("event")
            if isinstance(event, str) and event:
                seen = self._event_names.get(event)
                if seen is not None:
                    seen[0] += 1
                else:
                    self._event(event, file, line)
                props = get("properties")
                if props and isinstance(props, dict):
                    self._shape(props, event, "properties", self._prop_types, file, line)
        elif mtype == "identify":
            if traits:
                self._shape(traits, None, "traits", self._trait_types, file, line)
        elif mtype in ("page", "screen"):
            props = get("properties")
            if props and isinstance(props, dict):
                self._keys(props, "properties", file, line)
        elif mtype == "alias":
            prev = get("previousId")
            if isinstance(prev, str):
                self._linked_anon.add(prev)

    def _timestamp(self, ts: Any, file: str, line: int) -> None:
        """customerio/old-event: count the events older than the campaign window."""
        if type(ts) is str and len(ts) >= 20 and ts[10] == "T" and ts[-1] == "Z":
            # Canonical UTC ISO strings compare as text: skip parsing.
            if ts[:19] >= self._cutoff_text:
                return
        elif ts is None:
            return
        else:
            parsed = messages.parse_timestamp(ts)
            if parsed is None or parsed >= self.old_cutoff:
                return
        old = self._old_events
        old[0] += 1
        if old[1] is None:
            old[1], old[2] = file, line

    def _user_id(self, user_id: str, mtype: Any, traits: dict | None, file: str, line: int) -> None:
        entry = self._user_ids.get(user_id)
        if entry is None:
            if not self._cap(self._user_ids, "userIds", MAX_TRACKED_IDS):
                return
            entry = [file, line, False, None, None]  # first seen, has email, first identify
            self._user_ids[user_id] = entry
            if self._on["identity/user-id-whitespace"] and _SPACE_RE.search(user_id):
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

    def _anonymous(self, anon_id: str, file: str, line: int) -> None:
        """An anonymousId on a message without a userId."""
        entry = self._anon.get(anon_id)
        if entry is None:
            if not self._cap(self._anon, "anonymousIds", MAX_TRACKED_IDS):
                return
            self._anon[anon_id] = [file, line, 1]
        else:
            entry[2] += 1

    def _event(self, event: str, file: str, line: int) -> None:
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

    def _keys(self, obj: dict, namespace: str, file: str, line: int) -> None:
        """Key style, spelling variants and dynamic keys (first sighting of each key)."""
        # Most messages repeat a key set already recorded: one lookup skips them.
        key_set = (namespace, *obj)
        if key_set in self._key_sets:
            return
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
        if len(self._key_sets) < MAX_KEY_SETS:
            self._key_sets.add(key_set)

    def _shape(self, obj: dict, event: str | None, namespace: str, table: dict, file: str, line: int) -> None:
        """Keys, type drift and millisecond dates of an event's properties (event
        set) or an identify's traits.  Key style and drift depend only on the
        (event, keys, Python types) shape: a shape already walked has nothing
        new to record (a walk that stopped at a cap stops there again)."""
        types = tuple(map(type, obj.values()))
        shape = (event, *obj, *types)
        shapes = self._shapes
        if shape not in shapes:
            self._keys(obj, namespace, file, line)
            if self._on["traits/type-drift" if event is None else "properties/type-drift"]:
                self._drift_walk(table, obj, event, file, line)
            if len(shapes) < MAX_KEY_SETS:
                shapes.add(shape)
        if int in types:  # only integers can be millisecond dates
            self._ms_dates(obj, "trait" if event is None else "property", file, line)

    def _drift_walk(self, table: dict, obj: dict, scope: str | None, file: str, line: int) -> None:
        type_names = TYPE_NAMES
        for key, value in obj.items():
            vtype = type_names.get(type(value)) or value_type(value)
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

    def _ms_dates(self, obj: dict, what: str, file: str, line: int) -> None:
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
        self._finish_key_style()
        self._finish_key_variants()
        self._finish_identity()
        old = self._old_events
        if old[0]:
            self.emit(
                "customerio/old-event",
                f"{old[0]:,} event(s) are older than {WINDOW_HOURS} hours (first here); Customer.io "
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

    def _finish_key_style(self) -> None:
        snake, camel = self._style_first["snake_case"], self._style_first["camelCase"]
        if not (snake and camel):
            return
        minority, majority = ("camelCase", "snake_case") if len(camel) <= len(snake) else ("snake_case", "camelCase")
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

    def _finish_key_variants(self) -> None:
        if not self._on["naming/key-variants"]:
            return
        groups: dict[tuple[str, str], list[str]] = {}
        for ns, key in self._key_seen:
            groups.setdefault((ns, normalise(key)), []).append(key)
        for (ns, _), spellings in groups.items():
            if len(spellings) < 2:
                continue
            for other in spellings[1:]:
                file, line = self._key_seen[(ns, other)]
                ffile, fline = self._key_seen[(ns, spellings[0])]
                self.emit(
                    "naming/key-variants",
                    f"{ns} key {other!r} is also sent as {spellings[0]!r} ({ffile}:{fline})",
                    file,
                    line,
                    variants=spellings,
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
    records: Iterable[Record | Row],
    *,
    disable: Iterable[str] = (),
    severity_overrides: dict[str, str] | None = None,
    now: datetime | None = None,
    max_per_rule: int | None = 100,
    plan: Plan | None = None,
    parallel: bool = True,
) -> LintResult:
    """Lint fixture records (cdpio_cli.fixtures.Record, or the rows of
    fixtures.iter_rows, which cost less per line) in one pass; `plan` (a
    plan.Plan) adds the plan/* rules.  With `parallel`, a large NDJSON input
    is linted on two cores (lint.parallel); the result is the same."""
    from cdpio_cli.forking import forkable
    from cdpio_cli.lint.parallel import lint_parallel

    linter = Linter(
        disable=disable, severity_overrides=severity_overrides, now=now, max_per_rule=max_per_rule, plan=plan
    )
    if parallel and forkable():
        return lint_parallel(linter, records)
    add = linter.add
    for record in records:
        add(record)
    return linter.finish()


def lint_messages(msgs: Iterable[Any], *, file: str = "<messages>", **kwargs: Any) -> LintResult:
    """Lint plain message dicts (line = position, 1-based)."""
    return lint_records((Record(file, i, m) for i, m in enumerate(msgs, 1)), **kwargs)
