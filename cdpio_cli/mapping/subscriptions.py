"""A workspace's subscriptions: which actions run on a message.

The destination runs every enabled subscription whose trigger (FQL,
cdpio_cli/mapping/fql.py) matches a message; a message can match several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdpio_cli.mapping.actions import ACTION_BUILDERS, map_message, run_action
from cdpio_cli.mapping.catalog import ACTIONS, DROP_NO_MAPPING, SEMANTIC_EVENTS, V1_METRICS, V2, Mapping
from cdpio_cli.mapping.fql import trigger_matches


@dataclass(frozen=True)
class Subscription:
    """A destination subscription: an action and the FQL trigger that selects it."""

    action: str  # the action key, e.g. trackEvent
    trigger: str  # FQL, e.g. 'type = "track" and event = "Signed Up"'
    enabled: bool = True
    name: str | None = None  # as shown in Segment, e.g. "Track Event"

    @property
    def title(self) -> str:
        if self.name:
            return self.name
        return ACTIONS[self.action].title if self.action in ACTIONS else self.action


# The Track Event preset's exclusions, in the preset's own order (index.ts).
_TRACK_EVENT_EXCLUDES = (
    "Application Installed",
    "Application Opened",
    "Application Uninstalled",
    "Device Created or Updated",
    "Device Deleted",
    "Relationship Deleted",
    "User Deleted",
    "User Suppressed",
    "User Unsuppressed",
    "Object Deleted",
    "Report Delivery Event",
    "Report Content Event",
)


def _preset_trigger(action: str) -> str:
    if action == "trackEvent":
        excluded = " and ".join(f'event != "{e}"' for e in _TRACK_EVENT_EXCLUDES)
        return f'type = "track" and {excluded}'
    events = [e for e, a in SEMANTIC_EVENTS.items() if a == action]
    if events:
        return " or ".join(f'event = "{e}"' for e in events)
    return ACTIONS[action].trigger


# The destination's automatic presets ("Quick Setup"), as FQL.
DEFAULT_SUBSCRIPTIONS: tuple[Subscription, ...] = tuple(
    Subscription(name, _preset_trigger(name), True, info.title) for name, info in ACTIONS.items()
)


def map_subscribed(msg: Any, subscriptions: Sequence[Subscription]) -> Mapping:
    """Run the message through every enabled subscription whose trigger matches.

    Several matches send all their operations (action names joined by "+");
    no match is NO_MATCHING_MAPPING naming the subscription that would have
    taken the message by default and why it did not (disabled, or its trigger
    excludes the message)."""
    if not isinstance(msg, dict):
        return Mapping(None, [], f"{DROP_NO_MAPPING}: the message is not a JSON object")
    results = [
        run_action(s.action, msg)
        for s in subscriptions
        if s.enabled and s.action in ACTION_BUILDERS and trigger_matches(s.trigger, msg)
    ]
    if not results:
        return Mapping(None, [], f"{DROP_NO_MAPPING}: {_why_unmatched(msg, subscriptions)}")
    if len(results) == 1:
        return results[0]
    sent = [r for r in results if r.ok]
    if not sent:
        return Mapping("+".join(r.action or "" for r in results), [], "; ".join(r.drop_reason or "" for r in results))
    endpoint = V1_METRICS if all(r.endpoint == V1_METRICS for r in sent) else V2
    # One result can only carry one endpoint: metrics bodies join only metrics bodies.
    sent = [r for r in sent if r.endpoint == endpoint]
    return Mapping("+".join(r.action or "" for r in sent), [op for r in sent for op in r.operations], endpoint=endpoint)


def _message_label(msg: dict) -> str:
    if msg.get("type") == "track" and isinstance(msg.get("event"), str):
        return f"`{msg['event']}`"
    return f"{msg.get('type')!s} messages"


def _why_unmatched(msg: dict, subscriptions: Sequence[Subscription]) -> str:
    default = map_message(msg).action
    mine = [s for s in subscriptions if s.action == default] if default else []
    label = _message_label(msg)
    if not mine:
        return f"no subscription takes {label}" + (
            f" (the default would be {ACTIONS[default].title}, and this destination has no {default} subscription)"
            if default
            else ""
        )
    disabled = [s for s in mine if not s.enabled]
    if disabled and len(disabled) == len(mine):
        return f"your {disabled[0].title} subscription is disabled, so it does not send {label}"
    return f"your {mine[0].title} subscription's trigger excludes {label}"
