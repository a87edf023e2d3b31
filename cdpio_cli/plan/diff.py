"""Diffing two plans (`cdpio plan diff`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdpio_cli import results
from cdpio_cli.messages import show_value
from cdpio_cli.plan.model import SECTIONS, Plan


@dataclass
class Change:
    kind: str  # added | removed | changed
    where: str  # `event "Signed Up"`, `event "Signed Up" property plan_type`, `unplanned_events`
    before: Any = None
    after: Any = None

    def text(self) -> str:
        if self.kind == "added":
            return f"+ {self.where}" + (f": {show_value(self.after, 100)}" if self.after not in (None, {}) else "")
        if self.kind == "removed":
            return f"- {self.where}"
        return f"~ {self.where}: {show_value(self.before, 100)} -> {show_value(self.after, 100)}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "where": self.where, "before": self.before, "after": self.after}


def _diff_rule(where: str, fld: str, a: dict, b: dict, out: list[Change]) -> None:
    noun = "property" if fld == "properties" else "trait"
    pa, pb = a.get(fld) or {}, b.get(fld) or {}
    for key in sorted(set(pa) | set(pb)):
        if key not in pa:
            out.append(Change("added", f"{where} {noun} {key}", None, pb[key]))
        elif key not in pb:
            out.append(Change("removed", f"{where} {noun} {key}", pa[key], None))
        elif pa[key] != pb[key]:
            out.append(Change("changed", f"{where} {noun} {key}", pa[key], pb[key]))
    ra, rb = sorted(a.get("required") or []), sorted(b.get("required") or [])
    if ra != rb:
        out.append(Change("changed", f"{where} required", ra, rb))


def diff_plans(a: Plan, b: Plan) -> list[Change]:
    out: list[Change] = []
    da, db = a.data, b.data
    ea, eb = da.get("events"), db.get("events")
    if (ea is None) != (eb is None):
        out.append(Change("added" if ea is None else "removed", "events section"))
    ea, eb = ea or {}, eb or {}
    for name in sorted(set(ea) | set(eb)):
        where = f'event "{name}"'
        if name not in ea:
            out.append(Change("added", where, None, eb[name]))
        elif name not in eb:
            out.append(Change("removed", where, ea[name], None))
        else:
            _diff_rule(where, "properties", ea[name] or {}, eb[name] or {}, out)
    for section, (_, fld) in SECTIONS.items():
        if section not in da and section not in db:
            continue
        if section not in da:
            out.append(Change("added", section, None, db[section]))
        elif section not in db:
            out.append(Change("removed", section, da[section], None))
        else:
            _diff_rule(section, fld, da[section] or {}, db[section] or {}, out)
    for key in ("unplanned_events", "unplanned_properties"):
        if getattr(a, key) != getattr(b, key):
            out.append(Change("changed", key, getattr(a, key), getattr(b, key)))
    return out


def diff_report(before: str, after: str, changes: list[Change], *, exit_code: bool) -> results.Report:
    """`cdpio plan diff`'s report: one check per change (failed with --exit-code, else warning)."""
    report = results.Report(command="plan diff")
    for change in changes:
        report.add(
            results.Check(
                id=f"plan.{change.kind}",
                route="lint",
                tier=results.Tier.LINT,
                status=results.Status.FAILED if exit_code else results.Status.WARNING,
                message=change.text(),
                details=change.to_dict(),
            )
        )
    if not changes:
        report.add(
            results.Check(
                id="plan.same",
                route="lint",
                tier=results.Tier.LINT,
                status=results.Status.PASSED,
                message=f"{before} and {after} plan the same data",
            )
        )
    report.summary.update(
        {
            "a": before,
            "b": after,
            "changes": [c.to_dict() for c in changes],
            "counts": {k: sum(c.kind == k for c in changes) for k in ("added", "removed", "changed")},
        }
    )
    return report
