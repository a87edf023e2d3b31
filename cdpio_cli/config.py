"""cdpio.yaml: discovery, `${VAR}` interpolation, validation, and provenance.

Errors name the file and line: we walk the YAML node tree ourselves (not
`yaml.safe_load`) so every value keeps the line it came from, env vars are
interpolated where they appear, and alias bombs are stopped early.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cdpio_cli.errors import ConfigError
from cdpio_cli.messages import MESSAGE_TYPES

CONFIG_ENV = "CDPIO_CONFIG"
DEFAULT_NAMES = ("cdpio.yaml", ".cdpio.yaml")
MAX_NODES = 100_000  # a real config has a few dozen; more means an alias bomb
MAX_DEPTH = 50
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_endpoint(value: str | None) -> str | None:
    """An endpoint override is a base URL: http(s)://host[:port][/prefix]."""
    if value is None or not value.strip():
        return None  # an empty override (e.g. ${ENDPOINT:-}) means "not set"
    from urllib.parse import urlsplit

    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not a base URL; write it like https://api.segment.io")
    return value.strip().rstrip("/")


class SegmentConfig(_Strict):
    write_key: str | None = None
    region: Literal["us", "eu"] = "us"
    public_api_token: str | None = None
    endpoint: str | None = None  # Tracking API base, e.g. https://api.segment.io
    cdn_endpoint: str | None = None  # settings lookup base
    public_api_endpoint: str | None = None  # Public API base

    _endpoints = field_validator("endpoint", "cdn_endpoint", "public_api_endpoint")(lambda cls, v: _check_endpoint(v))


class CustomerioConfig(_Strict):
    site_id: str | None = None
    track_api_key: str | None = None
    app_api_key: str | None = None
    pipelines_api_key: str | None = None
    region: Literal["auto", "us", "eu"] = "auto"
    track_endpoint: str | None = None
    app_endpoint: str | None = None
    pipelines_endpoint: str | None = None
    # The destination's subscriptions ({action, trigger, enabled, name}),
    # checked by explain.subscriptions_from_config; docs/mapping.md.
    subscriptions: list[dict[str, Any]] | None = None

    _endpoints = field_validator("track_endpoint", "app_endpoint", "pipelines_endpoint")(
        lambda cls, v: _check_endpoint(v)
    )


class ExpectConfig(_Strict):
    """`send_test.expect`: segments the test person must be in and campaigns that
    must message them (names or ids; docs/campaigns.md)."""

    segments: list[int | str] = Field(default_factory=list)
    campaigns: list[int | str] = Field(default_factory=list)


class SendTestConfig(_Strict):
    user_id: str = "cdpio-test-{run_id}"
    traits: dict[str, Any] = Field(
        default_factory=lambda: {"email": "cdpio+{run_id}@example.com", "plan_type": "Pro", "is_trial": True}
    )
    events: list[dict[str, Any]] | None = None
    expect_status: list[int] = Field(default_factory=lambda: [200])
    routes: list[Literal["segment", "customerio", "pipelines"]] | None = None
    expect: ExpectConfig | None = None

    @field_validator("events")
    @classmethod
    def _events_have_types(cls, events):
        if events is None:
            return events
        for i, event in enumerate(events):
            mtype = event.get("type")
            if mtype not in MESSAGE_TYPES:
                raise ValueError(f"event {i + 1} has type {mtype!r}; expected one of {', '.join(MESSAGE_TYPES)}")
            if mtype == "track" and not event.get("event"):
                raise ValueError(f"event {i + 1} is a track without an `event` name")
        return events


class VerifyConfig(_Strict):
    timeout: float = 90.0
    poll_interval: float = 3.0

    _dur = field_validator("timeout", "poll_interval", mode="before")(lambda cls, v: parse_duration(v))


class ReplayConfig(_Strict):
    rate: float = Field(50.0, ge=0)  # requests/s; 0: no limit
    concurrency: int = Field(4, ge=1, le=64)
    batch_size: int = Field(100, ge=1, le=2500)
    max_retries: int = Field(5, ge=0, le=20)
    timeout: float = 10.0
    route: Literal["segment", "customerio", "pipelines"] = "segment"

    _dur = field_validator("timeout", mode="before")(lambda cls, v: parse_duration(v))


class LintConfig(_Strict):
    disable: list[str] = Field(default_factory=list)
    severity: dict[str, Literal["error", "warning", "info", "off"]] = Field(default_factory=dict)
    plan: str | None = None  # a tracking plan file (docs/tracking-plans.md), relative to this file


