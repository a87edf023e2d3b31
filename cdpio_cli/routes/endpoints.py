"""Service base URLs by region, for the real services and for the sandbox.

A base URL never includes the API version: callers append `/v1/batch`,
`/api/v1/accounts/region`, and so on.  The hosts and their public sources are
in docs/contracts.md.
"""

from __future__ import annotations

REGIONS = ("us", "eu")

REAL_ENDPOINTS: dict[str, dict[str, str]] = {
    "segment": {"us": "https://api.segment.io", "eu": "https://events.eu1.segmentapis.com"},
    # Unofficial settings lookup used by analytics.js; one global host.
    "segment_cdn": {"us": "https://cdn.segment.com", "eu": "https://cdn.segment.com"},
    "segment_api": {"us": "https://api.segmentapis.com", "eu": "https://eu1.api.segmentapis.com"},
    "track": {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"},
    "app": {"us": "https://api.customer.io", "eu": "https://api-eu.customer.io"},
    "pipelines": {"us": "https://cdp.customer.io", "eu": "https://cdp-eu.customer.io"},
}

# The sandbox serves every service on one host under path prefixes; the EU
# variant of each service has its own prefix so region mistakes behave as in
# the real world (Track redirects EU accounts, the App API answers 401).
SANDBOX_PREFIXES: dict[str, dict[str, str]] = {
    "segment": {"us": "/segment", "eu": "/segment-eu"},
    "segment_cdn": {"us": "/segment-cdn", "eu": "/segment-cdn"},
    "segment_api": {"us": "/segment-api", "eu": "/segment-api-eu"},
    "track": {"us": "/track", "eu": "/track-eu"},
    "app": {"us": "/app", "eu": "/app-eu"},
    "pipelines": {"us": "/pipelines", "eu": "/pipelines-eu"},
}


def add_service(name: str, real: dict[str, str], sandbox: dict[str, str]) -> None:
    """Declare a service a route sends to: its real base URL and its sandbox
    path prefix per region (a route module calls this next to its RouteSpec)."""
    for table, urls in ((REAL_ENDPOINTS, real), (SANDBOX_PREFIXES, sandbox)):
        if set(urls) != set(REGIONS):
            raise ValueError(f"service {name!r} needs a URL for each of {', '.join(REGIONS)}")
        if table.get(name, urls) != urls:
            raise ValueError(f"service {name!r} is already declared with other URLs")
    REAL_ENDPOINTS[name] = dict(real)
    SANDBOX_PREFIXES[name] = dict(sandbox)


def real_endpoint(service: str, region: str = "us") -> str:
    return REAL_ENDPOINTS[service][region if region in REGIONS else "us"]


def sandbox_endpoint(base_url: str, service: str, region: str = "us") -> str:
    return base_url.rstrip("/") + SANDBOX_PREFIXES[service][region if region in REGIONS else "us"]


def pipelines_key_region(key: str) -> str | None:
    """`pk_eu_...`/`sk_us_...` keys carry their region (docs/contracts.md, "Pipelines")."""
    if len(key) > 6 and key[:3] in ("pk_", "sk_") and key[3:5] in REGIONS and key[5] == "_":
        return key[3:5]
    return None
