"""Does my campaign fire?  The `segmented` and `triggered` tiers.

After `delivered` (the person and events are in Customer.io), send-test and
verify check what the user configured under `send_test.expect`:

- `segmented`: the person is in each expected segment
  (GET /v1/customers/{id}/segments).  "Not a member" is a verdict only once
  the segment's `state` is `finished` (GET /v1/segments); before that it is
  "segment still building".
- `triggered`: each expected campaign created a message for the person after
  this run's first send (GET /v1/customers/{id}/messages, `campaign_id`,
  `created`, `metrics`, `failure_message`).  Verdicts: delivered, sent,
  drafted (the action's `sending_state` is draft), failed, or none.

Every field read is documented in journeys-app.json (docs/contracts.md,
"Segments, campaigns and messages").  Reads go through verify.AppApi, so they
share its 10 requests/s window; answers of 429 are retried by the transport
after `Retry-After`, and polls back off like delivery's.

When a tier fails, campaign_evidence.py gathers the facts (trigger event
name, campaign state, filter segments, the segment's conditions when a
workspace file describes them) for diagnosis.py, which names the causes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from cdpio_cli import diagnosis
from cdpio_cli.results import Check, Report, Status, Tier
from cdpio_cli.verify import (
    BACKOFF_CAP,
    BACKOFF_FACTOR,
    CLOCK_SLACK,
    AppApi,
    AppApiError,
)

if TYPE_CHECKING:
    from cdpio_cli.keys import Answer
    from cdpio_cli.settings import Settings
    from cdpio_cli.workspace_file import WorkspaceDef

TIERS = (Tier.SEGMENTED, Tier.TRIGGERED)
MESSAGES_PAGE = 100
MAX_PAGES = 20
FAILED_METRICS = ("failed", "undeliverable", "dropped", "bounced")


# ---------------------------------------------------------------------------
# What to check
# ---------------------------------------------------------------------------


@dataclass
class Expect:
    segments: list[Any] = field(default_factory=list)  # names or ids
    campaigns: list[Any] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.segments or self.campaigns)


def expectations(settings: Settings) -> Expect:
    cfg = settings.config.send_test.expect
    if cfg is None:
        return Expect()
    return Expect(list(cfg.segments or []), list(cfg.campaigns or []))


def workspace_definition(settings: Settings) -> WorkspaceDef | None:
    """The workspace file the config names (sandbox.workspace), for segment
    conditions the App API does not expose; None without one."""
    from cdpio_cli.workspace_file import load_workspace

    path = resolve_workspace_path(settings)
    return load_workspace(path) if path else None


def resolve_workspace_path(settings: Settings) -> str | None:
    """`sandbox.workspace`, relative to the config file's directory."""
    from pathlib import Path

    path = settings.config.sandbox.workspace
    if not path:
        return None
    if settings.config_path is not None and not Path(path).is_absolute():
        return str(Path(settings.config_path).parent / path)
    return path


def _resolve(ref: Any, items: dict[int, dict]) -> int | None:
    """An id for a configured name or id (names compare exactly, then ignoring case)."""
    text = str(ref).strip()
    if text.isdigit() and int(text) in items:
        return int(text)
    exact = [i for i, obj in items.items() if obj.get("name") == text]
    if exact:
        return exact[0]
    loose = [i for i, obj in items.items() if str(obj.get("name", "")).lower() == text.lower()]
    return loose[0] if loose else None


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------
# App API reads
# ---------------------------------------------------------------------------


def _ok(answer: Answer) -> dict[str, Any]:
    if answer.status == 200 and isinstance(answer.body, dict):
        return answer.body
    return {}


def read_list(api: AppApi, path: str, key: str) -> dict[int, dict]:
    """{id: object} of GET /v1/segments or /v1/campaigns (no paging documented)."""
    items = _ok(api._get(path)).get(key)
    out = {}
    for obj in items if isinstance(items, list) else []:
        ident = as_int(obj.get("id")) if isinstance(obj, dict) else None
        if ident is not None:
            out[ident] = obj
    return out


def read_actions(api: AppApi, campaign_id: int) -> list[dict]:
    """Every action of a campaign, following `next` (10 per page)."""
    params: dict[str, Any] = {}
    out: list[dict] = []
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        body = _ok(api._get(f"/v1/campaigns/{campaign_id}/actions", params))
        out += [a for a in body.get("actions") or [] if isinstance(a, dict)]
        cursor = body.get("next")
        if not isinstance(cursor, str) or not cursor or cursor in seen:
            break
        seen.add(cursor)
        params["start"] = cursor
    return out


