"""A Customer.io workspace's segments and campaigns, described in a YAML file.

The sandbox serves them through the App API (`cdpio sandbox --workspace FILE`,
`sandbox.workspace:` in cdpio.yaml), and `cdpio audit --workspace FILE` reads
them offline.  The format (docs/campaigns.md):

    segments:
      - {id: 1, name: Trial users, conditions: [{attribute: is_trial, eq: "true"}]}
    campaigns:
      - {id: 10, name: Onboarding, trigger: {event: Signed Up},
         actions: [{id: 100, type: email, sending_state: automatic}]}

Field values follow the App API's documented enums (journeys-app.json
#/components/schemas: segment `state`, campaign `state`, action `type` and
`sending_state`).  An unknown key, a wrong type or a reference to a segment
the file does not define is an InputError naming the line.

Conditions compare attribute values as strings, as Customer.io stores them
(an identify's `is_trial: true` is the attribute "true").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from cdpio_cli.errors import InputError
from cdpio_cli.yaml_nodes import Node, line_of, mapping_pairs, scalar_text, sequence_items

SEGMENT_STATES = ("events", "build", "events_queued", "build_queued", "finished")
CAMPAIGN_STATES = ("running", "draft", "stopped")
ACTION_TYPES = ("email", "in_app", "push", "twilio", "slack", "whatsapp", "webhook")
SENDING_STATES = ("automatic", "draft", "off")
MAX_FILE_BYTES = 1024 * 1024


@dataclass
class Condition:
    """`{attribute: K, eq|ne: V}`, `{attribute: K, exists: true|false}` or `{event: NAME}`."""

    attribute: str | None = None
    op: str | None = None  # eq | ne | exists
    value: str | bool | None = None  # a string for eq/ne, a bool for exists
    event: str | None = None
    line: int = 0

    def describe(self) -> str:
        if self.event is not None:
            return f"performed event {self.event!r}"
        if self.op == "exists":
            return f"attribute {self.attribute} {'exists' if self.value else 'does not exist'}"
        return f"attribute {self.attribute} {'=' if self.op == 'eq' else '!='} {self.value!r}"

    def matches(self, attributes: dict[str, str], events: Iterable[str]) -> bool:
        """`attributes` as the App API returns them (strings); `events` the names performed."""
        if self.event is not None:
            return self.event in events
        current = attributes.get(self.attribute) if self.attribute is not None else None
        present = self.attribute in attributes
        if self.op == "exists":
            return present == bool(self.value)
        if self.op == "eq":
            return present and current == self.value
        return not present or current != self.value


@dataclass
class SegmentDef:
    id: int
    name: str
    conditions: list[Condition] = field(default_factory=list)
    description: str = ""
    state: str = "finished"
    deleted: bool = False  # gone from Customer.io, still named by campaigns
    line: int = 0

    def matches(self, attributes: dict[str, str], events: Iterable[str]) -> bool:
        events = set(events)
        return all(c.matches(attributes, events) for c in self.conditions)

    def failing(self, attributes: dict[str, str], events: Iterable[str]) -> list[Condition]:
        events = set(events)
        return [c for c in self.conditions if not c.matches(attributes, events)]


@dataclass
class ActionDef:
    id: int
    type: str = "email"
    sending_state: str = "automatic"
    name: str = ""
    failure_message: str | None = None  # the sandbox fails this action's sends with it
    line: int = 0


@dataclass
class CampaignDef:
    id: int
    name: str
    trigger_event: str | None = None
    trigger_segment: int | None = None
    filter_segments: list[int] = field(default_factory=list)
    actions: list[ActionDef] = field(default_factory=list)
    description: str = ""
    state: str = "running"
    active: bool = True
    line: int = 0

    @property
    def sends(self) -> bool:
        """Would Customer.io start journeys for it?"""
        return self.state == "running" and self.active


@dataclass
class WorkspaceDef:
    path: str
    segments: list[SegmentDef] = field(default_factory=list)
    campaigns: list[CampaignDef] = field(default_factory=list)

    def segment(self, segment_id: int) -> SegmentDef | None:
        return next((s for s in self.segments if s.id == segment_id), None)

    def campaign(self, campaign_id: int) -> CampaignDef | None:
        return next((c for c in self.campaigns if c.id == campaign_id), None)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


class _Reader:
    """Plain values from a composed YAML node, each problem naming its line."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, node: Node, message: str, hint: str | None = None) -> NoReturn:
        raise InputError(message, file=self.path, line=line_of(node), hint=hint)

    def mapping(
        self, node: Node, what: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Node]:
        """The value node of each key (keys are plain words from `allowed`)."""
        pairs = mapping_pairs(node)
        if pairs is None:
            self.fail(node, f"{what} must be a mapping ({{key: value, ...}})")
        out: dict[str, Node] = {}
        for key_node, value_node in pairs:
            key = scalar_text(key_node)
            if key is None:
                self.fail(key_node, f"a key in {what} must be a plain word", hint=f"allowed: {', '.join(allowed)}")
            if key not in allowed:
                self.fail(key_node, f"unknown key {key!r} in {what}", hint=f"allowed: {', '.join(allowed)}")
            if key in out:
                self.fail(key_node, f"key {key!r} appears twice in {what}")
            out[key] = value_node
        for key in required:
            if key not in out:
                self.fail(node, f"{what} needs `{key}`")
        return out

    def seq(self, node: Node, what: str) -> list[Node]:
        items = sequence_items(node)
        if items is None:
            self.fail(node, f"{what} must be a list")
        return list(items)

    def scalar(self, node: Node, what: str) -> str:
        text = scalar_text(node)
        if text is None:
            self.fail(node, f"{what} must be a single value")
        return text

    def integer(self, node: Node, what: str) -> int:
        text = self.scalar(node, what)
        try:
            return int(text)
        except ValueError:
            self.fail(node, f"{what} must be a whole number, not {text!r}")

    def text(self, node: Node, what: str) -> str:
        text = self.scalar(node, what).strip()
        if not text:
            self.fail(node, f"{what} must not be empty")
        return text

    def boolean(self, node: Node, what: str) -> bool:
        text = self.scalar(node, what).lower()
        if text not in ("true", "false"):
            self.fail(node, f"{what} must be true or false, not {text!r}")
        return text == "true"

    def choice(self, node: Node, what: str, choices: tuple[str, ...]) -> str:
        text = self.scalar(node, what)
        if text not in choices:
            self.fail(node, f"{what} must be one of {', '.join(choices)}, not {text!r}")
        return text