class SandboxConfig(_Strict):
    """`sandbox: true` runs every command against the embedded sandbox;
    `sandbox: {url: http://127.0.0.1:8787}` against a running one."""

    enabled: bool = False
    url: str | None = None
    region: Literal["us", "eu"] = "us"
    # App API activity `data` for events in the embedded sandbox (see docs/contracts.md).
    activity_data: Literal["none", "properties"] = "none"
    # A workspace file (segments, campaigns) the embedded sandbox serves; relative
    # to this config file (docs/campaigns.md).
    workspace: str | None = None

    _url = field_validator("url")(lambda cls, v: _check_endpoint(v))


class Config(_Strict):
    version: Literal[1] = 1
    segment: SegmentConfig = Field(default_factory=SegmentConfig)
    customerio: CustomerioConfig = Field(default_factory=CustomerioConfig)
    send_test: SendTestConfig = Field(default_factory=SendTestConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    lint: LintConfig = Field(default_factory=LintConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)

    @field_validator("sandbox", mode="before")
    @classmethod
    def _sandbox_shorthand(cls, value):
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, dict) and value.get("url") and "enabled" not in value:
            return {**value, "enabled": True}
        return value


# Credential fields, by dotted path (the ones we clean, mask and redact).
SECRET_FIELDS = (
    "segment.write_key",
    "segment.public_api_token",
    "customerio.site_id",
    "customerio.track_api_key",
    "customerio.app_api_key",
    "customerio.pipelines_api_key",
)


@dataclass
class LoadedConfig:
    """A validated config plus where each value came from."""

    config: Config
    path: Path | None
    lines: dict[tuple, int] = field(default_factory=dict)  # key path -> line
    env_vars: dict[tuple, str] = field(default_factory=dict)  # key path -> env var read
    # key path -> required variables left unset in fields the command does not read
    unset: dict[tuple, list] = field(default_factory=dict)

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

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


@dataclass
class Problem:
    """One thing wrong in a config file, with the line to fix."""

    message: str
    line: int | None = None
    hint: str | None = None

    def to_dict(self) -> dict:
        return {"line": self.line, "message": self.message, "hint": self.hint}


@dataclass
class UnsetVar:
    """A required `${VAR}` that is unset (or empty) where the config reads it."""

    name: str
    line: int
    empty: bool = False

    def problem(self) -> Problem:
        if self.empty:
            # CI systems turn a missing secret into an empty string: a required
            # value that is empty must fail loudly, not skip every check.
            return Problem(
                f"environment variable {self.name} is empty",
                self.line,
                f"set {self.name} (is the CI secret defined?), or write ${{{self.name}:-}} to make it optional",
            )
        return Problem(
            f"environment variable {self.name} is not set",
            self.line,
            f"export {self.name}=..., or write ${{{self.name}:-}} to make it optional",
        )


def interpolate(text: str, *, file: str, line: int, env=None) -> tuple[str, list[str], list[UnsetVar]]:
    """Replace `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`.

    Returns (value, variables read, required variables that are unset or
    empty).  The caller decides whether an unset one matters: falling back
    silently would send real-looking traffic with an empty key, but a command
    that never reads the value need not care.
    """
    env = os.environ if env is None else env
    used: list[str] = []
    unset: list[UnsetVar] = []

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        used.append(name)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            unset.append(UnsetVar(name, line))
            return ""
        if default is None and not value.strip():
            unset.append(UnsetVar(name, line, empty=True))
            return ""
        return value

    if "${" in _VAR.sub("", text.replace("$$", "")):
        raise ConfigError(
            f"unterminated or malformed ${{...}} in {text[:60]!r}",
            hint="write ${NAME} or ${NAME:-default}; $$ is a literal $",
            file=file,
            line=line,
        )
    return _VAR.sub(repl, text), used, unset