def person_segment_ids(api: AppApi, ref: tuple[str, str]) -> set[int] | None:
    answer = api._get(f"/v1/customers/{quote(ref[0], safe='')}/segments", {"id_type": ref[1]})
    if answer.status != 200:
        return None
    items = _ok(answer).get("segments")
    if not isinstance(items, list):
        return set()
    ids = {as_int(s.get("id")) for s in items if isinstance(s, dict)}
    return {i for i in ids if i is not None}


def person_messages(api: AppApi, ref: tuple[str, str], since: float | None) -> list[dict]:
    """The person's messages created since `since` (unix seconds), every page."""
    params: dict[str, Any] = {"id_type": ref[1], "limit": MESSAGES_PAGE}
    if since is not None:
        params["start_ts"] = int(since)
    out: list[dict] = []
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        answer = api._get(f"/v1/customers/{quote(ref[0], safe='')}/messages", params)
        body = _ok(answer)
        out += [m for m in body.get("messages") or [] if isinstance(m, dict)]
        cursor = body.get("next")
        if not isinstance(cursor, str) or not cursor or cursor in seen:
            break
        seen.add(cursor)
        params["start"] = cursor
    return out


# ---------------------------------------------------------------------------
# Polling
# ---------------------------------------------------------------------------


@dataclass
class SegmentWatch:
    ref: Any
    id: int | None = None
    obj: dict = field(default_factory=dict)
    member_at: float | None = None

    @property
    def name(self) -> str:
        return str(self.obj.get("name") or self.ref)

    @property
    def finished(self) -> bool:
        return self.obj.get("state") == "finished"


@dataclass
class CampaignWatch:
    ref: Any
    id: int | None = None
    obj: dict = field(default_factory=dict)
    actions: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    found_at: float | None = None

    @property
    def name(self) -> str:
        return str(self.obj.get("name") or self.ref)

    def outcome(self) -> str:
        """delivered | sent | failed | drafted | none, from the messages' `metrics`."""
        states = set()
        for m in self.messages:
            metrics = m.get("metrics")
            if not isinstance(metrics, dict):
                metrics = {}
            if m.get("failure_message") or any(k in metrics for k in FAILED_METRICS):
                states.add("failed")
            elif "delivered" in metrics:
                states.add("delivered")
            elif "sent" in metrics:
                states.add("sent")
            elif "drafted" in metrics:
                states.add("drafted")
            else:
                states.add("created")
        for verdict in ("delivered", "sent", "failed", "drafted", "created"):
            if verdict in states:
                return verdict
        return "none"

    @property
    def settled(self) -> bool:
        # `sent` is proof enough: some channels never report `delivered`.
        return self.outcome() in ("delivered", "sent", "failed", "drafted")


@dataclass
class Watch:
    segments: list[SegmentWatch]
    campaigns: list[CampaignWatch]
    ref: tuple[str, str]
    since: float | None  # unix seconds; messages created before it are earlier runs'
    started: float = field(default_factory=time.monotonic)
    person_segments: set[int] | None = None
    error: AppApiError | None = None

    def pending(self) -> bool:
        return any(s.id is not None and s.member_at is None for s in self.segments) or any(
            c.id is not None and not c.settled for c in self.campaigns
        )


def _poll(api: AppApi, watch: Watch, now: Callable[[], float]) -> None:
    needs_segments = any(s.id is not None and s.member_at is None for s in watch.segments) or any(
        c.id is not None and not c.settled for c in watch.campaigns
    )
    if needs_segments:
        ids = person_segment_ids(api, watch.ref)
        if ids is not None:
            watch.person_segments = ids
            for s in watch.segments:
                if s.id in ids and s.member_at is None:
                    s.member_at = now()
    building = [s for s in watch.segments if s.id is not None and s.member_at is None and not s.finished]
    if building:  # has it finished building since?
        current = read_list(api, "/v1/segments", "segments")
        for s in building:
            if s.id is not None:
                s.obj = current.get(s.id, s.obj)
    if any(c.id is not None and not c.settled for c in watch.campaigns):
        since = None if watch.since is None else watch.since - CLOCK_SLACK
        messages = person_messages(api, watch.ref, since)
        for c in watch.campaigns:
            mine = [
                m
                for m in messages
                if as_int(m.get("campaign_id")) == c.id and (since is None or (as_int(m.get("created")) or 0) >= since)
            ]
            if mine and c.found_at is None:
                c.found_at = now()
            c.messages = mine


