"""Segment message -> what the Customer.io (Actions) destination does with it.

The one implementation shared by the sandbox (it applies the operations to its
in-memory workspace), `cdpio lint`, `cdpio explain` and replay's customerio
route (which posts the operations to Track v2 `/api/v2/batch`).

Facts: the destination's source, segmentio/action-destinations
`packages/destination-actions/src/destinations/customerio/` (index.ts for the
default subscriptions, utils.ts buildPayload for the Track v2 bodies, each
action's index.ts for its fields).  Where its code and docs disagree, this
follows the code; its own unit tests, transcribed in tests/data/destination/,
are the check (docs/mapping.md).

Default subscriptions (trigger -> action -> Track v2 `type`/`action`):

================================  ====================  ==========================
trigger                           action                Customer.io operation
================================  ====================  ==========================
type = identify                   createUpdatePerson    person / identify
type = track (other events)       trackEvent            person / event
type = page                       trackPageView         person / page (name = properties.url)
type = screen                     trackScreenView       person / screen (name = name)
event = Application Installed,    createUpdateDevice    person / add_device
  Application Opened,
  Device Created or Updated
event = Application Uninstalled,  deleteDevice          person / delete_device
  Device Deleted
event = User Deleted              deletePerson          person / delete
event = User Suppressed           suppressPerson        person / suppress
event = User Unsuppressed         unsuppressPerson      person / unsuppress
type = group                      createUpdateObject    object / identify | identify_anonymous
event = Object Deleted            deleteObject          object / delete
event = Relationship Deleted      deleteRelationship    object / delete_relationships
type = alias                      mergePeople           person / merge
event = Report Delivery Event     reportDeliveryEvent   POST /api/v1/metrics (not v2)
event = Report Content Event      reportContentEvent    person / properties.actionType
================================  ====================  ==========================

A message the destination cannot send (a required mapped field is missing) is
dropped with a `MESSAGE_REJECTED: ...` reason; a message no subscription
matches is dropped with `NO_MATCHING_MAPPING: ...` (Segment's discard reasons).

An operation that breaks one of Customer.io's limits (cdpio_cli/limits.py)
is dropped with `CUSTOMERIO_400: <Customer.io's message>`: the destination
sends it and Customer.io rejects it, which Segment shows as a failed delivery.

The package is pure: no I/O, no starlette; only the standard library,
cdpio_cli.messages, cdpio_cli.limits and the Track host table in
cdpio_cli.routes.endpoints.

Modules: `catalog` (the actions, their default field paths, `Mapping`),
`payload` (identifiers, timestamps, the v2 body), `actions` (one builder per
action, `map_message`), `encoded` (replay's quick path: the common message's
operation encoded straight from its fields, held equal to `map_message` by
tests/test_mapping_encoded.py), `fql` (trigger parsing and matching),
`subscriptions` (a workspace's subscriptions, `map_subscribed`) and
`track_api` (the HTTP requests for a mapped message).  docs/mapping.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdpio_cli.lazy import lazy_attributes
from cdpio_cli.mapping.actions import ACTION_BUILDERS, map_message, run_action
from cdpio_cli.mapping.catalog import (
    ACTIONS,
    CONTENT_ACTIONS,
    DEFAULT_FIELDS,
    DEFAULT_PATHS,
    DELIVERY_METRICS,
    DROP_NO_MAPPING,
    DROP_REJECTED,
    SEMANTIC_EVENTS,
    V1_METRICS,
    V2,
    ActionInfo,
    Fields,
    Mapping,
    fields_from_mapping,
)
from cdpio_cli.mapping.payload import convert_attribute_timestamps, convert_timestamp, is_email, resolve_identifiers
from cdpio_cli.mapping.track_api import ACCOUNT_REGIONS, FORMS, track_requests

if TYPE_CHECKING:
    from cdpio_cli.mapping.fql import TriggerError, check_trigger, condition_matches, parse_trigger, trigger_matches
    from cdpio_cli.mapping.subscriptions import DEFAULT_SUBSCRIPTIONS, Subscription, map_subscribed

# Triggers and subscriptions are imported on first use: replay's route maps
# with the default subscriptions (map_message) and never needs them.
_LAZY = {
    "TriggerError": "fql",
    "check_trigger": "fql",
    "condition_matches": "fql",
    "parse_trigger": "fql",
    "trigger_matches": "fql",
    "DEFAULT_SUBSCRIPTIONS": "subscriptions",
    "Subscription": "subscriptions",
    "map_subscribed": "subscriptions",
}


__getattr__ = lazy_attributes(__name__, globals(), _LAZY)


__all__ = [
    "ACCOUNT_REGIONS",
    "ACTIONS",
    "ACTION_BUILDERS",
    "CONTENT_ACTIONS",
    "DEFAULT_FIELDS",
    "DEFAULT_PATHS",
    "DEFAULT_SUBSCRIPTIONS",
    "DELIVERY_METRICS",
    "DROP_NO_MAPPING",
    "DROP_REJECTED",
    "FORMS",
    "SEMANTIC_EVENTS",
    "V1_METRICS",
    "V2",
    "ActionInfo",
    "Fields",
    "Mapping",
    "Subscription",
    "TriggerError",
    "check_trigger",
    "condition_matches",
    "convert_attribute_timestamps",
    "convert_timestamp",
    "fields_from_mapping",
    "is_email",
    "map_message",
    "map_subscribed",
    "parse_trigger",
    "resolve_identifiers",
    "run_action",
    "track_requests",
    "trigger_matches",
]