def _condition(r: _Reader, node: Node, where: str) -> Condition:
    keys = r.mapping(node, f"a condition of {where}", ("attribute", "eq", "ne", "exists", "event"))
    line = line_of(node)
    if "event" in keys:
        if len(keys) > 1:
            r.fail(node, f"a condition of {where} is either {{event: NAME}} or {{attribute: ..., eq|ne|exists: ...}}")
        return Condition(event=r.text(keys["event"], "event"), line=line)
    if "attribute" not in keys:
        r.fail(node, f"a condition of {where} needs `attribute` or `event`")
    ops = [k for k in ("eq", "ne", "exists") if k in keys]
    if len(ops) != 1:
        r.fail(node, f"an attribute condition of {where} needs exactly one of eq, ne, exists")
    op = ops[0]
    name = r.text(keys["attribute"], "attribute")
    if op == "exists":
        return Condition(attribute=name, op=op, value=r.boolean(keys[op], "exists"), line=line)
    # Customer.io stores attribute values as strings: `eq: true` means "true".
    return Condition(attribute=name, op=op, value=r.scalar(keys[op], op), line=line)


def _segment(r: _Reader, node: Node) -> SegmentDef:
    keys = r.mapping(node, "a segment", ("id", "name", "description", "conditions", "state", "deleted"), ("id", "name"))
    seg = SegmentDef(
        id=r.integer(keys["id"], "segment id"), name=r.text(keys["name"], "segment name"), line=line_of(node)
    )
    where = f"segment {seg.id}"
    if "description" in keys:
        seg.description = r.scalar(keys["description"], "description")
    if "state" in keys:
        seg.state = r.choice(keys["state"], "segment state", SEGMENT_STATES)
    if "deleted" in keys:
        seg.deleted = r.boolean(keys["deleted"], "deleted")
    if "conditions" in keys:
        seg.conditions = [_condition(r, c, where) for c in r.seq(keys["conditions"], "conditions")]
    return seg


def _action(r: _Reader, node: Node) -> ActionDef:
    keys = r.mapping(node, "an action", ("id", "type", "sending_state", "name", "failure_message"), ("id",))
    action = ActionDef(id=r.integer(keys["id"], "action id"), line=line_of(node))
    if "type" in keys:
        action.type = r.choice(keys["type"], "action type", ACTION_TYPES)
    if "sending_state" in keys:
        action.sending_state = r.choice(keys["sending_state"], "sending_state", SENDING_STATES)
    if "name" in keys:
        action.name = r.scalar(keys["name"], "action name")
    if "failure_message" in keys:
        action.failure_message = r.text(keys["failure_message"], "failure_message")
    return action


