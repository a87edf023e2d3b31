"""cdpio.yaml: discovery, `${VAR}` interpolation, validation, and provenance.

Errors name the file and line: we walk the YAML node tree ourselves (not
`yaml.safe_load`) so every value keeps the line it came from, env vars are
interpolated where they appear, and alias bombs are stopped early.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from cdpio_cli.config_schema import After, Before, KeyPath, Range, check
from cdpio_cli.errors import ConfigError
from cdpio_cli.messages import MESSAGE_TYPES
from cdpio_cli.replay import defaults as replay_defaults
from cdpio_cli.routes import registry

# Reading a file (config_yaml: interpolation, YAML nodes, problem text) is
# imported by load_config: a run without a config file never needs it.
if TYPE_CHECKING:
    from cdpio_cli.config_yaml import UnsetVar
    from cdpio_cli.yaml_nodes import Node

CONFIG_ENV = "CDPIO_CONFIG"
DEFAULT_NAMES = ("cdpio.yaml", ".cdpio.yaml")
MAX_BYTES = 1024 * 1024  # a config is a page of YAML; PyYAML is slow on megabytes

# ---------------------------------------------------------------------------
# Durations: "90s", "3s", "10m", "500ms", "1h", or a number of seconds.
# ---------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from `90s`, `10m`, `500ms`, `1h` or a bare number."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 10m or 500ms")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT[m.group(2)]
    raise ValueError(f"{value!r} is not a duration; write it like 90s, 10m or 500ms")


def _check_endpoint(value: str | None) -> str | None:
    """An endpoint override is a base URL: http(s)://host[:port][/prefix]."""
    if value is None or not value.strip():
        return None  # an empty override (e.g. ${ENDPOINT:-}) means "not set"
    from urllib.parse import urlsplit

    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not a base URL; write it like https://api.segment.io")
    return value.strip().rstrip("/")


def _known_route(value: Any) -> Any:
    """A route name the registry knows (routes/registry.py)."""
    names = registry.route_names()
    if value not in names:
        quoted = tuple(repr(name) for name in names)
        raise ValueError(f"must be {registry.names_text(quoted)}")
    return value


# The schema is the annotations (config_schema.py): Before/After/Range add conversions and checks.
RouteName = Annotated[str, Before(_known_route)]
Endpoint = Annotated[str | None, After(_check_endpoint)]
Duration = Annotated[float, Before(parse_duration)]


# eq=False, repr=False: nothing compares or prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).
@dataclass(eq=False, repr=False)
class SegmentConfig:
    """The `segment:` section: the write key, region, token and endpoints."""

    write_key: str | None = None
    region: Literal["us", "eu"] = "us"
    public_api_token: str | None = None
    endpoint: Endpoint = None  # Tracking API base, e.g. https://api.segment.io
    cdn_endpoint: Endpoint = None  # settings lookup base
    public_api_endpoint: Endpoint = None  # Public API base


@dataclass(eq=False, repr=False)
class CustomerioConfig:
    """The `customerio:` section: workspace credentials, region and endpoints."""

    site_id: str | None = None
    track_api_key: str | None = None
    app_api_key: str | None = None
    pipelines_api_key: str | None = None
    region: Literal["auto", "us", "eu"] = "auto"
    track_endpoint: Endpoint = None
    app_endpoint: Endpoint = None
    pipelines_endpoint: Endpoint = None
    # The destination's subscriptions ({action, trigger, enabled, name}),
    # checked by explain.subscriptions_from_config; docs/mapping.md.
    subscriptions: list[dict[str, Any]] | None = None


@dataclass(eq=False, repr=False)
class ExpectConfig:
    """`send_test.expect`: segments the test person must be in and campaigns that
    must message them (names or ids; docs/campaigns.md)."""

    segments: list[int | str] = field(default_factory=list)
    campaigns: list[int | str] = field(default_factory=list)


