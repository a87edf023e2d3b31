"""What the Customer.io (Actions) destination does with each message, or why it is dropped.

Two places can drop a message the Tracking API answered 200 for: Segment
itself on ingest (`messages.ingest_drop_reason`: no userId/anonymousId, a
track without an event name...) and the destination (`mapping.map_message`:
a page without properties.url, a device event without a push token...).
Otherwise the destination runs one action that sends Customer.io Track API
operations (v2 bodies, or one /api/v1/metrics body).  The sandbox runs the
same mapping module, so explain and the sandbox agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdpio_cli import mapping, messages
from cdpio_cli.errors import FailureKind

if TYPE_CHECKING:
    from cdpio_cli.fixtures import Record
    from cdpio_cli.keys import ServiceHttp
    from cdpio_cli.plan import PlanChecker
    from cdpio_cli.results import Check
    from cdpio_cli.settings import Settings

SEGMENT, DESTINATION, INPUT = "segment", "destination", "input"


@dataclass(slots=True)
class Explanation:
    file: str
    line: int
    label: str  # messages.describe, e.g. `track "Signed Up" user=u1`
    action: str | None = None  # the destination action (trackEvent, ...)
    operations: list[dict] = field(default_factory=list)
    endpoint: str | None = None  # mapping.V2 or mapping.V1_METRICS
    # Segment's discard code (no_user_anon_id...) or the destination's
    # MESSAGE_REJECTED/NO_MATCHING_MAPPING reason: the sandbox reports the same.
    drop_reason: str | None = None
    drop_detail: str | None = None  # a human sentence for Segment drops
    dropped_by: str | None = None  # segment | destination | input (unreadable record)
    message_id: str | None = None
    # (rule, severity, message) against the tracking plan (plan.PlanChecker), when one is given.
    plan_findings: list = field(default_factory=list)

    @property
    def dropped(self) -> bool:
        return self.drop_reason is not None

    def verdict(self) -> str:
        """One line: the operation(s) sent, or why nothing is."""
        if self.dropped_by == INPUT:
            return f"not read: {self.drop_reason}"
        if self.dropped_by == SEGMENT:
            detail = f" ({self.drop_detail})" if self.drop_detail else ""
            return f"dropped by Segment on ingest: {self.drop_reason}{detail}"
        if self.dropped:
            return f"dropped by the destination: {self.drop_reason}"
        return "; ".join(operation_summary(op, self.endpoint) for op in self.operations)

    def to_details(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": self.action, "dropped": self.dropped}
        if self.dropped:
            data["dropped_by"] = self.dropped_by
            data["drop_reason"] = self.drop_reason
            if self.drop_detail:
                data["drop_detail"] = self.drop_detail
        else:
            data["endpoint"] = self.endpoint
            data["operations"] = self.operations
        if self.message_id:
            data["messageId"] = self.message_id
        if self.plan_findings:
            data["plan"] = [{"rule": r, "severity": sev, "message": m} for r, sev, m in self.plan_findings]
        return data


def operation_summary(op: dict, endpoint: str | None = None) -> str:
    """`person/event "Signed Up" id=u1` or `POST /api/v1/metrics delivered`."""
    if endpoint == mapping.V1_METRICS:
        return f"POST {mapping.V1_METRICS} {op.get('metric')} delivery_id={op.get('delivery_id')}"
    text = f"{op.get('type')}/{op.get('action')}"
    if op.get("name") is not None:
        text += f" {str(op['name'])!r}"
    ids = op.get("identifiers")
    if isinstance(ids, dict):
        text += " " + " ".join(f"{k}={v}" for k, v in ids.items())
    device = op.get("device")
    if isinstance(device, dict) and device.get("token"):
        token = str(device["token"])
        text += f" device={token[:8]}{'...' if len(token) > 8 else ''}"
    attrs = op.get("attributes")
    if isinstance(attrs, dict) and attrs:
        text += f" ({len(attrs)} attribute{'s' if len(attrs) != 1 else ''})"
    return text


def explain_message(
    msg: Any,
    file: str = "<message>",
    line: int = 1,
    *,
    action: str | None = None,
    fields: mapping.Fields = mapping.DEFAULT_FIELDS,
    subscriptions: Sequence[mapping.Subscription] | None = None,
) -> Explanation:
    """What happens to one message.  With `action`, the message goes through
    that action alone, with its default field mapping (or `fields`), whatever
    the trigger and without Segment's ingest checks, as the destination's own
    tests run it; otherwise Segment ingest, then the workspace's
    `subscriptions` (None: the destination's default subscriptions)."""
    label = messages.describe(msg) if isinstance(msg, dict) else f"<{type(msg).__name__}>"
    exp = Explanation(file, line, label)
    if isinstance(msg, dict) and isinstance(msg.get("messageId"), str):
        exp.message_id = msg["messageId"]
    if action is not None:
        _apply(exp, mapping.run_action(action, msg, fields))
        return exp
    code = messages.ingest_drop_reason(msg)
    if code is not None:
        problem = next((p for p in messages.spec_problems(msg, size=0) if p.ingest_code == code), None)
        exp.drop_reason = code
        exp.drop_detail = problem.message if problem else None
        exp.dropped_by = SEGMENT
        return exp
    size = messages.message_size(msg)
    if size > messages.MAX_MESSAGE_BYTES:
        exp.drop_reason = "message_too_large"
        exp.drop_detail = (
            f"message is {size:,} bytes; Segment rejects messages over {messages.MAX_MESSAGE_BYTES:,} bytes with 400"
        )
        exp.dropped_by = SEGMENT
        return exp
    _apply(exp, mapping.map_message(msg) if subscriptions is None else mapping.map_subscribed(msg, subscriptions))
    return exp


def _apply(exp: Explanation, result: mapping.Mapping) -> None:
    exp.action = result.action
    exp.endpoint = result.endpoint
    if result.drop_reason is not None:
        exp.drop_reason = result.drop_reason
        exp.dropped_by = DESTINATION
    else:
        exp.operations = list(result.operations)


def explain_records(
    records: Iterable[Record],
    *,
    action: str | None = None,
    subscriptions: Sequence[mapping.Subscription] | None = None,
    plan_checker: PlanChecker | None = None,
) -> Iterator[Explanation]:
    """One Explanation per fixtures.Record (unreadable records included);
    `action` and `subscriptions` as in explain_message; `plan_checker` (a
    plan.PlanChecker) adds the tracking-plan violations next to the mapping."""
    for record in records:
        if record.error is not None:
            yield Explanation(record.file, record.line, "<unreadable>", drop_reason=record.error, dropped_by=INPUT)
        else:
            exp = explain_message(record.message, record.file, record.line, action=action, subscriptions=subscriptions)
            if plan_checker is not None:
                exp.plan_findings = plan_checker.findings(record.message)
            yield exp


# --- the workspace's subscriptions ---------------------------------------------

SUBSCRIPTIONS_DEFAULT, SUBSCRIPTIONS_CONFIG, SUBSCRIPTIONS_API = "default", "config", "segment-api"


def subscriptions_from_config(items: Any, where: str = "customerio.subscriptions") -> list[mapping.Subscription]:
    """`customerio.subscriptions:` entries ({action, trigger, enabled?, name?}) ->
    Subscriptions.  ValueError naming the entry and the fix on a bad one."""
    if not isinstance(items, list):
        raise ValueError(f"{where} must be a list of {{action, trigger}} entries")
    subs = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{at} must be a mapping with action and trigger")
        unknown = set(item) - {"action", "trigger", "enabled", "name"}
        if unknown:
            raise ValueError(f"{at}: unknown key {sorted(unknown)[0]!r} (keys: action, trigger, enabled, name)")
        action, trigger = item.get("action"), item.get("trigger")
        if action not in mapping.ACTION_BUILDERS:
            raise ValueError(
                f"{at}: action {action!r} is not an action of the Customer.io (Actions) "
                f"destination (one of {', '.join(mapping.ACTION_BUILDERS)})"
            )
        if not isinstance(trigger, str) or not trigger.strip():
            raise ValueError(f"{at}: trigger must be the subscription's FQL, e.g. 'type = \"track\"'")
        try:
            mapping.check_trigger(trigger)
        except mapping.TriggerError as exc:
            raise ValueError(f"{at}: {exc}") from None
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError(f"{at}: enabled must be true or false")
        name = item.get("name")
        subs.append(mapping.Subscription(action, trigger, enabled, str(name) if name is not None else None))
    return subs


def configured_subscriptions(settings: Settings) -> list[mapping.Subscription] | None:
    """The config's customerio.subscriptions for a command's Settings (None when
    it lists none); a bad entry is a ConfigError naming its line."""
    listed = settings.config.customerio.subscriptions
    if listed is None:
        return None
    from cdpio_cli.errors import ConfigError

    try:
        return subscriptions_from_config(listed)
    except ValueError as exc:
        loaded = getattr(settings, "loaded", None)
        raise ConfigError(
            str(exc),
            file=str(settings.config_path) if settings.config_path else None,
            line=loaded.line_of("customerio.subscriptions") if loaded else None,
        ) from None


def subscriptions_from_api(doc: Any) -> list[mapping.Subscription]:
    """Segment Public API `GET /destinations/{id}/subscriptions` body ->
    Subscriptions (`data.subscriptions[]`: actionSlug, trigger, enabled,
    name).  Subscriptions of actions cdpio does not know, or with a trigger
    it cannot evaluate, raise ValueError: guessing would explain wrongly."""
    data = doc.get("data") if isinstance(doc, dict) else None
    items = data.get("subscriptions") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("the Public API answer has no data.subscriptions list")
    subs = []
    for item in items:
        if not isinstance(item, dict):
            continue
        slug = item.get("actionSlug")
        action = (
            slug
            if slug in mapping.ACTION_BUILDERS
            else next((key for key, info in mapping.ACTIONS.items() if info.title == item.get("name")), None)
        )
        if action is None:
            raise ValueError(
                f"subscription {item.get('name') or item.get('id')!r} uses action {slug!r}, which cdpio does not know"
            )
        trigger = item.get("trigger") or ""
        try:
            mapping.check_trigger(trigger)
        except mapping.TriggerError as exc:
            raise ValueError(f"subscription {item.get('name') or action!r}: {exc}") from None
        subs.append(mapping.Subscription(action, trigger, item.get("enabled") is True, item.get("name")))
    return subs


def fetch_subscriptions(settings: Settings, http: ServiceHttp) -> tuple[list[mapping.Subscription] | None, str]:
    """The Customer.io (Actions) destination's subscriptions through the Segment
    Public API: (subscriptions, where from) or (None, why not)."""
    base = settings.endpoint("segment_api")
    headers = {
        "Authorization": f"Bearer {settings.segment.public_api_token}",
        "Accept": "application/vnd.segment.v1+json",
    }
    answer = http.call("GET", f"{base}/destinations", headers=headers, params={"pagination.count": 200})
    if answer.status != 200:
        return None, f"the Segment Public API destinations list answered {answer.status or answer.error}"
    dests = ((answer.body or {}).get("data") or {}).get("destinations") or [] if isinstance(answer.body, dict) else []
    cio = [
        d
        for d in dests
        if isinstance(d, dict)
        and ((d.get("metadata") or {}).get("name") or d.get("name") or "").startswith("Customer.io")
    ]
    if len(cio) != 1:
        return None, (
            f"the workspace has {len(cio)} Customer.io destinations; list the one you use "
            "under customerio.subscriptions"
        )
    dest_id = cio[0].get("id")
    answer = http.call(
        "GET", f"{base}/destinations/{dest_id}/subscriptions", headers=headers, params={"pagination.count": 200}
    )
    if answer.status != 200:
        return None, f"the Segment Public API subscriptions list answered {answer.status or answer.error}"
    try:
        subs = subscriptions_from_api(answer.body)
    except ValueError as exc:
        return None, str(exc)
    return subs, f"{len(subs)} subscription(s) of destination {dest_id} (Segment Public API)"


@dataclass
class ExplainSummary:
    messages: int = 0
    sent: int = 0
    dropped_by_segment: int = 0
    dropped_by_destination: int = 0
    unreadable: int = 0
    operations: int = 0
    by_action: dict[str, int] = field(default_factory=dict)
    drop_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, exp: Explanation) -> None:
        self.messages += 1
        if exp.dropped_by == INPUT:
            self.unreadable += 1
            return
        if exp.action:
            self.by_action[exp.action] = self.by_action.get(exp.action, 0) + 1
        if exp.dropped:
            if exp.dropped_by == SEGMENT:
                self.dropped_by_segment += 1
            else:
                self.dropped_by_destination += 1
            key = exp.drop_reason or ""
            self.drop_reasons[key] = self.drop_reasons.get(key, 0) + 1
        else:
            self.sent += 1
            self.operations += len(exp.operations)

    @property
    def dropped(self) -> int:
        return self.dropped_by_segment + self.dropped_by_destination

    def sentence(self) -> str:
        """`3 message(s), 2 sent as 2 Customer.io operation(s), ...` (the command's note)."""
        parts = [
            f"{self.messages:,} message(s)",
            f"{self.sent:,} sent as {self.operations:,} Customer.io operation(s)",
            f"{self.dropped_by_segment:,} dropped by Segment",
            f"{self.dropped_by_destination:,} dropped by the destination",
        ]
        if self.unreadable:
            parts.append(f"{self.unreadable:,} unreadable")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "sent": self.sent,
            "dropped": self.dropped,
            "dropped_by": {SEGMENT: self.dropped_by_segment, DESTINATION: self.dropped_by_destination},
            "unreadable": self.unreadable,
            "operations": self.operations,
            "by_action": dict(sorted(self.by_action.items())),
            "drop_reasons": dict(sorted(self.drop_reasons.items(), key=lambda kv: -kv[1])),
        }


