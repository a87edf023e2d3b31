"""Replay's view of the route registry (cdpio_cli/routes/registry.py): which
sender a run sends through, built from the settings, and the capabilities
replay reads from it.  Replay itself never looks at a route's name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdpio_cli.replay.defaults import DEFAULT_ROUTE
from cdpio_cli.routes import registry
from cdpio_cli.routes.registry import Sender as Route

if TYPE_CHECKING:
    from cdpio_cli.settings import Settings


__all__ = ["DEFAULT_ROUTE", "Route", "accepts_email_only", "is_passthrough", "route_from_settings"]


def is_passthrough(route: Route) -> bool:
    """Does the route send each message as encoded (Segment-shaped), unmapped?"""
    return bool(getattr(route, "passthrough", False))


def accepts_email_only(route: Route) -> bool:
    """Is an identify with only traits.email (no userId/anonymousId) valid on this route?"""
    name = getattr(route, "name", "")
    return name in registry.route_names() and registry.get(name).capabilities.email_only_identity


def route_from_settings(settings: Settings, name: str, batch_size: int, *, dry_run: bool) -> Route:
    """The route `name` with the credentials and endpoint from the settings.
    A dry run sends nothing: it needs no credentials or endpoint."""
    spec = registry.get(name)
    credentials = settings.credential_values()
    if dry_run:
        credentials = {c.field: credentials.get(c.field) or "dry-run" for c in spec.credentials}
        return registry.build_sender(name, "http://127.0.0.1", credentials, batch_size=batch_size)
    return registry.build_sender(name, settings.endpoint(spec.service), credentials, batch_size=batch_size)