def _campaign(r: _Reader, node: Node) -> tuple[CampaignDef, dict[str, Node], dict[str, Node]]:
    """The campaign, its keys' value nodes and its trigger's (to name the line of a bad reference)."""
    keys = r.mapping(
        node,
        "a campaign",
        ("id", "name", "description", "trigger", "filter_segments", "actions", "state", "active"),
        ("id", "name", "trigger"),
    )
    camp = CampaignDef(
        id=r.integer(keys["id"], "campaign id"),
        name=r.text(keys["name"], "campaign name"),
        line=line_of(node),
    )
    trigger = r.mapping(keys["trigger"], f"the trigger of campaign {camp.id}", ("event", "segment"))
    if len(trigger) != 1:
        r.fail(keys["trigger"], f"the trigger of campaign {camp.id} is {{event: NAME}} or {{segment: ID}}")
    if "event" in trigger:
        camp.trigger_event = r.text(trigger["event"], "trigger event")
    else:
        camp.trigger_segment = r.integer(trigger["segment"], "trigger segment")
    if "filter_segments" in keys:
        camp.filter_segments = [
            r.integer(n, "filter segment id") for n in r.seq(keys["filter_segments"], "filter_segments")
        ]
    if "actions" in keys:
        camp.actions = [_action(r, a) for a in r.seq(keys["actions"], "actions")]
    if "description" in keys:
        camp.description = r.scalar(keys["description"], "description")
    if "state" in keys:
        camp.state = r.choice(keys["state"], "campaign state", CAMPAIGN_STATES)
    if "active" in keys:
        camp.active = r.boolean(keys["active"], "active")
    return camp, keys, trigger


def _compose(path: str | Path, display: str) -> Node | None:
    """The file's YAML node tree (None when empty); InputError when it cannot be read or parsed."""
    import yaml

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read the workspace file: {exc.strerror or exc}",
            file=display,
            hint="pass an existing YAML file (docs/campaigns.md shows the format)",
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"the workspace file is larger than {MAX_FILE_BYTES // 1024} KB", file=display)
    try:
        root: Node | None = yaml.compose(data.decode("utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise InputError("the workspace file is not UTF-8 text", file=display) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise InputError(f"invalid YAML: {exc.problem}", file=display, line=mark.line + 1 if mark else None) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise InputError(f"invalid YAML: {exc}", file=display) from None
    return root


def load_workspace(path: str | Path) -> WorkspaceDef:
    """Read and check a workspace file; InputError (exit 2) naming the line on any problem."""
    display = str(path)
    root = _compose(path, display)
    r = _Reader(display)
    if root is None:
        raise InputError(
            "the workspace file is empty", file=display, hint="define `segments:` and `campaigns:` (docs/campaigns.md)"
        )
    top = r.mapping(root, "the workspace file", ("segments", "campaigns"))
    ws = WorkspaceDef(display)
    seen: dict[int, int] = {}
    for node in r.seq(top["segments"], "segments") if "segments" in top else []:
        seg = _segment(r, node)
        if seg.id in seen:
            r.fail(node, f"segment id {seg.id} is defined twice (first on line {seen[seg.id]})")
        seen[seg.id] = seg.line
        ws.segments.append(seg)
    campaign_lines: dict[int, int] = {}
    action_lines: dict[int, int] = {}
    for node in r.seq(top["campaigns"], "campaigns") if "campaigns" in top else []:
        camp, keys, trigger = _campaign(r, node)
        if camp.id in campaign_lines:
            r.fail(node, f"campaign id {camp.id} is defined twice (first on line {campaign_lines[camp.id]})")
        campaign_lines[camp.id] = camp.line
        refs = [(camp.trigger_segment, trigger["segment"])] if camp.trigger_segment is not None else []
        if camp.filter_segments:
            refs += zip(camp.filter_segments, r.seq(keys["filter_segments"], ""), strict=False)
        for segment_id, ref_node in refs:
            if segment_id not in seen:
                r.fail(
                    ref_node,
                    f"campaign {camp.id} refers to segment {segment_id}, which the file does not define",
                    hint="add the segment (with `deleted: true` for one removed from Customer.io)",
                )
        for action in camp.actions:
            if action.id in action_lines:
                raise InputError(
                    f"action id {action.id} is defined twice (first on line {action_lines[action.id]})",
                    file=display,
                    line=action.line,
                )
            action_lines[action.id] = action.line
        ws.campaigns.append(camp)
    return ws
