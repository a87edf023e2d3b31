"""`cdpio audit`: the workspace's campaigns and segments against the data your app sends.

The workspace comes from the App API (GET /v1/campaigns, /v1/segments,
/v1/campaigns/{id}/actions: docs/contracts.md) or, offline, from a workspace
file (workspace_file.py).  The data are Segment-shaped messages from fixture
files or a sandbox `--record` file: track event names and identify trait
keys, each with where it was first seen.

Findings have stable ids (docs/campaigns.md lists them with their fixes):

    audit.trigger_event_near_miss    error    the trigger is spelled differently from a sent event
    audit.trigger_event_never_sent   error    nothing in the data triggers the campaign
    audit.actions_not_sending        error    a running campaign whose actions are all draft or off
    audit.segment_missing            error    a trigger or filter segment id that does not exist
    audit.segment_building           warning  a segment that has not finished building
    audit.campaign_inactive          warning  a campaign that is not running, or not active
    audit.segment_trait_never_sent   warning  a segment condition on a trait the data never sends
                                              (only when a workspace file gives the conditions)

With a tracking plan (`--plan FILE` or the config's `lint.plan`), the plan is
one more account of what the app sends, and is held to the workspace too:

    audit.trigger_event_near_miss        error    (as above, against a planned event name)
    audit.trigger_event_unplanned        error    the trigger event is not a planned event
    audit.segment_attribute_unplanned    error    a segment condition on an attribute the plan's
                                                  identify traits do not list
    audit.segment_attribute_type         error    `eq` a string no value of the planned type is stored
                                                  as (boolean vs "yes"); warning for `ne` (always true)
    audit.segment_attribute_value        error    of the planned type, but outside the plan's enum,
                                                  format or limits ("Pro" vs enum [pro]); warning for `ne`

Segment conditions come from a workspace file only (the App API does not
expose them).

Any error-level finding fails the audit (exit 1).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdpio_cli.near_miss import difference, near_miss
from cdpio_cli.plan import Plan
from cdpio_cli.results import Check, Report, Status, Tier

if TYPE_CHECKING:
    from cdpio_cli.settings import Settings
    from cdpio_cli.verify import AppApi
    from cdpio_cli.workspace_file import Condition, WorkspaceDef

ERROR, WARN = "error", "warning"
RULES: dict[str, tuple[str, str]] = {
    "audit.trigger_event_near_miss": (
        ERROR,
        ("rename the campaign's trigger, or the event your app sends, so they match exactly (case and spaces matter)"),
    ),
    "audit.trigger_event_never_sent": (
        ERROR,
        ("send the trigger event from your app, or fix the campaign's trigger event name"),
    ),
    "audit.actions_not_sending": (ERROR, "set the actions to send automatically in the campaign workflow"),
    "audit.segment_missing": (ERROR, "pick an existing segment as the campaign's trigger or filter"),
    "audit.segment_building": (
        WARN,
        ("wait until the segment has finished building; membership is incomplete until then"),
    ),
    "audit.campaign_inactive": (WARN, "start the campaign (running and active) if it should send"),
    "audit.segment_trait_never_sent": (WARN, "send the trait in identify, or change the segment's condition"),
    "audit.trigger_event_unplanned": (
        ERROR,
        ("add the event to the tracking plan (and send it), or trigger the campaign on a planned event"),
    ),
    "audit.segment_attribute_unplanned": (
        ERROR,
        ("add the trait under identify: traits in the tracking plan (and send it), or change the segment's condition"),
    ),
    "audit.segment_attribute_type": (
        ERROR,
        (
            "compare with the value as Customer.io stores the planned type "
            '(a boolean is "true" or "false"), or fix the trait\'s type in the plan'
        ),
    ),
    "audit.segment_attribute_value": (
        ERROR,
        ("compare with a value the tracking plan allows (values are case-sensitive), or widen the plan's rule"),
    ),
}


@dataclass
class Seen:
    """Where a name appears in the data: how often, and first where."""

    count: int = 0
    first: str = ""


@dataclass
class Data:
    events: dict[str, Seen] = field(default_factory=dict)
    traits: dict[str, Seen] = field(default_factory=dict)
    messages: int = 0
    files: list[str] = field(default_factory=list)

    def _see(self, table: dict[str, Seen], name: str, where: str) -> None:
        seen = table.setdefault(name, Seen())
        seen.count += 1
        seen.first = seen.first or where

    def add(self, msg: Any, where: str) -> None:
        if not isinstance(msg, dict):
            return
        self.messages += 1
        kind = msg.get("type")
        if kind == "track" and isinstance(msg.get("event"), str):
            self._see(self.events, msg["event"], where)
        traits = msg.get("traits") if kind == "identify" else None
        if isinstance(traits, dict):
            for key in traits:
                self._see(self.traits, str(key), where)


def read_data(paths: list[str]) -> Data:
    """Event names and trait keys from fixture files; InputError on unreadable input."""
    from cdpio_cli import fixtures
    from cdpio_cli.errors import InputError

    data = Data(files=list(paths))
    for record in fixtures.iter_records(paths):
        if not record.ok:
            raise InputError(record.error or "unreadable message", file=record.file, line=record.line)
        data.add(record.message, record.location())
    return data


@dataclass
class Workspace:
    """What the audit knows about the workspace, in App API shapes."""

    segments: dict[int, dict]
    campaigns: dict[int, dict]
    actions: dict[int, list[dict]]
    definition: WorkspaceDef | None = None  # conditions and line numbers, when a file describes the workspace
    source: str = ""


def from_file(path: str) -> Workspace:
    from cdpio_cli.sandbox.campaigns import (
        action_object,
        campaign_object,
        segment_object,
    )
    from cdpio_cli.workspace_file import load_workspace

    definition = load_workspace(path)
    return Workspace(
        segments={s.id: segment_object(s, 0) for s in definition.segments if not s.deleted},
        campaigns={c.id: campaign_object(c, 0) for c in definition.campaigns},
        actions={c.id: [action_object(c, a, 0) for a in c.actions] for c in definition.campaigns},
        definition=definition,
        source=path,
    )


def from_app_api(api: AppApi, definition: WorkspaceDef | None = None) -> Workspace:
    from cdpio_cli.campaigns import read_actions, read_list

    campaigns = read_list(api, "/v1/campaigns", "campaigns")
    return Workspace(
        segments=read_list(api, "/v1/segments", "segments"),
        campaigns=campaigns,
        # Only a campaign that would send needs its actions read.
        actions={
            cid: read_actions(api, cid)
            for cid, camp in campaigns.items()
            if camp.get("state") == "running" and camp.get("active") is not False
        },
        definition=definition,
        source="the App API",
    )


def _name(obj: dict) -> str:
    return f"{obj.get('id')} {obj.get('name', '')}".strip()


def _location(text: str) -> tuple[str | None, int | None]:
    """`events.ndjson:3` -> ("events.ndjson", 3)."""
    file, _, line = text.rpartition(":")
    return (file, int(line)) if file and line.isdigit() else (None, None)


def _seen(seen: Seen) -> str:
    return f"{seen.count} message{'s' if seen.count != 1 else ''} in {seen.first}" + ("…" if seen.count > 1 else "")


Location = tuple[str | None, int | None]


class _Findings:
    """The findings collected so far, each with its file and line when known."""

    def __init__(self, definition: WorkspaceDef | None) -> None:
        self.definition = definition
        self.found: list[tuple[str, str, str, dict, str | None, int | None]] = []

    def where(self, kind: str, ident: Any) -> Location:
        if self.definition is None:
            return None, None
        obj = self.definition.campaign(ident) if kind == "campaign" else self.definition.segment(ident)
        return (self.definition.path, obj.line) if obj is not None else (None, None)

    def add(
        self,
        rule: str,
        subject: str,
        message: str,
        details: dict,
        loc: Location = (None, None),
        severity: str | None = None,
    ) -> None:
        self.found.append((rule, subject, message, {"severity": severity or RULES[rule][0], **details}, *loc))

    def checks(self) -> list[Check]:
        return [
            Check(
                id=f"{rule} {subject}",
                route="audit",
                tier=Tier.AUDIT,
                status=Status.FAILED if details["severity"] == ERROR else Status.WARNING,
                message=message,
                file=file,
                line=line,
                hint=RULES[rule][1],
                details={"rule": rule, **details},
            )
            for rule, subject, message, details, file, line in self.found
        ]


Add = Callable[..., None]


def audit(ws: Workspace, data: Data | None, plan: Plan | None = None) -> list[Check]:
    """The findings, as checks (error -> failed, warning -> warning)."""
    findings = _Findings(ws.definition)
    for cid, camp in sorted(ws.campaigns.items()):
        label = f"campaign {_name(camp)}"
        loc = findings.where("campaign", cid)
        _campaign_sending(findings.add, ws, cid, camp, label, loc)
        _segments_missing(findings.add, ws, cid, camp, label, loc)
        event = camp.get("event_name")
        planned_close = _trigger_against_plan(plan, event, label, cid, loc, findings.add) if plan is not None else None
        if isinstance(event, str) and data is not None and event not in data.events:
            _trigger_against_data(findings.add, data, event, planned_close, label, cid, loc)
    for sid, seg in sorted(ws.segments.items()):
        _segment_findings(findings, data, plan, sid, seg)
    return findings.checks()


def _campaign_sending(add: Add, ws: Workspace, cid: int, camp: dict, label: str, loc: Location) -> None:
    """A campaign that is not running, or running with every action draft or off."""
    running = camp.get("state") == "running" and camp.get("active") is not False
    if not running:
        add(
            "audit.campaign_inactive",
            f"campaign {cid}",
            f"{label} is {camp.get('state')}"
            + (" and not active" if camp.get("active") is False else "")
            + ": it sends nothing",
            {"campaign_id": cid, "state": camp.get("state"), "active": camp.get("active")},
            loc,
        )
    actions = ws.actions.get(cid, [])
    states = {a.get("sending_state") for a in actions}
    if running and actions and states <= {"draft", "off"}:
        add(
            "audit.actions_not_sending",
            f"campaign {cid}",
            f"{label} is running but every action is draft or off ("
            + ", ".join(f"{a.get('id')}: {a.get('sending_state')}" for a in actions)
            + ")",
            {"campaign_id": cid, "actions": {str(a.get("id")): a.get("sending_state") for a in actions}},
            loc,
        )


def _segments_missing(add: Add, ws: Workspace, cid: int, camp: dict, label: str, loc: Location) -> None:
    """Trigger and filter segment ids that name no segment."""
    for kind, ids in (
        ("trigger", camp.get("trigger_segment_ids") or []),
        ("filter", camp.get("filter_segment_ids") or []),
    ):
        for sid in ids:
            if sid not in ws.segments:
                add(
                    "audit.segment_missing",
                    f"campaign {cid}",
                    f"{label} uses segment {sid} as a {kind} segment, and no segment {sid} exists",
                    {"campaign_id": cid, "segment_id": sid, "role": kind},
                    loc,
                )


def _trigger_against_data(
    add: Add, data: Data, event: str, planned_close: str | None, label: str, cid: int, loc: Location
) -> None:
    """A trigger event the data never sends: a near miss of a sent event, or never sent at all."""
    close = near_miss(event, sorted(data.events, key=lambda e: -data.events[e].count))
    if close is not None and close == planned_close:
        return  # the plan's near miss already names it
    if close is not None:
        seen = data.events[close]
        add(
            "audit.trigger_event_near_miss",
            f"campaign {cid}",
            f"`{event}` ({label}) vs `{close}` ({_seen(seen)}): {difference(event, close)}",
            {
                "campaign_id": cid,
                "trigger": event,
                "sent": close,
                "count": seen.count,
                "first": seen.first,
                "source": "data",
            },
            loc if loc[0] else _location(seen.first),
        )
        return
    add(
        "audit.trigger_event_never_sent",
        f"campaign {cid}",
        f"{label} is triggered by `{event}`, which never appears in the data ({data.messages} messages)",
        {"campaign_id": cid, "trigger": event},
        loc,
    )


def _segment_findings(findings: _Findings, data: Data | None, plan: Plan | None, sid: int, seg: dict) -> None:
    """A segment still building; its conditions on traits the data never sends or the plan does not allow."""
    definition = findings.definition
    if seg.get("state") not in (None, "finished"):
        findings.add(
            "audit.segment_building",
            f"segment {sid}",
            f"segment {_name(seg)} has not finished building (state {seg.get('state')}"
            + (f", {seg.get('progress')}%" if seg.get("progress") is not None else "")
            + ")",
            {"segment_id": sid, "state": seg.get("state")},
            findings.where("segment", sid),
        )
    seg_def = definition.segment(sid) if definition is not None else None
    if definition is None or seg_def is None:
        return
    if data is not None:
        for cond in seg_def.conditions:
            if cond.attribute and not (cond.op == "exists" and not cond.value) and cond.attribute not in data.traits:
                findings.add(
                    "audit.segment_trait_never_sent",
                    f"segment {sid}",
                    f"segment {_name(seg)} needs {cond.describe()}, and no identify in the data sends {cond.attribute}",
                    {"segment_id": sid, "attribute": cond.attribute},
                    (definition.path, cond.line),
                )
    if plan is not None:
        for cond in seg_def.conditions:
            _attribute_against_plan(plan, seg, sid, cond, definition.path, findings.add)


def _trigger_against_plan(plan: Plan, event: Any, label: str, cid: int, loc: Location, add: Add) -> str | None:
    """An event trigger must be a planned event; the planned name it nearly
    matches (`Signed up` vs `Signed Up`), if any."""
    if not isinstance(event, str) or plan.events is None or event in plan.events:
        return None
    close = near_miss(event, sorted(plan.events))
    if close is not None:
        line = plan.events[close].line
        add(
            "audit.trigger_event_near_miss",
            f"campaign {cid}",
            f"`{event}` ({label}) vs `{close}` (planned at {plan.path}:{line}): {difference(event, close)}",
            {
                "campaign_id": cid,
                "trigger": event,
                "planned": close,
                "source": "plan",
                "plan": plan.path,
                "plan_line": line,
            },
            loc if loc[0] else (plan.path, line),
        )
        return close
    import difflib

    similar = difflib.get_close_matches(event, list(plan.events), n=1, cutoff=0.75)
    add(
        "audit.trigger_event_unplanned",
        f"campaign {cid}",
        f"{label} is triggered by `{event}`, which the tracking plan {plan.path} does not list "
        f"({len(plan.events)} planned events" + (f"; closest `{similar[0]}`" if similar else "") + ")",
        {"campaign_id": cid, "trigger": event, "plan": plan.path, "closest": similar[0] if similar else None},
        loc if loc[0] else (plan.path, None),
    )
    return None


def _attribute_against_plan(plan: Plan, seg: dict, sid: int, cond: Condition, path: str, add: Add) -> None:
    """A segment's attribute condition must be on a planned identify trait whose
    values, stored as strings the way Customer.io stores them, can equal the condition's."""
    from cdpio_cli.plan import attribute_fit

    if not cond.attribute or (cond.op == "exists" and not cond.value):
        return  # `exists: false` holds for a trait nobody sends
    identify = plan.sections.get("identify")
    subject, loc = f"segment {sid}", (path, cond.line)
    base = {"segment_id": sid, "attribute": cond.attribute, "plan": plan.path}
    if identify is None or cond.attribute not in identify.known:
        add(
            "audit.segment_attribute_unplanned",
            subject,
            f"segment {_name(seg)} needs {cond.describe()}, and {cond.attribute} is not an identify trait in the "
            f"tracking plan {plan.path}" + ("" if identify is not None else " (it has no identify: section)"),
            base,
            loc,
        )
        return
    if cond.op not in ("eq", "ne"):
        return
    fit = attribute_fit(identify.properties, cond.attribute, str(cond.value))
    if fit.ok:
        return
    rule = "audit.segment_attribute_type" if fit.problem == "type" else "audit.segment_attribute_value"
    # `eq` that can never hold empties the segment; `ne` that always holds is only suspicious.
    outcome = "never matches" if cond.op == "eq" else "always holds"
    add(
        rule,
        subject,
        f"segment {_name(seg)}: `{cond.attribute} {'=' if cond.op == 'eq' else '!='} {json.dumps(cond.value)}` "
        f"{outcome}: the tracking plan's {cond.attribute} is {fit.expected}",
        {
            **base,
            "op": cond.op,
            "value": cond.value,
            "expected": fit.expected,
            "plan_line": plan.line_of("identify", identify.field, cond.attribute),
        },
        loc,
        severity=None if cond.op == "eq" else WARN,
    )


