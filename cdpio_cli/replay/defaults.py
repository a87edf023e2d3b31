"""The defaults of `cdpio replay`: the one copy `ReplayOptions`, the CLI's
flags and the config's `replay:` section fall back to (flags, then
`replay:` in cdpio.yaml, then these).  Plain constants, so `cdpio --help`
can show them without loading replay."""

DEFAULT_RATE = 50.0  # requests/s
DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_RETRIES = 5
DEFAULT_TIMEOUT = 10.0  # seconds per response
DEFAULT_BATCH_SIZE = 100  # messages per request
DEFAULT_ROUTE = "segment"  # without --route or replay.route