def wait_tiers(
    api: AppApi,
    watch: Watch,
    *,
    timeout: float,
    poll_interval: float,
    progress: Callable[[str], None] | None = None,
    now: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    start = now()
    deadline = start + max(0.0, timeout)
    interval = max(0.05, poll_interval)
    wait = interval
    while True:
        try:
            _poll(api, watch, now)
            watch.error = None
        except AppApiError as exc:
            watch.error = exc
            if exc.failure == "credential":
                return
        if not watch.pending():
            return
        remaining = deadline - now()
        if remaining <= 0:
            return
        if progress:
            progress(f"waiting for segments and campaigns in Customer.io ({now() - start:.0f}s of {timeout:.0f}s)")
        sleep(min(wait, remaining))
        wait = min(wait * BACKOFF_FACTOR, interval * BACKOFF_CAP)


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _ago(watch: Watch, at: float | None) -> str:
    return "" if at is None else f", {at - watch.started:.1f}s after delivery"


def segment_check(route: str, s: SegmentWatch, watch: Watch, timeout: float) -> Check:
    cid = f"{route}.segment.{s.ref}"
    details: dict[str, Any] = {"segment_id": s.id, "segment": s.name}
    if s.id is None:
        return Check(
            id=cid,
            route=route,
            tier=Tier.SEGMENTED,
            status=Status.FAILED,
            message=f"no segment {s.ref!r} in the workspace",
            hint="check send_test.expect.segments against the segments in Customer.io (names or ids)",
            details={**details, "verdict": "unknown_segment"},
        )
    if s.member_at is not None:
        return Check(
            id=cid,
            route=route,
            tier=Tier.SEGMENTED,
            status=Status.PASSED,
            message=f"the person is in segment {s.id} {s.name}{_ago(watch, s.member_at)}",
            duration_ms=(s.member_at - watch.started) * 1000.0,
            details={**details, "verdict": "member"},
        )
    if watch.error is not None:
        return Check(
            id=cid,
            route=route,
            tier=Tier.SEGMENTED,
            status=Status.FAILED,
            message=f"cannot read the person's segments: {watch.error.message}",
            failure=watch.error.failure,
            http_status=watch.error.status,
            details=details,
        )
    if not s.finished:
        progress = s.obj.get("progress")
        return Check(
            id=cid,
            route=route,
            tier=Tier.SEGMENTED,
            status=Status.FAILED,
            message=f"segment still building: {s.id} {s.name} is in state {s.obj.get('state')}"
            + (f" ({progress}% done)" if progress is not None else "")
            + f" after {timeout:g}s, so the person's membership is not known yet",
            hint="wait for the segment to finish building, then run again (or raise verify.timeout)",
            details={**details, "verdict": "building", "state": s.obj.get("state")},
        )
    return Check(
        id=cid,
        route=route,
        tier=Tier.SEGMENTED,
        status=Status.FAILED,
        message=f"the person is not in segment {s.id} {s.name} after {timeout:g}s (it has finished building)",
        details={**details, "verdict": "not_member"},
    )


def campaign_check(route: str, c: CampaignWatch, watch: Watch, timeout: float) -> Check:
    cid = f"{route}.campaign.{c.ref}"
    details: dict[str, Any] = {"campaign_id": c.id, "campaign": c.name}
    if c.id is None:
        return Check(
            id=cid,
            route=route,
            tier=Tier.TRIGGERED,
            status=Status.FAILED,
            message=f"no campaign {c.ref!r} in the workspace",
            hint="check send_test.expect.campaigns against the campaigns in Customer.io (names or ids)",
            details={**details, "verdict": "unknown_campaign"},
        )
    outcome = c.outcome()
    details["verdict"] = outcome if outcome != "created" else "none"
    details["messages"] = [
        {
            "id": m.get("id"),
            "action_id": m.get("action_id"),
            "metrics": m.get("metrics"),
            "failure_message": m.get("failure_message"),
        }
        for m in c.messages
    ]
    took = None if c.found_at is None else (c.found_at - watch.started) * 1000.0
    head = f"campaign {c.id} {c.name}"
    if outcome in ("delivered", "sent"):
        return Check(
            id=cid,
            route=route,
            tier=Tier.TRIGGERED,
            status=Status.PASSED,
            message=f"{head} sent the person a message: {outcome}" + _ago(watch, c.found_at),
            duration_ms=took,
            details=details,
        )
    if watch.error is not None and not c.messages:
        return Check(
            id=cid,
            route=route,
            tier=Tier.TRIGGERED,
            status=Status.FAILED,
            message=f"cannot read the person's messages: {watch.error.message}",
            failure=watch.error.failure,
            http_status=watch.error.status,
            details=details,
        )
    return Check(
        id=cid,
        route=route,
        tier=Tier.TRIGGERED,
        status=Status.FAILED,
        message=_not_sent(head, c, outcome, timeout),
        duration_ms=took if outcome in ("failed", "drafted") else None,
        details=details,
        hint="fix what the failure message says (recipient, template, sending domain), then run again"
        if outcome == "failed"
        else None,
    )


def _not_sent(head: str, c: CampaignWatch, outcome: str, timeout: float) -> str:
    """Why the campaign sent the person nothing: failed, drafted, or no message at all."""
    if outcome == "failed":
        reasons = sorted({str(m.get("failure_message")) for m in c.messages if m.get("failure_message")})
        return f"{head} tried to send and failed" + (": " + "; ".join(f'"{r}"' for r in reasons) if reasons else "")
    if outcome == "drafted":
        drafts = [a for a in c.actions if a.get("sending_state") == "draft"]
        which = ", ".join(f"{a.get('id')} {a.get('name') or a.get('type')}" for a in drafts)
        return f"{head} drafted a message but did not send it" + (
            f": action {which} has sending_state draft" if drafts else ""
        )
    return f"{head} created no message for the person within {timeout:g}s" + (
        " (earlier messages exist, none from this run)" if outcome == "created" else ""
    )


def run_tiers(
    report: Report,
    api: AppApi,
    *,
    route: str,
    ref: tuple[str, str],
    since: float | None,
    attributes: dict[str, str],
    sent_events: list[str],
    expect: Expect,
    settings: Settings,
    evidence: diagnosis.Evidence,
    timeout: float,
    poll_interval: float,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Check the expected segments and campaigns for one delivered person; add their checks."""
    segments = read_list(api, "/v1/segments", "segments") if expect.segments or expect.campaigns else {}
    campaigns = read_list(api, "/v1/campaigns", "campaigns") if expect.campaigns else {}
    watch = Watch([], [], ref, since)
    for ref_ in expect.segments:
        sid = _resolve(ref_, segments)
        watch.segments.append(SegmentWatch(ref_, sid, segments.get(sid, {}) if sid is not None else {}))
    for ref_ in expect.campaigns:
        cid = _resolve(ref_, campaigns)
        c = CampaignWatch(ref_, cid, campaigns.get(cid, {}) if cid is not None else {})
        if cid is not None:
            c.actions = read_actions(api, cid)
        watch.campaigns.append(c)
    wait_tiers(api, watch, timeout=timeout, poll_interval=poll_interval, progress=progress)
    if watch.person_segments is None and watch.error is None:
        ids = person_segment_ids(api, ref)
        watch.person_segments = ids
    from cdpio_cli.campaign_evidence import learn

    definition = workspace_definition(settings)
    learn(evidence, watch, attributes=attributes, sent_events=sent_events, segments=segments, definition=definition)
    for s in watch.segments:
        report.add(segment_check(route, s, watch, timeout))
    for c in watch.campaigns:
        report.add(campaign_check(route, c, watch, timeout))


def skip_tiers(report: Report, route: str, expect: Expect, why: str) -> None:
    """The tiers cannot be checked (delivery failed or was not verified)."""
    for ref in expect.segments:
        report.add(
            Check(id=f"{route}.segment.{ref}", route=route, tier=Tier.SEGMENTED, status=Status.SKIPPED, message=why)
        )
    for ref in expect.campaigns:
        report.add(
            Check(id=f"{route}.campaign.{ref}", route=route, tier=Tier.TRIGGERED, status=Status.SKIPPED, message=why)
        )
