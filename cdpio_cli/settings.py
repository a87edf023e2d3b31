"""Settings: the one object commands are built on (twine-style).

It joins the config file (or its absence), the global flags, cleaned
credentials with their provenance, the embedded sandbox when one is used, and
the endpoint of every service for the right region.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cdpio_cli import credentials as creds
from cdpio_cli.config import (
    Config,
    LoadedConfig,
    find_config_path,
    get_dotted,
    load_config,
    loaded_defaults,
    secret_fields,
)
from cdpio_cli.errors import UsageError
from cdpio_cli.results import Report, new_run_id
from cdpio_cli.routes import registry
from cdpio_cli.routes.endpoints import pipelines_key_region, real_endpoint, sandbox_endpoint

if TYPE_CHECKING:
    from cdpio_cli.sandbox.options import SandboxOptions


def _sandbox_fields() -> dict[str, str]:
    """Config field -> SandboxOptions field, for starting an embedded sandbox
    that accepts the configured credentials (RouteSpec credentials)."""
    return {cred.field: cred.sandbox_option for cred in registry.credentials() if cred.sandbox_option}


# Config endpoint override per service.
_OVERRIDES = {
    "segment": ("segment", "endpoint"),
    "segment_cdn": ("segment", "cdn_endpoint"),
    "segment_api": ("segment", "public_api_endpoint"),
    "track": ("customerio", "track_endpoint"),
    "app": ("customerio", "app_endpoint"),
    "pipelines": ("customerio", "pipelines_endpoint"),
}


# eq=False, repr=False: nothing compares or prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).
@dataclass(eq=False, repr=False)
class Credential:
    """One configured credential after cleaning.  `value` is the cleaned secret."""

    field: str
    value: str | None
    source: str
    fixes: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    line: int | None = None

    @property
    def label(self) -> str:
        spec = registry.credential(self.field)
        return spec.label if spec else self.field

    @property
    def configured(self) -> bool:
        return bool(self.value)

    @property
    def masked(self) -> str:
        return creds.mask(self.value)


@dataclass(frozen=True, eq=False, repr=False)
class SegmentCredentials:
    """settings.segment: the cleaned Segment credentials (None: not configured)."""

    write_key: str | None
    public_api_token: str | None


@dataclass(frozen=True, eq=False, repr=False)
class CustomerioCredentials:
    """settings.customerio: the cleaned Customer.io credentials (None: not configured)."""

    site_id: str | None
    track_api_key: str | None
    app_api_key: str | None
    pipelines_api_key: str | None


@dataclass(eq=False, repr=False)
class Settings:
    """The config joined with flags and credentials: where a command sends and with what."""

    loaded: LoadedConfig
    credentials: dict[str, Credential]
    sandbox_url: str | None = None  # base URL of the sandbox in use, if any
    embedded: object = None  # the EmbeddedSandbox we started, if any
    run_id: str = field(default_factory=new_run_id)
    notes: list[str] = field(default_factory=list)
    detected_region: str | None = None  # Customer.io region learned from the Track API
    sandbox_region: str | None = None  # Customer.io region a running sandbox reported
    sandbox_segment_region: str | None = None  # its Segment region (used when no config says)

    @property
    def config(self) -> Config:
        return self.loaded.config

    @property
    def config_path(self) -> Path | None:
        return self.loaded.path

    @property
    def using_sandbox(self) -> bool:
        return self.sandbox_url is not None

    @property
    def sandbox_target(self) -> str | None:
        """`the embedded sandbox` / `the sandbox at URL`, or None for real services."""
        if not self.using_sandbox:
            return None
        return "the embedded sandbox" if self.embedded is not None else f"the sandbox at {self.sandbox_url}"

    def stamp(self, report: Report) -> None:
        """Mark a command's report with this run's facts: the notes, and the
        sandbox it used (every renderer then says so)."""
        report.notes[:0] = self.notes
        report.sandbox = self.sandbox_target

    def value(self, dotted: str) -> str | None:
        """The cleaned value of a credential field (None: not configured)."""
        cred = self.credentials.get(dotted)
        return cred.value if cred else None

    def credential_values(self) -> dict[str, str | None]:
        """Every credential field -> its cleaned value (what RouteSpecs read)."""
        return {dotted: cred.value for dotted, cred in self.credentials.items()}

    @property
    def segment(self) -> SegmentCredentials:
        return SegmentCredentials(self.value("segment.write_key"), self.value("segment.public_api_token"))

    @property
    def customerio(self) -> CustomerioCredentials:
        return CustomerioCredentials(
            self.value("customerio.site_id"),
            self.value("customerio.track_api_key"),
            self.value("customerio.app_api_key"),
            self.value("customerio.pipelines_api_key"),
        )

    def customerio_region(self) -> str:
        """The Customer.io region to use now: detected, configured, or guessed.

        Once the Track API has said where the workspace is, every later request
        of the run goes there, even when customerio.region says otherwise (that
        mismatch is reported as its own failed check)."""
        if self.detected_region:
            return self.detected_region
        configured = self.config.customerio.region
        if configured != "auto":
            return configured
        key = self.credentials["customerio.pipelines_api_key"].value
        key_region = pipelines_key_region(key) if key else None
        if key_region:
            return key_region
        if self.using_sandbox and self.sandbox_region:
            return self.sandbox_region
        if self.using_sandbox and self.embedded is not None:
            return self.config.sandbox.region
        return "us"

    def region_for(self, service: str) -> str:
        if service.startswith("segment"):
            return self.sandbox_segment_region or self.config.segment.region
        return self.customerio_region()

    def endpoint(self, service: str, region: str | None = None) -> str:
        """Base URL (no API version) of a service, for the right region."""
        region = region or self.region_for(service)
        if self.sandbox_url:
            return sandbox_endpoint(self.sandbox_url, service, region)
        override = self._endpoint_override(service)
        if override:
            return override.rstrip("/")
        return real_endpoint(service, region)

    def _endpoint_override(self, service: str) -> str | None:
        """The configured base URL of a service, if any: the built-in services'
        fields (_OVERRIDES), or `endpoint` in the config section a route adds."""
        where = _OVERRIDES.get(service)
        if where is None:
            spec = next((s for s in registry.specs() if s.service == service and s.config_section), None)
            where = (spec.config_section[0], "endpoint") if spec and spec.config_section else None
        if where is None:
            return None
        value = getattr(getattr(self.config, where[0], None), where[1], None)
        return value if isinstance(value, str) else None

    def hygiene_notes(self) -> list[str]:
        """`customerio.track_api_key: removed a trailing newline` lines."""
        out = []
        for cred in self.credentials.values():
            for fix in cred.fixes:
                out.append(f"{cred.field}: {fix}")
        return out


def _clean_credentials(loaded: LoadedConfig) -> dict[str, Credential]:
    out: dict[str, Credential] = {}
    for dotted in secret_fields():
        raw = get_dotted(loaded.config, dotted)
        source = loaded.source(dotted)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            out[dotted] = Credential(dotted, None, source, line=loaded.line_of(dotted))
            continue
        raw = str(raw)
        result = creds.clean(raw)
        creds.register_secret(raw, result.value)
        out[dotted] = Credential(
            dotted, result.value or None, source, result.fixes, result.problems, line=loaded.line_of(dotted)
        )
    return out


def _fill_sandbox_defaults(
    credentials: dict[str, Credential], region: str, accepted: dict[str, str] | None = None
) -> None:
    """Sandbox credentials wherever the config has none.  `region` is the
    sandbox's Customer.io region: the default Pipelines key names its region,
    so an EU sandbox gets the pk_eu_ one.  `accepted` holds what a running
    sandbox said it accepts (SandboxOptions field -> value); it wins."""
    from cdpio_cli.sandbox import defaults

    for dotted, option in _sandbox_fields().items():
        cred = credentials[dotted]
        if not cred.configured:
            value = (accepted or {}).get(option) or (
                defaults.pipelines_api_key(region)
                if option == "pipelines_api_key"
                else getattr(defaults, option.upper())
            )
            credentials[dotted] = Credential(dotted, value, "sandbox default")


def sandbox_info(url: str, timeout: float = 1.0) -> dict | None:
    """What a running sandbox says about itself (GET /_sandbox/info): its
    regions and the default credentials it accepts.  None when it does not
    answer (an older cdpio sandbox, or not a sandbox): cdpio then assumes the
    config's sandbox.region and the sandbox's built-in defaults."""
    from cdpio_cli import transport

    # The shared transport bounds the whole request (a server trickling bytes
    # cannot hold the command) and caps the body.
    client = transport.make_client(timeout)
    try:
        answer = transport.send(client, transport.RequestSpec("GET", f"{url}/_sandbox/info"))
    except UsageError:  # a URL the transport refuses; the command's own requests will say why
        return None
    finally:
        client.close()
    info = answer.json() if answer.status == 200 else None
    return info if isinstance(info, dict) and info.get("sandbox") == "cdpio" else None


def ci_guard(path: Path | None, *, sandbox: bool, needs_services: bool) -> None:
    """In CI a mislaid config must fail the job, never go green against the
    embedded sandbox.  Rehearsing on purpose (--sandbox, `sandbox: true`) is fine."""
    from cdpio_cli.ci import detected_ci

    if path is not None or sandbox or not needs_services:
        return
    ci = detected_ci()
    if ci:
        raise UsageError(
            f"no config file found (--config, $CDPIO_CONFIG, ./cdpio.yaml) and this is a CI job ({ci}): "
            "cdpio will not silently test against its local sandbox",
            hint="set CDPIO_CONFIG to your config file; to rehearse against the sandbox on purpose, "
            "pass --sandbox or set `sandbox: true` in cdpio.yaml",
        )


class UnusableCredentials(UsageError):
    """A credential holds a character no service accepts (exit 2); carries the
    failed `format` checks so --json and --junit still report them."""

    def __init__(self, checks: list):
        first = checks[0]
        more = f" (and {len(checks) - 1} more credential{'s' if len(checks) > 2 else ''})" if len(checks) > 1 else ""
        super().__init__(
            f"{first.id}: {creds.unusable_message(first.details.get('problems', []))}{more}",
            hint=creds.UNUSABLE_HINT,
            file=first.file,
            line=first.line,
        )
        self.checks = checks


def require_usable_credentials(settings: Settings) -> None:
    """Stop before any HTTP call when a credential cannot go in a header."""
    if not any(cred.problems for cred in settings.credentials.values()):
        return
    from cdpio_cli.keys import format_checks
    from cdpio_cli.results import Status

    failed = [c for c in format_checks(settings) if c.status == Status.FAILED]
    for check in failed:
        check.details["problems"] = settings.credentials[check.id].problems
    raise UnusableCredentials(failed)


def build_settings(
    config_path: str | None = None,
    *,
    sandbox: bool = False,
    sandbox_url: str | None = None,
    needs_services: bool = True,
    uses: tuple[str, ...] | None = None,
) -> Settings:
    """Load the config and decide where traffic goes.  Does not start anything.

    `uses`: the config sections the command reads (None: all); a required
    ${VAR} left unset elsewhere does not stop it (see config.load_config)."""
    path = find_config_path(config_path)
    ci_guard(path, sandbox=sandbox or bool(sandbox_url), needs_services=needs_services)
    loaded = load_config(path, uses=uses) if path else loaded_defaults()
    credentials = _clean_credentials(loaded)
    settings = Settings(loaded=loaded, credentials=credentials)
    cfg_sandbox = loaded.config.sandbox
    if sandbox_url or (cfg_sandbox.enabled and cfg_sandbox.url and not sandbox):
        url = (sandbox_url or cfg_sandbox.url or "").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--sandbox-url {url!r} is not an http(s) URL", hint="write it like http://127.0.0.1:8787")
        settings.sandbox_url = url
        info = sandbox_info(url) if needs_services else None
        if info:
            settings.sandbox_region = info.get("region") or cfg_sandbox.region
            if path is None:  # no config names a Segment region: the sandbox's is the one
                settings.sandbox_segment_region = info.get("segment_region")
            _fill_sandbox_defaults(credentials, settings.sandbox_region, info.get("defaults") or {})
        else:
            _fill_sandbox_defaults(credentials, cfg_sandbox.region)
        settings.notes.append(f"using the sandbox at {url}")
    elif sandbox or cfg_sandbox.enabled or path is None:
        _fill_sandbox_defaults(credentials, cfg_sandbox.region)
        settings.sandbox_url = ""  # filled in when the embedded sandbox starts
        # Offline commands say nothing: each credential row shows "sandbox default".
        if not needs_services:
            pass
        elif path is None and not sandbox:
            settings.notes.append(
                "no config file found (cdpio.yaml): using the embedded sandbox; "
                "run `cdpio init` to configure real accounts"
            )
        else:
            settings.notes.append("using the embedded sandbox")
    return settings


@contextlib.contextmanager
def open_settings(
    opts: object, *, needs_services: bool = True, uses: tuple[str, ...] | None = None
) -> Iterator[Settings]:
    """Settings for one command run; starts (and stops) the embedded sandbox if used.

    `opts` carries `config`, `sandbox` and `sandbox_url` (cli.output.GlobalOptions);
    an attribute it lacks takes its default."""
    settings = build_settings(
        getattr(opts, "config", None),
        sandbox=getattr(opts, "sandbox", False),
        sandbox_url=getattr(opts, "sandbox_url", None),
        needs_services=needs_services,
        uses=uses,
    )
    if needs_services:
        require_usable_credentials(settings)
    if settings.sandbox_url == "" and needs_services:
        from cdpio_cli.sandbox.runner import EmbeddedSandbox

        with EmbeddedSandbox(_embedded_options(settings)) as sandbox:
            settings.embedded = sandbox
            settings.sandbox_url = sandbox.url
            yield settings
        return
    if settings.sandbox_url == "":
        settings.sandbox_url = None
    yield settings


def _embedded_options(settings: Settings) -> SandboxOptions:
    """The embedded sandbox for this run: it accepts the configured credentials
    and mirrors the configured regions (Segment's from segment.region,
    Customer.io's from sandbox.region)."""
    from cdpio_cli.campaigns import resolve_workspace_path
    from cdpio_cli.explain import configured_subscriptions
    from cdpio_cli.sandbox.options import SandboxOptions, private_public_api_token

    fields = _sandbox_fields()
    accepted: dict[str, str | None] = {}
    for dotted, option in fields.items():  # two routes may share an option: the first one's value
        accepted.setdefault(option, settings.credentials[dotted].value)
    token = settings.credentials["segment.public_api_token"]
    if token.source == "sandbox default" and any(
        c.source != "sandbox default" for d, c in settings.credentials.items() if d in fields
    ):
        # The sandbox shows your credentials only to your own Public API
        # token (docs/sandbox.md): this run's client gets one nobody else knows.
        private = private_public_api_token()
        accepted["public_api_token"] = private
        creds.register_secret(private)
        settings.credentials[token.field] = Credential(token.field, private, token.source)
    subscriptions = configured_subscriptions(settings)
    options = SandboxOptions(
        region=settings.config.sandbox.region,
        segment_region=settings.config.segment.region,
        activity_data=settings.config.sandbox.activity_data,
        workspace=resolve_workspace_path(settings),
        subscriptions=None if subscriptions is None else tuple(subscriptions),
    )
    # Set after construction: SandboxOptions gives an EU sandbox the EU default
    # Pipelines key, but a key from the config is accepted exactly as configured.
    for option, value in accepted.items():
        setattr(options, option, value)
    return options