def explanation_to_check(exp: Explanation, *, verbose: bool = False, fail_on_drop: bool = False) -> Check:
    """Sent -> passed; dropped -> warning (failed with fail_on_drop); an
    unreadable record -> failed with failure "usage" (exit 2)."""
    import json

    from cdpio_cli import results

    if exp.dropped_by == INPUT:
        status, failure = results.Status.FAILED, FailureKind.USAGE
    elif exp.dropped:
        status, failure = (results.Status.FAILED if fail_on_drop else results.Status.WARNING), FailureKind.CHECK
    else:
        status, failure = results.Status.PASSED, FailureKind.CHECK
    message = f"{exp.label} -> {exp.verdict()}"
    if exp.plan_findings:
        # A plan violation is a warning next to the mapping (lint --plan grades it).
        message += "".join(f"\n  plan: {m} ({r})" for r, _, m in exp.plan_findings)
        if status == results.Status.PASSED:
            status = results.Status.WARNING
    if verbose and exp.operations:
        message += "".join("\n  " + json.dumps(op, ensure_ascii=False, sort_keys=True) for op in exp.operations)
    check_id = exp.action or (
        "unreadable" if exp.dropped_by == INPUT else "segment-ingest" if exp.dropped_by == SEGMENT else "no-mapping"
    )
    return results.Check(
        id=check_id,
        route="customerio",
        tier=results.Tier.MAPPING,
        status=status,
        message=message,
        file=exp.file,
        line=exp.line,
        failure=failure,
        details=exp.to_details(),
    )