def run_audit(ws: Workspace, data: Data | None, plan: Plan | None = None) -> Report:
    report = Report("audit")
    checks = audit(ws, data, plan)
    report.extend(checks)
    if not checks:
        report.add(
            Check(
                id="audit",
                route="audit",
                tier=Tier.AUDIT,
                status=Status.PASSED,
                message=f"{len(ws.campaigns)} campaign(s), {len(ws.segments)} segment(s): no findings",
            )
        )
    counts = Counter(c.details.get("severity") for c in checks)
    report.summary.update(
        {
            "workspace": ws.source,
            "campaigns": len(ws.campaigns),
            "segments": len(ws.segments),
            "files": data.files if data is not None else [],
            "messages": data.messages if data is not None else 0,
            "events": {name: seen.count for name, seen in sorted(data.events.items())} if data is not None else {},
            "findings": {"error": counts.get(ERROR, 0), "warning": counts.get(WARN, 0)},
        }
    )
    if plan is not None:
        report.summary["plan"] = plan.path
        report.summary["planned_events"] = len(plan.events) if plan.events is not None else None
        if plan.events is None:
            report.notes.append(
                f"the tracking plan {plan.path} lists no events: campaign triggers were not checked against it"
            )
        if ws.definition is None:
            report.notes.append(
                "the App API does not expose segment conditions: their attributes were not "
                "checked against the tracking plan (pass --workspace FILE, or set "
                "sandbox.workspace)"
            )
    if data is None:
        report.notes.append(
            f"no data files given: checked against the tracking plan {plan.path} only (pass fixture files or "
            "--record FILE to check what the app actually sends)"
            if plan is not None
            else "no data files given: the checks against sent events and traits were skipped "
            "(pass fixture files, --record FILE or --plan FILE)"
        )
    return report