class _Builder:
    """Turns a composed YAML node tree into plain data, keeping line numbers."""

    def __init__(self, file: str, env=None):
        self.file = file
        self.env = env
        self.nodes = 0
        self.lines: dict[tuple, int] = {}
        self.env_vars: dict[tuple, str] = {}
        self.unset: dict[tuple, list[UnsetVar]] = {}  # key path -> required vars not set
        self.problems: list[Problem] = []  # everything else wrong, reported together
        self.unreadable: list[tuple] = []  # key paths of scalars that could not be read (already a problem)
        self._loader = None

    def build(self, node, path: tuple = (), depth: int = 0):
        import yaml

        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise ConfigError(
                "the YAML is too large or too deeply nested for a config (an alias bomb?)",
                file=self.file,
                line=node.start_mark.line + 1,
            )
        line = node.start_mark.line + 1
        self.lines[path] = line
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise ConfigError(
                        "YAML merge keys (<<) are not supported in cdpio.yaml",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                    )
                key = self.build(key_node, path + ("<key>",), depth + 1)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise ConfigError(
                        "a mapping key must be a plain word", file=self.file, line=key_node.start_mark.line + 1
                    )
                if key in out:
                    self.problems.append(
                        Problem(f"key {key!r} appears twice", key_node.start_mark.line + 1, "keep one of them")
                    )
                    continue
                out[key] = self.build(value_node, path + (str(key),), depth + 1)
                self.lines[path + (str(key),)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        # Scalar: PyYAML resolves its type (int, bool, null...); strings are interpolated.
        value = self._scalar(node, path)
        if isinstance(value, str) and "$" in value:
            try:
                value, used, unset = interpolate(value, file=self.file, line=line, env=self.env)
            except ConfigError as exc:
                self.problems.append(Problem(exc.message, line, exc.hint))
                return None
            if used:
                self.env_vars[path] = used[0]
            if unset:
                self.unset[path] = unset
        return value

    def _scalar(self, node, path: tuple = ()):
        import yaml

        if self._loader is None:
            self._loader = yaml.SafeLoader("")
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.problems.append(Problem(f"invalid value: {exc.problem}", node.start_mark.line + 1))
            self.unreadable.append(path)
            return None
        except ValueError:
            # Python refuses to convert an integer of more than
            # sys.int_info.str_digits_check_threshold (default 4,300) digits.
            self.problems.append(
                Problem(
                    f"a number of {len(str(node.value)):,} characters is too long to read",
                    node.start_mark.line + 1,
                    "quote it to make it a string, or use a shorter number",
                )
            )
            self.unreadable.append(path)
            return None


def load_config(path: Path, env=None, *, uses: tuple[str, ...] | None = None) -> LoadedConfig:
    """Read, interpolate and validate a config file.  Errors name file and line.

    `uses` names the sections (or dotted fields) the caller reads, None for
    all of them.  A required `${VAR}` that is unset in a field the caller does
    not read is no error: the field keeps its default and is listed in
    `LoadedConfig.unset` (so `lint` runs without the CI's secrets).  Every
    other problem is collected and raised together in one ConfigError.
    """
    import yaml

    display = str(path)
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
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("the file is not valid UTF-8", file=display, line=line, hint="save it as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ConfigError(
            f"the YAML is nested too deeply for a config (over {MAX_DEPTH} levels)", file=display, line=1
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_syntax_error(exc, text, display) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=display) from None
    if node is None:
        raise ConfigError("the config file is empty", file=display, hint="start from `cdpio init`")
    builder = _Builder(display, env=env)
    data = builder.build(node)
    if not isinstance(data, dict):
        raise ConfigError(
            "the config must be a mapping of sections (segment:, customerio:, ...)",
            file=display,
            line=1,
            hint="start from `cdpio init`",
        )
    problems = list(builder.problems)
    tolerated: dict[tuple, list[UnsetVar]] = {}
    for key_path, unset in builder.unset.items():
        if _is_used(key_path, uses):
            problems.extend(var.problem() for var in unset)
        else:
            tolerated[key_path] = unset
            _drop(data, key_path)  # the schema default applies, as if the line were absent
    config = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        # A scalar that could not be read is already a problem: no second
        # "must be a number" for the same line.
        reported = {builder.lines.get(key_path) for key_path in builder.unreadable}
        problems.extend(p for p in _schema_problems(exc, builder.lines, builder.env_vars) if p.line not in reported)
    if problems:
        raise config_error(display, problems)
    return LoadedConfig(config=config, path=path, lines=builder.lines, env_vars=builder.env_vars, unset=tolerated)


def _is_used(key_path: tuple, uses: tuple[str, ...] | None) -> bool:
    if uses is None:
        return True
    dotted = ".".join(str(p) for p in key_path)
    return any(dotted == u or dotted.startswith(u + ".") for u in uses)


def _drop(data: dict, key_path: tuple) -> None:
    parent: Any = data
    for part in key_path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(parent, dict):
        parent.pop(key_path[-1], None)


def config_error(file: str, problems: list[Problem]) -> ConfigError:
    """One ConfigError carrying every problem, in file order.

    One problem reads `file:line: message (hint)`; several read
    `file: N problems: line 3: ...; line 7: ...` on one line, so a CI log and a
    GitHub annotation still show all of them.  `.problems` keeps them apart
    for the `--json` error document.
    """
    problems = sorted(problems, key=lambda p: p.line or 0)
    if len(problems) == 1:
        only = problems[0]
        error = ConfigError(only.message, file=file, line=only.line, hint=only.hint)
    else:
        parts = [
            (f"line {p.line}: " if p.line else "") + p.message + (f" ({p.hint})" if p.hint else "") for p in problems
        ]
        error = ConfigError(f"{len(problems)} problems: " + "; ".join(parts), file=file)
    error.problems = problems
    return error


def _yaml_syntax_error(exc, text: str, file: str) -> ConfigError:
    """The line where the parser found the problem, plus where the broken
    construct started when that differs (an unclosed quote ends at the end of
    the file, but the quote to close is on the line it started)."""
    problem_mark, context_mark = exc.problem_mark, exc.context_mark
    problem = (exc.problem or "invalid YAML").strip()
    line = problem_mark.line + 1 if problem_mark else None
    context = (exc.context or "").strip()
    if context_mark and line and context_mark.line + 1 != line:
        if "end of stream" in problem:
            line = context_mark.line + 1  # ran off the end: the construct's start is the line to fix
        else:
            context = f"{context} started on line {context_mark.line + 1}"
    message = f"invalid YAML: {context}: {problem}" if context else f"invalid YAML: {problem}"
    lines = text.splitlines()
    suspects = [lines[m.line] for m in (problem_mark, context_mark) if m and m.line < len(lines)]
    if any("${" in s for s in suspects):
        # `{` is YAML flow syntax and `: ` starts a mapping: an unquoted
        # ${VAR:-default} breaks inside {...} or [...] and when the default has ": ".
        hint = 'quote values that contain ${...}, e.g. timeout: "${VERIFY_TIMEOUT:-90s}"'
    else:
        hint = "check the indentation and quoting on that line"
    return ConfigError(message, file=file, line=line, hint=hint)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: Any = Config
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        annotation = fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if model is None:
            return None
    return model


def _schema_problems(exc: ValidationError, lines: dict[tuple, int], env_vars: dict[tuple, str]) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(str(p) if not isinstance(p, int) else p for p in err["loc"])
        line = None
        for n in range(len(loc), -1, -1):  # nearest known line
            line = lines.get(loc[:n])
            if line:
                break
        var = env_vars.get(loc)
        if var is not None and isinstance(err.get("input"), str):
            # A value from the environment may be a secret: name the variable, not the value.
            err = {**err, "input": _FromEnv(var)}
        out.append(_one_schema_problem(loc, line, err))
    return out


class _FromEnv(str):
    """Stands for a value read from an environment variable in error text."""

    def __new__(cls, var: str):
        return super().__new__(cls, var)


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value lines)",
    "list_type": "a list",
    "model_type": "a mapping (key: value lines)",
}


