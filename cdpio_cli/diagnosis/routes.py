"""The route names diagnosis knows, in one place.

The rules ask "is this question about the Segment route?" and so on; every
such test goes through here.  When the route registry (cdpio_cli/routes/)
can say which routes exist and which service each one goes through, these
names are read from it instead.
"""

from __future__ import annotations

SEGMENT = "segment"  # Segment's Tracking API, then the Customer.io (Actions) destination
TRACK = "customerio"  # Customer.io's Track API, direct
PIPELINES = "pipelines"  # Customer.io's Pipelines API
ROUTES = (SEGMENT, TRACK, PIPELINES)
ANY_ROUTE = "doctor"  # doctor asks about every route at once


def asks_about(route: str, name: str) -> bool:
    """Is a question asked on `route` about the route `name` (doctor's is about every route)?"""
    return route in (name, ANY_ROUTE)