def audit_workspace(
    settings: Settings,
    data: Data | None,
    plan: Plan | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """`cdpio audit` against the App API the settings point at (the embedded
    sandbox serves `sandbox.workspace`, whose conditions the audit reads too)."""
    from cdpio_cli import keys
    from cdpio_cli.campaigns import workspace_definition
    from cdpio_cli.errors import UsageError
    from cdpio_cli.verify import AppApi, AppApiError, prepare_region

    if not settings.customerio.app_api_key:
        raise UsageError(
            "audit needs customerio.app_api_key to read campaigns and segments",
            hint="set customerio.app_api_key, or audit a workspace file with --workspace FILE",
        )
    http = keys.ServiceHttp.for_settings(settings, settings.config.verify.timeout)
    try:
        if progress:
            progress("reading campaigns and segments from the App API")
        warnings = prepare_region(settings, http)
        api = AppApi(http, settings.endpoint("app"), settings.customerio.app_api_key)
        try:
            ws = from_app_api(api, workspace_definition(settings))
        except AppApiError as exc:
            report = Report("audit")
            report.extend(warnings)
            report.add(
                Check(
                    id="customerio.app",
                    route="customerio",
                    tier=Tier.AUTHENTICATED,
                    status=Status.FAILED,
                    message=f"cannot read the workspace: {exc.message}",
                    http_status=exc.status,
                    failure=exc.failure,
                    hint="check customerio.app_api_key and customerio.region (`cdpio check-keys`)",
                )
            )
            return report
    finally:
        http.close()
    report = run_audit(ws, data, plan)
    report.checks = [*warnings, *report.checks]
    report.summary["app_api_calls"] = api.calls
    return report
