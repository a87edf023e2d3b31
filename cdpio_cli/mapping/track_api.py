"""The HTTP requests the destination sends for one mapped message (Track v2
entity or batch, or the v1 metrics endpoint)."""

from __future__ import annotations

from cdpio_cli.mapping.catalog import V1_METRICS, Mapping

# The destination's "Account Region" setting values (utils.ts AccountRegion);
# anything but EU posts to the US Track host, as trackApiEndpoint does.
ACCOUNT_REGIONS = {"US \U0001f1fa\U0001f1f8": "us", "EU \U0001f1ea\U0001f1fa": "eu"}
FORMS = ("entity", "batch")


def track_requests(result: Mapping, form: str = "entity", region: str = "us") -> list[tuple[str, dict]]:
    """The (url, JSON body) requests the destination sends for one mapped message.

    `entity` is the per-message `perform` (`POST /api/v2/entity`, one body);
    `batch` is `performBatch` (`POST /api/v2/batch` with `{"batch": [...]}`).
    reportDeliveryEvent has no batch form: always one `POST /api/v1/metrics`.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, not {form!r}")
    if not result.ok:
        return []
    from cdpio_cli.routes.endpoints import real_endpoint

    base = real_endpoint("track", region)
    if result.endpoint == V1_METRICS:
        return [(base + V1_METRICS, op) for op in result.operations]
    if form == "batch":
        return [(base + "/api/v2/batch", {"batch": list(result.operations)})]
    return [(base + "/api/v2/entity", op) for op in result.operations]
