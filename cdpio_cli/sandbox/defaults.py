"""The credentials and ids an unconfigured sandbox accepts.

They are not secrets: they only open the local emulator.  Their formats match
the real services' so format checks pass against the sandbox.
"""

WRITE_KEY = "cdpioSandboxWriteKey0000000000001"  # Segment write key (alphanumeric)
SITE_ID = "c0ffee0000000000000a"  # Customer.io site id (20 hex)
TRACK_API_KEY = "c0ffee0000000000000b"  # Customer.io Track API key (20 hex)
APP_API_KEY = "c0ffee0000000000000000000000000c"  # Customer.io App API key (32 hex)
PIPELINES_API_KEY = "pk_us_cdpioSandboxPipelines0001"  # Customer.io Pipelines key (US workspace)
PIPELINES_API_KEY_EU = "pk_eu_cdpioSandboxPipelines0001"  # the same for an EU workspace
PUBLIC_API_TOKEN = "sgp_cdpioSandboxPublicApiToken0001"  # Segment Public API token

WORKSPACE_ID = 101  # Customer.io environment_id
WORKSPACE_NAME = "cdpio sandbox"
SEGMENT_WORKSPACE = {"id": "ws_cdpio_sandbox", "slug": "cdpio-sandbox", "name": "cdpio sandbox"}
SEGMENT_SOURCE_ID = "src_cdpio_sandbox"
SEGMENT_DESTINATION_ID = "dst_cdpio_customerio"
CUSTOMERIO_DESTINATION_NAME = "Customer.io (Actions)"

HOST = "127.0.0.1"
PORT = 8975  # `cdpio sandbox` default; --port 0 picks a free one


def pipelines_api_key(region: str) -> str:
    """The default Pipelines key for a workspace in `region` (the key's prefix
    names its region, and cdpio warns when it does not match)."""
    return PIPELINES_API_KEY_EU if region == "eu" else PIPELINES_API_KEY


def is_default(field: str, value: str | None) -> bool:
    """Is `value` the sandbox's own default for this SandboxOptions field?"""
    if field == "pipelines_api_key":
        return value in (PIPELINES_API_KEY, PIPELINES_API_KEY_EU)
    return value == globals().get(field.upper())
