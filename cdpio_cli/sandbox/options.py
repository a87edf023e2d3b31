"""How a sandbox is configured: credentials, region, faults, recording."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, replace
from typing import Any

from cdpio_cli import limits
from cdpio_cli.sandbox import defaults

# An hour: longer than any client waits, so more only hangs the client.
MAX_LATENCY = 3600.0
ACTIVITY_DATA = ("none", "properties")


def private_public_api_token() -> str:
    """A Segment Public API token for one embedded sandbox and its client: the
    sandbox shows credentials it was given only to a token that is not its
    printed default."""
    return "sgp_" + secrets.token_hex(16)


class OptionError(ValueError):
    """An invalid option; `field` is the SandboxOptions field (the CLI names its flag)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


@dataclass
class SandboxOptions:
    host: str = defaults.HOST
    port: int = 0  # 0: pick a free port
    write_key: str = defaults.WRITE_KEY
    site_id: str = defaults.SITE_ID
    track_api_key: str = defaults.TRACK_API_KEY
    app_api_key: str = defaults.APP_API_KEY
    pipelines_api_key: str = defaults.PIPELINES_API_KEY
    public_api_token: str = defaults.PUBLIC_API_TOKEN
    region: str = "us"  # the Customer.io workspace's region: "us" | "eu"
    # The Segment workspace's region; Segment and Customer.io regions are
    # independent (None: the same as `region`).
    segment_region: str | None = None
    # Is "Customer.io (Actions)" connected to the Segment source?  False
    # simulates the most common silent failure: Segment accepts, nothing arrives.
    segment_destination_enabled: bool = True
    # The site id the Customer.io destination is configured with (None: this
    # workspace's).  Another value points the destination at another
    # workspace: Segment accepts, and nothing arrives in this one.
    segment_destination_site_id: str | None = None
    # Faults (service routes only, never /_sandbox/*).
    fail_rate: float = 0.0  # share of requests answered with fail_status
    fail_status: int = 500
    throttle: float | None = None  # requests/s above which the answer is 429
    # The throttle's bucket capacity in requests (None: one second's worth).
    # A small one proves a client never bursts above the rate.
    throttle_burst: float | None = None
    latency: float = 0.0  # seconds added before answering
    drop_connections: float = 0.0  # share of connections closed after processing
    record: str | None = None  # NDJSON file of accepted messages
    seed: int | None = None  # makes fault injection deterministic
    # Memory bounds: the detailed per-message delivery log and request log keep
    # the newest entries; counts are always exact.
    max_deliveries: int = 100_000
    max_requests: int = 10_000
    # Accepted requests wait (as raw bodies) in a queue and are mapped into the
    # workspace when the server is idle, when something reads the workspace,
    # or at once when the queue holds more than this many bytes.
    max_pending_bytes: int = 256 * 1024 * 1024
    # What App API activities carry in `data` for event/page/screen: "none"
    # (documented behaviour: nothing) or "properties" (the event's properties,
    # which the published schema does not promise).
    activity_data: str = "none"
    # Segments and campaigns the App API serves (a workspace file,
    # docs/campaigns.md), and its rate limit in requests/s (0: none).
    workspace: str | None = None
    app_api_rate: float = float(limits.APP_API_RATE)
    # The Customer.io (Actions) destination's subscriptions (mapping.Subscription)
    # that Segment routes run, as the config's customerio.subscriptions lists
    # them (None: the destination's defaults); docs/mapping.md.
    subscriptions: tuple | None = None

    def __post_init__(self) -> None:
        if self.region not in ("us", "eu"):
            raise OptionError("region", f"must be 'us' or 'eu', not {self.region!r}")
        if self.segment_region not in (None, "us", "eu"):
            raise OptionError("segment_region", f"must be 'us' or 'eu', not {self.segment_region!r}")
        if self.activity_data not in ACTIVITY_DATA:
            raise OptionError("activity_data", f"must be one of {', '.join(ACTIVITY_DATA)}, not {self.activity_data!r}")
        # Comparisons are written so NaN fails them too (every comparison with NaN is false).
        if not 0.0 <= self.fail_rate <= 1.0:
            raise OptionError("fail_rate", f"must be between 0 and 1, not {self.fail_rate!r}")
        if not 0.0 <= self.drop_connections <= 1.0:
            raise OptionError("drop_connections", f"must be between 0 and 1, not {self.drop_connections!r}")
        if self.throttle is not None and not 0 < self.throttle < math.inf:
            raise OptionError(
                "throttle",
                "must be a positive number of requests per second, "
                f"not {self.throttle!r} (finite; leave it out for no limit)",
            )
        if self.throttle_burst is not None and not 1 <= self.throttle_burst < math.inf:
            raise OptionError(
                "throttle_burst", f"must be a number of requests of at least 1, not {self.throttle_burst!r}"
            )
        if not 0 <= self.latency <= MAX_LATENCY:
            raise OptionError(
                "latency", f"must not be negative: a number of seconds from 0 to {MAX_LATENCY:g}, not {self.latency!r}"
            )
        if not 100 <= int(self.fail_status) <= 599:
            raise OptionError("fail_status", "must be an HTTP status code (100..599)")
        # The default Pipelines key follows the workspace's region (its prefix
        # names the region); a key someone chose is kept as it is.
        if defaults.is_default("pipelines_api_key", self.pipelines_api_key):
            self.pipelines_api_key = defaults.pipelines_api_key(self.region)

    def region_of(self, service: str) -> str:
        """The region a service's workspace lives in (segment* vs Customer.io)."""
        if service.startswith("segment"):
            return self.segment_region or self.region
        return self.region

    def with_(self, **changes: Any) -> SandboxOptions:
        return replace(self, **changes)

    def credentials(self) -> dict[str, str]:
        """What the sandbox accepts, for printing (they open only the local emulator)."""
        return {
            "segment write key": self.write_key,
            "segment public api token": self.public_api_token,
            "customer.io site id": self.site_id,
            "customer.io track api key": self.track_api_key,
            "customer.io app api key": self.app_api_key,
            "customer.io pipelines api key": self.pipelines_api_key,
        }
