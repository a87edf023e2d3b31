"""Inferring a plan from observed messages (`cdpio plan infer`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cdpio_cli import results
from cdpio_cli.plan.check import json_type
from cdpio_cli.plan.model import SECTIONS
from cdpio_cli.plan.write import dump_plan

if TYPE_CHECKING:
    from cdpio_cli.fixtures.records import Record

ENUM_MAX_VALUES = 10  # at most this many distinct strings make an enum...
ENUM_MIN_REPEAT = 2  # ...and only when each is seen this many times on average
ENUM_MIN_COUNT = 3  # ...in at least this many messages
FORMATS = ("email", "date-time", "date", "uuid", "uri")
_TYPE_ORDER = ("string", "number", "integer", "boolean", "object", "array", "null")


class _KeyStats:
    __slots__ = ("count", "types", "values", "formats")

    def __init__(self) -> None:
        self.count = 0
        self.types: set[str] = set()
        self.values: dict[str, int] | None = {}  # None: too many distinct strings
        self.formats: set[str] | None = None  # None: not yet seen a string

    def add(self, value: Any, format_of: Callable[[str], set]) -> None:
        self.count += 1
        t = json_type(value)
        if t == "integer":
            t = "number"  # 30 then 30.5 is still one kind of value
        self.types.add(t)
        if t == "string":
            if self.values is not None:
                self.values[value] = self.values.get(value, 0) + 1
                if len(self.values) > ENUM_MAX_VALUES:
                    self.values = None
            fmts = format_of(value)
            self.formats = set(fmts) if self.formats is None else self.formats & fmts

    def schema(self, key: str) -> dict:
        types = sorted(self.types, key=_TYPE_ORDER.index)
        out: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
        if types == ["string"]:
            fmt = next((f for f in FORMATS if self.formats and f in self.formats), None)
            if fmt:
                out["format"] = fmt
            elif (
                self.values is not None
                and self.count >= max(ENUM_MIN_COUNT, ENUM_MIN_REPEAT * len(self.values))
                and not _is_id_key(key)
            ):
                out["enum"] = sorted(self.values)
        return out


def _is_id_key(key: str) -> bool:
    """Ids repeat (one cart, many events) but are not a closed set of values."""
    return key.lower() == "id" or key.endswith(("_id", "Id", "ID"))


class _ObjectStats:
    def __init__(self, file: str, line: int):
        self.messages = 0
        self.keys: dict[str, _KeyStats] = {}
        self.first = (file, line)


class Inferrer:
    """Feed fixture records with `add`; `plan_data()` / `to_yaml()` for the plan."""

    def __init__(self) -> None:
        import jsonschema_rs

        self.events: dict[str, _ObjectStats] = {}
        self.sections: dict[str, _ObjectStats] = {}
        self.messages = 0
        self.unreadable = 0
        self.files: list[str] = []
        # The same format checker lint uses, so an inferred format always passes.
        self._checkers = {f: jsonschema_rs.validator_for({"format": f}, validate_formats=True) for f in FORMATS}
        self._format_cache: dict[str, set] = {}

    def _formats(self, value: str) -> set:
        cached = self._format_cache.get(value)
        if cached is None:
            cached = {f for f, v in self._checkers.items() if v.is_valid(value)}
            # date-time strings are not uris; a bare scheme:rest is not a useful uri
            if "uri" in cached and not value.startswith(("http://", "https://")):
                cached.discard("uri")
            if len(self._format_cache) < 100_000:
                self._format_cache[value] = cached
        return cached

    def add(self, record: Record) -> None:
        self.messages += 1
        if record.file not in self.files:
            self.files.append(record.file)
        if record.error is not None:
            self.unreadable += 1
            return
        msg = record.message
        if type(msg) is not dict:
            return
        mtype = msg.get("type")
        if mtype == "track":
            event = msg.get("event")
            if not isinstance(event, str) or not event:
                return
            stats = self.events.get(event)
            if stats is None:
                stats = self.events[event] = _ObjectStats(record.file, record.line)
            fld = "properties"
        elif mtype in SECTIONS:
            stats = self.sections.get(mtype)
            if stats is None:
                stats = self.sections[mtype] = _ObjectStats(record.file, record.line)
            fld = SECTIONS[mtype][1]
        else:
            return
        obj = msg.get(fld)
        stats.messages += 1
        if type(obj) is not dict:
            return
        for key, value in obj.items():
            ks = stats.keys.get(key)
            if ks is None:
                ks = stats.keys[key] = _KeyStats()
            ks.add(value, self._formats)

    @staticmethod
    def _rule(stats: _ObjectStats, fld: str) -> dict:
        props = {k: stats.keys[k].schema(k) for k in sorted(stats.keys)}
        required = sorted(k for k, s in stats.keys.items() if s.count == stats.messages and "null" not in s.types)
        out: dict[str, Any] = {fld: props}
        if required:
            out["required"] = required
        return out

    def plan_data(self) -> dict:
        data: dict[str, Any] = {
            "events": {name: self._rule(self.events[name], "properties") for name in sorted(self.events)}
        }
        for section in SECTIONS:
            if section in self.sections:
                data[section] = self._rule(self.sections[section], SECTIONS[section][1])
        data["unplanned_events"] = "error"
        data["unplanned_properties"] = "warning"
        return data

    def to_yaml(self) -> str:
        comments: dict[tuple, str] = {
            ("events", name): f"{s.messages:,} message(s); first at {s.first[0]}:{s.first[1]}"
            for name, s in self.events.items()
        }
        comments.update(
            {
                (sec,): f"{s.messages:,} message(s); first at {s.first[0]}:{s.first[1]}"
                for sec, s in self.sections.items()
            }
        )
        header = (
            [
                f"Tracking plan inferred by `cdpio plan infer` from {self.messages:,} message(s) in "
                f"{len(self.files)} file(s):"
            ]
            + [f"  {f}" for f in self.files]
            + [
                "Types are what was observed; required = present in every message of that kind;",
                f"enum = a string with at most {ENUM_MAX_VALUES} values, each seen about {ENUM_MIN_REPEAT}+ times.",
                "Review it before you commit it: the data may have been wrong.",
            ]
        )
        return dump_plan(self.plan_data(), header=header, comments=comments)

    def report(self, paths: list[str]) -> results.Report:
        """`cdpio plan infer`'s report: what was inferred, from how much, what was unreadable."""
        report = results.Report(command="plan infer")
        report.add(
            results.Check(
                id="plan.infer",
                route="lint",
                tier=results.Tier.LINT,
                status=results.Status.PASSED,
                message=f"{len(self.events)} event(s) and {len(self.sections)} other section(s) "
                f"from {self.messages:,} message(s)",
            )
        )
        if self.unreadable:
            report.add(
                results.Check(
                    id="plan.unreadable",
                    route="lint",
                    tier=results.Tier.SPEC,
                    status=results.Status.WARNING,
                    message=f"{self.unreadable:,} record(s) could not be read and were "
                    "left out (run `cdpio lint` for where)",
                )
            )
        report.summary.update({"messages": self.messages, "unreadable": self.unreadable, "files": paths})
        return report
