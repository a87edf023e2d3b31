"""The route registry: every route declared once, in its own module.

A route is a way a test message reaches Customer.io (Segment's Tracking API,
the Track API, the Pipelines API).  Its `RouteSpec` says what it is called,
which credentials it needs and where they live in cdpio.yaml, which endpoint
service it sends to, how to build its batch sender (replay) and how send-test
sends one message through it.  Config validation, settings, check-keys,
send-test, doctor, replay and the sandbox banner read the registry; adding a
route is the steps in docs/adding-a-route.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cdpio_cli.errors import UsageError

if TYPE_CHECKING:
    from cdpio_cli.credentials import FormatHint
    from cdpio_cli.routes.segment import BatchVerdict, Prepared
    from cdpio_cli.transport import Attempt, Deadline, Outcome, RequestSpec, RetryPolicy
    from cdpio_cli.transport.client import Client


# eq=False, repr=False: nothing compares or prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).
@dataclass(frozen=True, eq=False, repr=False)
class CredentialSpec:
    """One credential a route needs, and where it is configured."""

    field: str  # dotted config field, e.g. "segment.write_key"
    label: str  # "Segment write key"
    env: str  # the environment variable the docs suggest, e.g. SEGMENT_WRITE_KEY
    secret: bool = True  # cleaned, masked and redacted like a key
    # The SandboxOptions field the embedded sandbox accepts it as (its default
    # fills the credential when the config has none); None: no sandbox default.
    sandbox_option: str | None = None
    # What the value should look like: a surprising format is a warning, never a rejection.
    check_format: Callable[[str], FormatHint] | None = None

    @property
    def section(self) -> str:
        return self.field.split(".", 1)[0]


@dataclass(frozen=True, eq=False, repr=False)
class Capabilities:
    """What a route's service does, which replay and the checks adapt to."""

    batching: bool = True  # replay may put several messages in one request
    strict_mode: bool = False  # the service validates on request (Pipelines' X-Strict-Mode)
    per_operation_results: bool = False  # a batch answer names the items that failed (Track's 207)
    email_only_identity: bool = False  # an identify with only traits.email is valid (Pipelines)
    # Messages pass Customer.io (Actions) destination subscriptions on their way (Segment).
    destination_subscriptions: bool = False


class Sender(Protocol):
    """What replay sends through: batches of prepared items (routes/segment.py)."""

    name: str
    max_item_bytes: int
    max_batch_bytes: int
    max_batch_items: int
    envelope_bytes: int
    batch_size: int

    @property
    def secrets(self) -> tuple[str, ...]: ...

    def prepare(self, msg: dict, encoded: bytes | None = None) -> Prepared: ...

    def lane_limits(self, lane: str) -> int: ...

    def build_request(self, items: list[bytes], *, lane: str = ..., sent_at: str | None = None) -> RequestSpec: ...

    # `build_request` of the ordinary lane's items already joined with b"," (as replay spools them).
    def build_joined(self, joined: bytes, *, sent_at: str | None = None) -> RequestSpec: ...

    def interpret(self, attempt: Attempt, n_items: int) -> BatchVerdict: ...


@dataclass(frozen=True, eq=False, repr=False)
class SendOne:
    """One send-test message on its way: where, with what, how patiently."""

    client: Client
    base_url: str
    credentials: Mapping[str, str]  # dotted field -> cleaned value, every credential of the route present
    policy: RetryPolicy
    deadline: Deadline | None = None


@dataclass(frozen=True, eq=False, repr=False)
class SendTestText:
    """What send-test and doctor say about this route's answers: the likely
    cause and the fix when the service rejects the credentials, and how much an
    accepted send proves."""

    accepted: str  # "{status} accepted by the Track API"
    rejected_fix: str  # hint on a 401/403
    # (diagnosis fact id, sentence with {status}) learned when a send is rejected; None: no fact.
    rejected_cause: tuple[str, str] | None = None
    nothing_arrived: str | None = None  # head of a failed delivery check (None: "<title> accepted ... but none ...")
    unverified_caveat: str = ""  # appended when delivery is not verified
    verified: str | None = None  # an accepted check's message once delivery is proven ({status})