def _yaml_kind(value: Any) -> str:
    """How a YAML user would name a value's type."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, _FromEnv):
        return f"the value of {value}"
    if isinstance(value, str):
        return f"the text {value[:30]!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _one_schema_problem(loc: tuple, line, err: dict) -> Problem:
    dotted = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = (
            f"did you mean {'.'.join([*map(str, loc[:-1]), close[0]])!r}?"
            if close
            else (f"known keys here: {', '.join(known)}" if known else None)
        )
        return Problem(f"unknown key {dotted!r}", line, hint)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "literal_error":
        msg = msg.replace("Input should be", "must be")
    elif err["type"] in (
        "string_type",
        "int_type",
        "int_parsing",
        "float_type",
        "float_parsing",
        "bool_type",
        "bool_parsing",
        "dict_type",
        "list_type",
        "model_type",
    ):
        msg = f"must be {_EXPECTED.get(err['type'], 'something else')} (got {_yaml_kind(err.get('input'))})"
    else:
        msg = msg.replace("Input should be", "must be")
    return Problem(f"{dotted}: {msg}", line, "see docs/configuration.md")


def loaded_defaults() -> LoadedConfig:
    """The config used when no file exists (the embedded sandbox)."""
    return LoadedConfig(config=Config(), path=None)


def get_dotted(config: Config, dotted: str) -> Any:
    obj: Any = config
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def set_dotted(config: Config, dotted: str, value: Any) -> None:
    section, name = dotted.split(".")
    setattr(getattr(config, section), name, value)