def _events_have_types(events: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if events is None:
        return events
    for i, event in enumerate(events):
        mtype = event.get("type")
        if mtype not in MESSAGE_TYPES:
            raise ValueError(f"event {i + 1} has type {mtype!r}; expected one of {', '.join(MESSAGE_TYPES)}")
        if mtype == "track" and not event.get("event"):
            raise ValueError(f"event {i + 1} is a track without an `event` name")
    return events


def _default_traits() -> dict[str, Any]:
    return {"email": "cdpio+{run_id}@example.com", "plan_type": "Pro", "is_trial": True}


@dataclass(eq=False, repr=False)
class SendTestConfig:
    """The `send_test:` section: the test person, events and the statuses expected."""

    user_id: str = "cdpio-test-{run_id}"
    traits: dict[str, Any] = field(default_factory=_default_traits)
    events: Annotated[list[dict[str, Any]] | None, After(_events_have_types)] = None
    expect_status: list[int] = field(default_factory=lambda: [200])
    routes: list[RouteName] | None = None
    expect: ExpectConfig | None = None


@dataclass(eq=False, repr=False)
class VerifyConfig:
    """The `verify:` section: how long and how often delivery is polled."""

    timeout: Duration = 90.0
    poll_interval: Duration = 3.0


@dataclass(eq=False, repr=False)
class ReplayConfig:
    """The `replay:` section: replay's rate, concurrency, batches, retries and route."""

    # The defaults are replay's own (cdpio_cli/replay/defaults.py): one copy.
    rate: Annotated[float, Range(ge=0)] = replay_defaults.DEFAULT_RATE  # requests/s; 0: no limit
    concurrency: Annotated[int, Range(ge=1, le=64)] = replay_defaults.DEFAULT_CONCURRENCY
    batch_size: Annotated[int, Range(ge=1, le=2500)] = replay_defaults.DEFAULT_BATCH_SIZE
    max_retries: Annotated[int, Range(ge=0, le=20)] = replay_defaults.DEFAULT_MAX_RETRIES
    timeout: Duration = replay_defaults.DEFAULT_TIMEOUT
    route: RouteName = replay_defaults.DEFAULT_ROUTE


@dataclass(eq=False, repr=False)
class LintConfig:
    """The `lint:` section: rules disabled or re-graded and the tracking plan."""

    disable: list[str] = field(default_factory=list)
    severity: dict[str, Literal["error", "warning", "info", "off"]] = field(default_factory=dict)
    plan: str | None = None  # a tracking plan file (docs/tracking-plans.md), relative to this file


@dataclass(eq=False, repr=False)
class SandboxConfig:
    """`sandbox: true` runs every command against the embedded sandbox;
    `sandbox: {url: http://127.0.0.1:8787}` against a running one."""

    enabled: bool = False
    url: Endpoint = None
    region: Literal["us", "eu"] = "us"
    # App API activity `data` for events in the embedded sandbox (see docs/contracts.md).
    activity_data: Literal["none", "properties"] = "none"
    # A workspace file (segments, campaigns) the embedded sandbox serves; relative
    # to this config file (docs/campaigns.md).
    workspace: str | None = None


def _sandbox_shorthand(value: object) -> object:
    if isinstance(value, bool):
        return {"enabled": value}
    if isinstance(value, dict) and value.get("url") and "enabled" not in value:
        return {**value, "enabled": True}
    return value


@dataclass(eq=False, repr=False)
class Config:
    """A whole cdpio.yaml, each section a dataclass that config_schema reads as the schema."""

    version: Literal[1] = 1
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    customerio: CustomerioConfig = field(default_factory=CustomerioConfig)
    send_test: SendTestConfig = field(default_factory=SendTestConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    lint: LintConfig = field(default_factory=LintConfig)
    sandbox: Annotated[SandboxConfig, Before(_sandbox_shorthand)] = field(default_factory=SandboxConfig)


def secret_fields() -> tuple[str, ...]:
    """Credential fields, by dotted path (the ones we clean, mask and redact):
    every registered route's."""
    return tuple(cred.field for cred in registry.credentials() if cred.secret)


def config_model() -> type[Config]:
    """Config plus the sections registered routes add (RouteSpec.config_section: a dataclass)."""
    own = {f.name for f in dataclasses.fields(Config)}
    extra = tuple((name, section) for name, section in registry.config_sections().items() if name not in own)
    return _extended(extra) if extra else Config


@functools.cache
def _extended(sections: tuple[tuple[str, type], ...]) -> type[Config]:
    fields = [(name, section, field(default_factory=section)) for name, section in sections]
    extended: type[Config] = dataclasses.make_dataclass(
        "Config", fields, bases=(Config,), namespace={"__doc__": Config.__doc__}, eq=False, repr=False
    )
    return extended


@dataclass(eq=False, repr=False)
class LoadedConfig:
    """A validated config plus where each value came from."""

    config: Config
    path: Path | None
    lines: dict[KeyPath, int] = field(default_factory=dict)  # key path -> line
    env_vars: dict[KeyPath, str] = field(default_factory=dict)  # key path -> env var read
    # key path -> required variables left unset in fields the command does not read
    unset: dict[KeyPath, list[UnsetVar]] = field(default_factory=dict)

    def source(self, dotted: str) -> str:
        """`env SEGMENT_WRITE_KEY (cdpio.yaml:3)` or `cdpio.yaml:3` or `default`."""
        key = tuple(dotted.split("."))
        line = self.lines.get(key)
        where = f"{self.path.name}:{line}" if self.path and line else None
        var = self.env_vars.get(key)
        if var:
            return f"env {var}" + (f" ({where})" if where else "")
        return where or "default"

    def line_of(self, dotted: str) -> int | None:
        return self.lines.get(tuple(dotted.split(".")))


# ---------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------


def find_config_path(explicit: str | None = None, cwd: Path | None = None) -> Path | None:
    """--config, then $CDPIO_CONFIG, then ./cdpio.yaml, ./.cdpio.yaml; None if none."""
    if explicit:
        return _check_path(Path(explicit), "--config")
    env = os.environ.get(CONFIG_ENV)
    if env:
        return _check_path(Path(env), f"${CONFIG_ENV}")
    base = cwd or Path.cwd()
    for name in DEFAULT_NAMES:
        candidate = base / name
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            raise ConfigError(f"{candidate} is a directory, not a config file", hint="move it, or pass --config PATH")
    return None


def _check_path(path: Path, origin: str) -> Path:
    if path.is_dir():
        raise ConfigError(
            f"{path} is a directory, not a config file", hint=f"{origin} must name a YAML file such as cdpio.yaml"
        )
    if not path.exists():
        raise ConfigError(f"config file {path} (from {origin}) does not exist", hint="create one with `cdpio init`")
    if not path.is_file():  # a FIFO or device would block or never end
        raise ConfigError(f"{path} is not a regular file", hint=f"{origin} must name a YAML file such as cdpio.yaml")
    return path


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_config(
    path: Path, env: Mapping[str, str] | None = None, *, uses: tuple[str, ...] | None = None
) -> LoadedConfig:
    """Read, interpolate and validate a config file.  Errors name file and line.

    `uses` names the sections (or dotted fields) the caller reads, None for
    all of them.  A required `${VAR}` that is unset in a field the caller does
    not read is no error: the field keeps its default and is listed in
    `LoadedConfig.unset` (so `lint` runs without the CI's secrets).  Every
    other problem is collected and raised together in one ConfigError.
    """
    from cdpio_cli.config_yaml import NodeBuilder, config_error, schema_problems

    display = str(path)
    node = _compose(_read_text(path, display), display)
    if node is None:
        raise ConfigError("the config file is empty", file=display, hint="start from `cdpio init`")
    builder = NodeBuilder(display, env=env)
    data = builder.build(node)
    if not isinstance(data, dict):
        raise ConfigError(
            "the config must be a mapping of sections (segment:, customerio:, ...)",
            file=display,
            line=1,
            hint="start from `cdpio init`",
        )
    problems = list(builder.problems)
    tolerated: dict[KeyPath, list[UnsetVar]] = {}
    for key_path, unset in builder.unset.items():
        if _is_used(key_path, uses):
            problems.extend(var.problem() for var in unset)
        else:
            tolerated[key_path] = unset
            _drop(data, key_path)  # the schema default applies, as if the line were absent
    model = config_model()
    config, errors = check(model, data)
    if errors:
        # A scalar that could not be read is already a problem: no second
        # "must be a number" for the same line.
        reported = {builder.lines.get(key_path) for key_path in builder.unreadable}
        problems.extend(
            p for p in schema_problems(errors, model, builder.lines, builder.env_vars) if p.line not in reported
        )
    if problems or config is None:  # no config without a problem saying why
        raise config_error(display, problems)
    return LoadedConfig(config=config, path=path, lines=builder.lines, env_vars=builder.env_vars, unset=tolerated)


def _read_text(path: Path, display: str) -> str:
    """The file as text: bounded in size, not binary, UTF-8."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(
                f"the file is {path.stat().st_size:,} bytes; a cdpio config is at most {MAX_BYTES:,}",
                file=display,
                hint="pass a cdpio.yaml, not a data file",
            )
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{display} is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError(f"cannot read {display}: permission denied", hint="check the file's permissions") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {display}: {exc.strerror}") from None
    if b"\x00" in raw[:8192]:
        raise ConfigError(f"{display} is a binary file, not YAML", hint="pass a cdpio.yaml")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("the file is not valid UTF-8", file=display, line=line, hint="save it as UTF-8") from None


def _compose(text: str, display: str) -> Node | None:
    """The YAML node tree (None for an empty document)."""
    import yaml

    from cdpio_cli.config_yaml import MAX_DEPTH, yaml_syntax_error

    try:
        root: Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
        return root
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ConfigError(
            f"the YAML is nested too deeply for a config (over {MAX_DEPTH} levels)", file=display, line=1
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise yaml_syntax_error(exc, text, display) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=display) from None


def _is_used(key_path: KeyPath, uses: tuple[str, ...] | None) -> bool:
    if uses is None:
        return True
    dotted = ".".join(str(p) for p in key_path)
    return any(dotted == u or dotted.startswith(u + ".") for u in uses)


def _drop(data: dict[object, object], key_path: KeyPath) -> None:
    parent: Any = data  # nested dicts and lists read from the YAML
    for part in key_path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(parent, dict):
        parent.pop(key_path[-1], None)


def loaded_defaults() -> LoadedConfig:
    """The config used when no file exists (the embedded sandbox)."""
    return LoadedConfig(config=config_model()(), path=None)


def get_dotted(config: Config, dotted: str) -> Any:
    obj: Any = config
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