@dataclass(frozen=True, eq=False, repr=False)
class RouteSpec:
    """One route, declared once: its credentials, endpoints, senders and wording."""

    name: str
    title: str  # "Segment Tracking API"
    credentials: tuple[CredentialSpec, ...]  # needed to send
    service: str  # endpoints.py service name the route sends to
    build: Callable[[str, Mapping[str, str], int, bool], Sender]  # base_url, credentials, batch_size, strict
    send_one: Callable[[SendOne, dict[str, Any]], Outcome]
    send_test: SendTestText
    capabilities: Capabilities = Capabilities()
    # Credentials of the same service that check-keys checks but sending does not need.
    related_credentials: tuple[CredentialSpec, ...] = ()
    # check-keys check that must pass before send-test sends (its failure is reported once).
    precheck: tuple[str, str] | None = None  # (check id, the service as the skip message names it)
    # A cdpio.yaml section this route adds (the built-in routes use segment: and customerio:):
    # its name and a dataclass whose annotated fields are its schema (config_schema.py).
    config_section: tuple[str, type] | None = None

    def missing(self, credentials: Mapping[str, str | None]) -> list[CredentialSpec]:
        return [c for c in self.credentials if not credentials.get(c.field)]

    def needs(self) -> str:
        """`customerio.site_id + track_api_key`: what the route needs, shortly."""
        parts = []
        for i, cred in enumerate(self.credentials):
            same_section = i > 0 and cred.section == self.credentials[i - 1].section
            parts.append(cred.field.split(".", 1)[1] if same_section else cred.field)
        return " + ".join(parts)


# The built-in routes, in display order.  Every module of this package that is
# not plumbing registers its RouteSpec when imported, and the first read of the
# registry imports them all: a new route module needs no line here.
BUILTIN = ("segment", "customerio", "pipelines")
_NOT_ROUTES = frozenset({"registry", "endpoints"})

_ROUTES: dict[str, RouteSpec] = {}
_ROUTE_MODULES_LOADED = False


def _load_route_modules() -> None:
    global _ROUTE_MODULES_LOADED
    if _ROUTE_MODULES_LOADED:
        return
    _ROUTE_MODULES_LOADED = True
    package = importlib.import_module("cdpio_cli.routes")
    found = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name not in _NOT_ROUTES)
    for module in (*BUILTIN, *(m for m in found if m not in BUILTIN)):
        importlib.import_module(f"cdpio_cli.routes.{module}")


def register(spec: RouteSpec) -> RouteSpec:
    """Add a route (the built-ins register themselves; a plugin or test may add more)."""
    if spec.name in _ROUTES and _ROUTES[spec.name] is not spec:
        raise ValueError(f"route {spec.name!r} is already registered")
    _ROUTES[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a route added with `register` (tests)."""
    _ROUTES.pop(name, None)


def specs() -> list[RouteSpec]:
    """Every route: the built-ins in BUILTIN order, then the others as registered."""
    _load_route_modules()
    rank = {name: i for i, name in enumerate(BUILTIN)}
    return sorted(_ROUTES.values(), key=lambda spec: rank.get(spec.name, len(BUILTIN)))


def route_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in specs())


def names_text(names: tuple[str, ...] | None = None) -> str:
    """`segment, customerio or pipelines`."""
    names = route_names() if names is None else names
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def get(name: str) -> RouteSpec:
    _load_route_modules()
    spec = _ROUTES.get(name)
    if spec is None:
        raise UsageError(f"unknown route {name!r}", hint=f"use {names_text()}")
    return spec


def credentials() -> list[CredentialSpec]:
    """Every credential of every route, each once, in route order."""
    seen: dict[str, CredentialSpec] = {}
    for spec in specs():
        for cred in (*spec.credentials, *spec.related_credentials):
            seen.setdefault(cred.field, cred)
    return list(seen.values())


def credential(field_name: str) -> CredentialSpec | None:
    return next((c for c in credentials() if c.field == field_name), None)


def route_of(field_name: str) -> str:
    """The first route that names this credential (check-keys groups by it)."""
    for spec in specs():
        if any(c.field == field_name for c in (*spec.credentials, *spec.related_credentials)):
            return spec.name
    return field_name.split(".", 1)[0]


def config_sections() -> dict[str, type]:
    return {spec.config_section[0]: spec.config_section[1] for spec in specs() if spec.config_section}


def _needs_message(spec: RouteSpec) -> str:
    labels = [c.label for c in spec.credentials]
    if len(labels) == 2 and labels[0].split()[0] == labels[1].split()[0]:
        # "a Customer.io site id and Track API key"
        second = labels[1].split(" ", 1)[1]
        return f"the {spec.name} route needs a {labels[0]} and {second}"
    return f"the {spec.name} route needs a {' and a '.join(labels)}"


def build_sender(
    name: str, base_url: str, credentials: Mapping[str, str | None], *, batch_size: int = 100, strict: bool = False
) -> Sender:
    """The sender replay uses for route `name`; a UsageError names the missing
    credential and the config field to set."""
    spec = get(name)
    if spec.missing(credentials):
        fields = " and ".join(c.field for c in spec.credentials)
        raise UsageError(_needs_message(spec), hint=f"set {fields} in cdpio.yaml (or use --sandbox)")
    cleaned = {c.field: str(credentials[c.field]) for c in spec.credentials}
    return spec.build(base_url, cleaned, batch_size, strict)
