"""Facts for the diagnosis package about why the `segmented` or `triggered` tier failed.

campaigns.py watches the expected segments and campaigns; when one did not
come through, the facts learned here (segment still building, a condition the
person does not meet, campaign not running, trigger event not sent or spelled
differently, a trigger or filter segment the person is not in, every action
draft or off) let the diagnosis package name the causes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdpio_cli import diagnosis
from cdpio_cli.campaigns import CampaignWatch, SegmentWatch, Watch, as_int
from cdpio_cli.near_miss import difference, near_miss

if TYPE_CHECKING:
    from cdpio_cli.workspace_file import Condition, WorkspaceDef


def learn(
    ev: diagnosis.Evidence,
    watch: Watch,
    *,
    attributes: dict[str, str],
    sent_events: list[str],
    segments: dict[int, dict],
    definition: WorkspaceDef | None = None,
) -> None:
    """Facts about why a segment or campaign tier may have failed."""
    for s in watch.segments:
        if s.id is not None and s.member_at is None:
            _learn_segment(ev, s, s.id, attributes, sent_events, definition)
    for c in watch.campaigns:
        if c.id is None or c.outcome() in ("delivered", "sent"):
            continue
        _learn_campaign_state(ev, c, c.id)
        _learn_trigger_event(ev, c, c.id, sent_events)
        if watch.person_segments is not None:
            _learn_segments_missed(ev, c, c.id, watch.person_segments, segments)
        _learn_actions(ev, c, c.id)


def _learn_segment(
    ev: diagnosis.Evidence,
    s: SegmentWatch,
    sid: int,
    attributes: dict[str, str],
    sent_events: list[str],
    definition: WorkspaceDef | None,
) -> None:
    if not s.finished:
        ev.add(
            f"segment.{sid}.building",
            f"segment {sid} {s.name} is still building (state {s.obj.get('state')})",
            segment=sid,
        )
        return
    seg_def = definition.segment(sid) if definition else None
    if definition is None or seg_def is None:
        ev.add(
            f"segment.{sid}.not_member",
            f"the person is not in segment {sid} {s.name}, which has finished building",
            segment=sid,
        )
        return
    cond = next(iter(seg_def.failing(attributes, set(sent_events))), None)
    if cond is None:
        return
    needs = f"segment {sid} {s.name} needs {cond.describe()} ({definition.path}:{cond.line})"
    if _never_sent(cond, attributes):
        ev.add(
            f"segment.{sid}.trait_never_sent",
            f"{needs}, and the person has no {cond.attribute}: it was never sent",
            segment=sid,
            attribute=cond.attribute,
        )
        return
    ev.add(
        f"segment.{sid}.condition_unmet",
        f"{needs}; "
        + (
            f"the person has {cond.attribute} = {attributes.get(cond.attribute)!r}"
            if cond.attribute
            else "the person never performed it"
        ),
        segment=sid,
    )


def _never_sent(cond: Condition, attributes: dict[str, str]) -> bool:
    """The condition fails because the person has no such attribute at all."""
    return bool(
        cond.attribute is not None
        and cond.attribute not in attributes
        and cond.op != "exists"
        or (cond.op == "exists" and cond.value and cond.attribute not in attributes)
    )


def _learn_campaign_state(ev: diagnosis.Evidence, c: CampaignWatch, cid: int) -> None:
    obj = c.obj
    if obj.get("state") != "running" or obj.get("active") is False:
        ev.add(
            f"campaign.{cid}.not_sending",
            f"campaign {cid} {c.name} is {obj.get('state')}"
            + (" and not active" if obj.get("active") is False else ""),
            campaign=cid,
        )


def _learn_trigger_event(ev: diagnosis.Evidence, c: CampaignWatch, cid: int, sent_events: list[str]) -> None:
    event_name = c.obj.get("event_name")
    if not isinstance(event_name, str) or event_name in sent_events:
        return
    close = near_miss(event_name, sent_events)
    if close is not None:
        ev.add(
            f"campaign.{cid}.trigger_differs",
            f"campaign {cid} {c.name} is triggered by `{event_name}`, this run sent `{close}`: "
            f"{difference(event_name, close)}",
            campaign=cid,
            trigger=event_name,
            sent=close,
        )
        return
    ev.add(
        f"campaign.{cid}.trigger_not_sent",
        f"campaign {cid} {c.name} is triggered by `{event_name}`, which this run did not send "
        f"(sent: {', '.join(f'`{e}`' for e in sent_events) or 'no events'})",
        campaign=cid,
        trigger=event_name,
    )


def _learn_segments_missed(
    ev: diagnosis.Evidence, c: CampaignWatch, cid: int, member_of: set[int], segments: dict[int, dict]
) -> None:
    """The campaign's trigger and filter segments the person is not in."""
    for sid in c.obj.get("trigger_segment_ids") or []:
        if as_int(sid) not in member_of:
            ev.add(
                f"campaign.{cid}.trigger_segment",
                f"campaign {cid} {c.name} is triggered by segment {sid} {_segment_name(segments, sid, '')}, "
                "and the person is not in it",
                campaign=cid,
                segment=sid,
            )
    for sid in c.obj.get("filter_segment_ids") or []:
        if as_int(sid) not in member_of:
            ev.add(
                f"campaign.{cid}.filter_excludes",
                f"campaign {cid} {c.name} filters on segment {sid} {_segment_name(segments, sid, '(does not exist)')}, "
                "and the person is not in it",
                campaign=cid,
                segment=sid,
            )


def _segment_name(segments: dict[int, dict], sid: object, missing: str) -> str:
    ident = as_int(sid)
    found = segments.get(ident) if ident is not None else None
    return str((found or {}).get("name", missing))


def _learn_actions(ev: diagnosis.Evidence, c: CampaignWatch, cid: int) -> None:
    states = {a.get("sending_state") for a in c.actions}
    if c.actions and states <= {"draft", "off"}:
        draft = [a for a in c.actions if a.get("sending_state") == "draft"]
        ev.add(
            f"campaign.{cid}.actions_not_sending",
            f"campaign {cid} {c.name}: every action is draft or off ("
            + ", ".join(f"{a.get('id')} {a.get('name') or a.get('type')}: {a.get('sending_state')}" for a in c.actions)
            + ")",
            campaign=cid,
            draft=[a.get("id") for a in draft],
        )
