"""Everything replay knows about particular routes, in one place: how to build
each route's sender from the settings, the endpoint service it talks to, and
the capabilities replay reads from a sender (`ROUTE_NAMES`, `make_route`,
`route_from_settings`, `accepts_email_only`).  The rest of the package only
uses the `Route` interface below and never looks at a route's name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from cdpio_cli.errors import UsageError
from cdpio_cli.replay.options import DEFAULT_BATCH_SIZE

if TYPE_CHECKING:
    from cdpio_cli.routes.segment import BatchVerdict, Prepared
    from cdpio_cli.settings import Settings
    from cdpio_cli.transport import Attempt, RequestSpec

ROUTE_NAMES = ("segment", "pipelines", "customerio")
DEFAULT_ROUTE = "segment"  # without --route or replay.route
ROUTE_NAMES_HINT = "use segment, pipelines or customerio"
# The endpoint service (settings.endpoint) each route sends to.
_SERVICES = {"segment": "segment", "pipelines": "pipelines", "customerio": "track"}
# Routes whose API identifies a person by traits.email alone, so an identify
# with only an email is valid there (docs/contracts.md).
_EMAIL_ONLY_ROUTES = frozenset({"pipelines"})


class Route(Protocol):
    """What replay needs of a route's sender (cdpio_cli/routes/)."""

    name: str
    envelope_bytes: int
    max_batch_bytes: int

    def prepare(self, msg: dict[str, Any], encoded: bytes | None = None) -> Prepared: ...

    def lane_limits(self, lane: str) -> int: ...

    def build_request(self, items: list[bytes], *, lane: str = ...) -> RequestSpec: ...

    def interpret(self, attempt: Attempt, n_items: int) -> BatchVerdict: ...


def is_passthrough(route: Route) -> bool:
    """Does the route send each message as encoded (Segment-shaped), unmapped?"""
    return bool(getattr(route, "passthrough", False))


def accepts_email_only(route: Route) -> bool:
    """Is an identify with only traits.email (no userId/anonymousId) valid on this route?"""
    declared = getattr(route, "accepts_email_only", None)
    if declared is not None:
        return bool(declared)
    return getattr(route, "name", "") in _EMAIL_ONLY_ROUTES


def make_route(
    name: str,
    base_url: str,
    *,
    write_key: str | None = None,
    site_id: str | None = None,
    track_api_key: str | None = None,
    pipelines_api_key: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    strict: bool = False,
) -> Route:
    """Build the route object replay sends through."""
    if name == "segment":
        from cdpio_cli.routes.segment import SegmentRoute

        if not write_key:
            raise UsageError(
                "the segment route needs a Segment write key",
                hint="set segment.write_key in cdpio.yaml (or use --sandbox)",
            )
        return SegmentRoute(base_url, write_key, batch_size=batch_size)
    if name == "pipelines":
        from cdpio_cli.routes.pipelines import PipelinesRoute

        if not pipelines_api_key:
            raise UsageError(
                "the pipelines route needs a Customer.io Pipelines API key",
                hint="set customerio.pipelines_api_key in cdpio.yaml (or use --sandbox)",
            )
        return PipelinesRoute(base_url, pipelines_api_key, batch_size=batch_size, strict=strict)
    if name == "customerio":
        from cdpio_cli.routes.customerio import CustomerioRoute

        if not site_id or not track_api_key:
            raise UsageError(
                "the customerio route needs a Customer.io site id and Track API key",
                hint="set customerio.site_id and customerio.track_api_key in cdpio.yaml (or use --sandbox)",
            )
        return CustomerioRoute(base_url, site_id, track_api_key, batch_size=batch_size)
    raise UsageError(f"unknown route {name!r}", hint=ROUTE_NAMES_HINT)


def route_from_settings(settings: Settings, name: str, batch_size: int, *, dry_run: bool) -> Route:
    """The route `name` with the credentials and endpoint from the settings.
    A dry run sends nothing: it needs no credentials or endpoint."""
    creds = {
        "write_key": settings.segment.write_key,
        "site_id": settings.customerio.site_id,
        "track_api_key": settings.customerio.track_api_key,
        "pipelines_api_key": settings.customerio.pipelines_api_key,
    }
    if dry_run:
        creds = {k: v or "dry-run" for k, v in creds.items()}
        return make_route(name, "http://127.0.0.1", batch_size=batch_size, **creds)
    return make_route(name, settings.endpoint(_SERVICES[name]), batch_size=batch_size, **creds)
