"""The destination's actions: their default triggers, Customer.io operations and
field paths, and `Mapping`, what one action makes of one message.

Facts: segmentio/action-destinations
`packages/destination-actions/src/destinations/customerio/` (index.ts for the
default subscriptions, each action's index.ts for its fields); the table is in
the package docstring (cdpio_cli/mapping/__init__.py) and docs/mapping.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdpio_cli.limits import Violation

V2 = "v2"  # POST {track}/api/v2/entity or /api/v2/batch
V1_METRICS = "/api/v1/metrics"  # reportDeliveryEvent only

DROP_NO_MAPPING = "NO_MATCHING_MAPPING"
DROP_REJECTED = "MESSAGE_REJECTED"


@dataclass(frozen=True)
class ActionInfo:
    """One Customer.io destination action: its default trigger and operation."""

    name: str
    trigger: str  # the default subscription, as Segment writes it
    operation: str  # Customer.io `type / action`
    title: str


_DEVICE_EVENTS = ("Application Installed", "Application Opened", "Device Created or Updated")
_DEVICE_DELETE_EVENTS = ("Application Uninstalled", "Device Deleted")

ACTIONS: dict[str, ActionInfo] = {
    a.name: a
    for a in (
        ActionInfo("createUpdatePerson", 'type = "identify"', "person / identify", "Create or Update Person"),
        ActionInfo(
            "trackEvent", 'type = "track" and event not in the semantic events below', "person / event", "Track Event"
        ),
        ActionInfo("trackPageView", 'type = "page"', "person / page", "Track Page View"),
        ActionInfo("trackScreenView", 'type = "screen"', "person / screen", "Track Screen View"),
        ActionInfo(
            "createUpdateDevice",
            'event = "Application Installed" or "Application Opened" or "Device Created or Updated"',
            "person / add_device",
            "Create or Update Device",
        ),
        ActionInfo(
            "deleteDevice",
            'event = "Application Uninstalled" or "Device Deleted"',
            "person / delete_device",
            "Delete Device",
        ),
        ActionInfo("deletePerson", 'event = "User Deleted"', "person / delete", "Delete Person"),
        ActionInfo("suppressPerson", 'event = "User Suppressed"', "person / suppress", "Suppress Person"),
        ActionInfo("unsuppressPerson", 'event = "User Unsuppressed"', "person / unsuppress", "Unsuppress Person"),
        ActionInfo(
            "createUpdateObject", 'type = "group"', "object / identify (identify_anonymous)", "Create or Update Object"
        ),
        ActionInfo("deleteObject", 'event = "Object Deleted"', "object / delete", "Delete Object"),
        ActionInfo(
            "deleteRelationship",
            'event = "Relationship Deleted"',
            "object / delete_relationships",
            "Delete Relationship",
        ),
        ActionInfo("mergePeople", 'type = "alias"', "person / merge", "Merge People"),
        ActionInfo(
            "reportDeliveryEvent", 'event = "Report Delivery Event"', "POST /api/v1/metrics", "Report Delivery Event"
        ),
        ActionInfo(
            "reportContentEvent",
            'event = "Report Content Event"',
            "person / viewed_content | clicked_content",
            "Report Content Event",
        ),
    )
}

# Track events that a semantic subscription takes instead of trackEvent.
SEMANTIC_EVENTS: dict[str, str] = {
    **{e: "createUpdateDevice" for e in _DEVICE_EVENTS},
    **{e: "deleteDevice" for e in _DEVICE_DELETE_EVENTS},
    "User Deleted": "deletePerson",
    "User Suppressed": "suppressPerson",
    "User Unsuppressed": "unsuppressPerson",
    "Object Deleted": "deleteObject",
    "Relationship Deleted": "deleteRelationship",
    "Report Delivery Event": "reportDeliveryEvent",
    "Report Content Event": "reportContentEvent",
}

DELIVERY_METRICS = ("delivered", "opened", "clicked", "converted", "spammed", "bounced", "dropped", "deferred")
CONTENT_ACTIONS = ("viewed_content", "clicked_content")


# Not frozen: one is built per message on the hot path of lint, explain and the
# sandbox, and a frozen dataclass's __init__ costs about twice as much.  Treat it
# as immutable all the same.
@dataclass(slots=True)
class Mapping:
    """What the destination does with one message.

    `operations` are Customer.io Track API bodies exactly as the destination
    builds them (v2 entity bodies, or one /api/v1/metrics body when
    `endpoint` is V1_METRICS).  `drop_reason` is set when nothing is sent.
    """

    action: str | None
    operations: list[dict] = field(default_factory=list)
    drop_reason: str | None = None
    endpoint: str = V2
    # Every Customer.io limit the operations break (the first is the drop reason).
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.drop_reason is None

    @property
    def trigger(self) -> str | None:
        info = ACTIONS.get(self.action or "")
        return info.trigger if info else None


def rejected(action: str, why: str) -> Mapping:
    return Mapping(action, [], f"{DROP_REJECTED}: {action} requires {why}")


# --- field mappings --------------------------------------------------------

# Each action's plain `@path` defaults, from the action definitions
# (segmentio/action-destinations, packages/destination-actions/src/
# destinations/customerio/<action>/index.ts, `fields.*.default`).  Fields
# whose default is an `@if`/`@template` chain are described in docs/mapping.md.
DEFAULT_PATHS: dict[str, dict[str, str]] = {
    "createUpdatePerson": {
        "anonymous_id": "$.anonymousId",
        "group_id": "$.traits.objectId",
        "custom_attributes": "$.traits",
        "relationship_attributes": "$.traits.relationshipAttributes",
        "timestamp": "$.timestamp",
    },
    "trackEvent": {
        "id": "$.userId",
        "anonymous_id": "$.anonymousId",
        "name": "$.event",
        "event_id": "$.messageId",
        "timestamp": "$.timestamp",
        "data": "$.properties",
    },
    "trackPageView": {
        "id": "$.userId",
        "anonymous_id": "$.anonymousId",
        "event_id": "$.messageId",
        "url": "$.properties.url",
        "timestamp": "$.timestamp",
        "data": "$.properties",
    },
    "trackScreenView": {
        "id": "$.userId",
        "anonymous_id": "$.anonymousId",
        "event_id": "$.messageId",
        "name": "$.name",
        "timestamp": "$.timestamp",
        "data": "$.properties",
    },
    "createUpdateDevice": {
        "person_id": "$.userId",
        "device_id": "$.context.device.token",
        "app_version": "$.context.app.version",
        "platform": "$.context.device.type",
        "last_used": "$.timestamp",
        "attributes": "$.properties",
    },
    "deleteDevice": {"person_id": "$.userId", "device_id": "$.context.device.token"},
    "deletePerson": {"person_id": "$.userId"},
    "suppressPerson": {"person_id": "$.userId"},
    "unsuppressPerson": {"person_id": "$.userId"},
    "createUpdateObject": {
        "id": "$.groupId",
        "custom_attributes": "$.traits.objectAttributes",
        "relationship_attributes": "$.traits.relationshipAttributes",
        "user_id": "$.userId",
        "anonymous_id": "$.anonymousId",
    },
    "deleteObject": {"object_id": "$.properties.objectId"},
    "deleteRelationship": {
        "person_id": "$.userId",
        "anonymous_id": "$.anonymousId",
        "object_id": "$.properties.objectId",
    },
    "mergePeople": {"primary": "$.userId", "secondary": "$.previousId"},
    "reportDeliveryEvent": {
        "delivery_id": "$.properties.deliveryId",
        "metric": "$.properties.metric",
        "recipient": "$.properties.recipient",
        "reason": "$.properties.reason",
        "href": "$.properties.href",
        "action_name": "$.properties.actionName",
        "action_value": "$.properties.actionValue",
        "timestamp": "$.timestamp",
    },
    "reportContentEvent": {
        "anonymous_id": "$.anonymousId",
        "actionType": "$.properties.actionType",
        "timestamp": "$.timestamp",
        "data": "$.properties",
    },
}

# Actions with a "Convert Timestamps" field (on by default); the others never convert.
_CONVERTING = frozenset(
    {
        "createUpdatePerson",
        "trackEvent",
        "trackPageView",
        "trackScreenView",
        "createUpdateDevice",
        "createUpdateObject",
        "reportContentEvent",
    }
)


@dataclass(frozen=True)
class Fields:
    """Departures from an action's default field mapping: "Convert Timestamps"
    off, or fields left unmapped (older subscriptions lack newer fields)."""

    convert_timestamp: bool = True
    unmapped: frozenset[str] = frozenset()

    def get(self, name: str, value: Any) -> Any:
        return None if name in self.unmapped else value


DEFAULT_FIELDS = Fields()


def fields_from_mapping(action: str, mapping: dict | None = None, unmapped: list[str] | tuple[str, ...] = ()) -> Fields:
    """A Segment-style field mapping (`{"convert_timestamp": false}`,
    `{"data": {"@path": "$.properties"}}`) -> Fields.

    Only the departures cdpio reproduces are accepted; anything else raises
    ValueError naming the field, rather than silently mapping by default.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    paths = DEFAULT_PATHS.get(action, {})
    convert = True
    for name, value in (mapping or {}).items():
        if name == "convert_timestamp" and isinstance(value, bool) and action in _CONVERTING:
            convert = value
        elif isinstance(value, dict) and value.get("@path") == paths.get(name) and len(value) == 1:
            pass  # the default itself
        else:
            raise ValueError(
                f"{action}: field mapping {name}={value!r} is not supported "
                "(only convert_timestamp and the default @path of each field)"
            )
    for name in unmapped:
        if name not in paths:
            raise ValueError(f"{action}: cannot unmap {name!r} (fields: {', '.join(paths)})")
    return Fields(convert, frozenset(unmapped))
