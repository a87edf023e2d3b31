"""The routes whose own failure modes diagnosis has rules for, in one place.

The rules ask "is this question about the Segment route?" and so on; every
such test goes through here.  Which routes exist is the route registry's
business (cdpio_cli/routes/registry.py): a route registered there without
rules of its own here gets the causes that hold for any route.
"""

from __future__ import annotations

SEGMENT = "segment"  # Segment's Tracking API, then the Customer.io (Actions) destination
TRACK = "customerio"  # Customer.io's Track API, direct
PIPELINES = "pipelines"  # Customer.io's Pipelines API
ANY_ROUTE = "doctor"  # doctor asks about every route at once


def asks_about(route: str, name: str) -> bool:
    """Is a question asked on `route` about the route `name` (doctor's is about every route)?"""
    return route in (name, ANY_ROUTE)
