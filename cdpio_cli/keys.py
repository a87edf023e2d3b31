"""check-keys: clean, format-check and live-check every configured credential.

Tiers: `format` (local checks after cleaning) then `authenticated` (the
service confirmed the credential).  Facts, with their public sources:
docs/contracts.md (the Track region endpoint, Pipelines strict mode, App API
`/v1/workspaces`, the Segment Public API and the undocumented settings lookup).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cdpio_cli import credentials as creds
from cdpio_cli.errors import FailureKind
from cdpio_cli.results import Check, Report, Status, Tier
from cdpio_cli.routes import registry
from cdpio_cli.routes.endpoints import pipelines_key_region
from cdpio_cli.settings import Settings

if TYPE_CHECKING:
    from cdpio_cli.transport import Deadline

DESTINATION_NAMES = ("Customer.io (Actions)", "Customer.io")
SANDBOX_HINT = "is the sandbox still running? (`cdpio sandbox`)"
NETWORK_HINT = "check your network or proxy and retry; status pages: status.customer.io, status.segment.com"


def is_loopback_url(url: str | None) -> bool:
    if not url:
        return False
    from urllib.parse import urlsplit

    from cdpio_cli.transport import is_loopback

    try:
        return is_loopback(urlsplit(url).hostname)
    except ValueError:
        return False


def unreachable_hint(url: str | None, otherwise: str = NETWORK_HINT) -> str:
    """The fix for "could not reach": a loopback URL is a local sandbox that is
    not running, not a network or status-page problem."""
    return SANDBOX_HINT if is_loopback_url(url) else otherwise


# ---------------------------------------------------------------------------
# format tier
# ---------------------------------------------------------------------------


def format_checks(settings: Settings) -> list[Check]:
    """One `format` check per credential: cleaned, masked, format hint."""
    checks = []
    for dotted, cred in settings.credentials.items():
        route = registry.route_of(dotted)
        value = cred.value
        if not value:
            checks.append(
                Check(
                    id=dotted,
                    route=route,
                    tier=Tier.FORMAT,
                    status=Status.SKIPPED,
                    message="not configured",
                    hint=f"set {dotted} in cdpio.yaml (e.g. ${{{_env_hint(dotted)}}})",
                    line=cred.line,
                    file=_config_file(settings),
                )
            )
            continue
        hint = creds.format_hint(dotted, value)
        source = cred.source.split(" (")[0]
        if not source.startswith("env "):
            source = source.rsplit(":", 1)[0]  # the file; its line is in `where`
        parts = [f"{cred.masked} from {source}: {hint.message}"]
        status = Status.PASSED if hint.ok else Status.WARNING
        if cred.fixes:
            parts.append("cleaned: " + "; ".join(cred.fixes))
            status = Status.WARNING
        fix_hint = None
        if cred.fixes:
            fix_hint = "cdpio used the cleaned value; fix the stored secret so other tools get it too"
        failure = FailureKind.CHECK
        if cred.problems:
            # Unusable: no HTTP header can carry it, so nothing is sent with it.
            parts.append(creds.unusable_message(cred.problems))
            status, failure, fix_hint = Status.FAILED, FailureKind.USAGE, creds.UNUSABLE_HINT
        checks.append(
            Check(
                id=dotted,
                route=route,
                tier=Tier.FORMAT,
                status=status,
                message="; ".join(parts),
                hint=fix_hint,
                failure=failure,
                file=_config_file(settings),
                line=cred.line,
                details={"length": len(value), "fixes": cred.fixes, "source": cred.source},
            )
        )
    return checks


def _env_hint(dotted: str) -> str:
    """The environment variable the docs suggest for a credential field."""
    spec = registry.credential(dotted)
    return spec.env if spec else dotted.upper().replace(".", "_")


def _config_file(settings: Settings) -> str | None:
    return str(settings.config_path) if settings.config_path else None


# ---------------------------------------------------------------------------
# authenticated tier
# ---------------------------------------------------------------------------


def command_bound(budget: float, waits: int = 1) -> float:
    """Seconds a command that talks to the services may take in all
    (docs/security.md): its wait budget (`--timeout` of check-keys, the
    delivery wait of send-test, verify and doctor) once per wait, plus two
    request timeouts for the requests around it."""
    return waits * budget + 2 * request_timeout(budget)


def request_timeout(budget: float) -> float:
    """One request never waits longer than the command's budget (1 s to 10 s)."""
    return min(10.0, max(1.0, budget))


def dig(obj: object, *keys: str) -> object:
    """obj[k1][k2]... where every level is a JSON object; None otherwise (a
    service answering the wrong shape must not crash a check)."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "a JSON list"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, bool) or value is None:
        return f"JSON {str(value).lower() if value is not None else 'null'}"
    return "a JSON number"


@dataclass
class Answer:
    status: int | None
    body: object
    text: str
    ms: float
    error: str | None = None  # transport failure or unusable answer, already free of secrets
    url: str | None = None  # scheme://host of the service asked (never a path: it may hold a key)
    headers: dict[str, str] = field(default_factory=dict)  # response headers (send-test --capture)


class ServiceHttp:
    """Requests through the shared transport (retries on 5xx and network errors).

    A host that gave no answer at all, even after retries, is not asked again
    in the same run: one silent service should cost one timeout, not one per
    check.
    """

    def __init__(self, timeout: float, secrets: tuple[str, ...], deadline: Deadline | None = None):
        from cdpio_cli.transport import RetryPolicy, make_client

        self.timeout = timeout
        self.deadline = deadline  # transport.Deadline for the whole command, or None
        self.client = make_client(timeout=timeout)
        self.policy = RetryPolicy(max_retries=2, base_delay=0.5, max_delay=4.0)
        self.secrets = secrets
        self.silent_hosts: dict[str, str] = {}

    @classmethod
    def for_settings(cls, settings: Settings, budget: float = 10.0, *, waits: int = 1) -> ServiceHttp:
        """A client whose single request never waits longer than the command's
        own time budget (at most 10 s, at least 1 s), and that stops asking
        once `command_bound(budget, waits)` seconds have passed."""
        from cdpio_cli.transport import Deadline

        secrets = tuple(c.value for c in settings.credentials.values() if c.value)
        return cls(request_timeout(budget), secrets, Deadline(command_bound(budget, waits)))

    def close(self) -> None:
        self.client.close()

    def call(
        self,
        method: str,
        url: str,
        *,
        headers: dict | None = None,
        auth: tuple[str, str] | None = None,
        params: dict | None = None,
        content: bytes | None = None,
    ) -> Answer:
        from cdpio_cli.transport import RequestSpec, basic_auth, send
        from cdpio_cli.transport.url import URL

        parsed = URL(url)
        host = parsed.netloc
        origin = f"{parsed.scheme}://{host}"
        if host in self.silent_hosts:
            return Answer(
                None,
                None,
                "",
                0.0,
                f"{self.silent_hosts[host]} (no answer earlier in this run; not asked again)",
                url=origin,
            )
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = basic_auth(*auth)
        if params:
            url = str(parsed.with_params(params))
        attempt = send(
            self.client,
            RequestSpec(method, url, headers=headers, content=content, secrets=self.secrets),
            self.policy,
            deadline=self.deadline,
        )
        if not attempt.reached and not (self.deadline is not None and self.deadline.expired()):
            self.silent_hosts[host] = attempt.error or "no answer"
        body = attempt.json()
        error = attempt.error
        if error is None and attempt.ok and body is not None and not isinstance(body, dict):
            # Every API cdpio asks documents a JSON object here.
            error = f"{_json_kind(body)} where the API documents a JSON object"
            body = None
        return Answer(
            attempt.status,
            body,
            attempt.service_error() or "",
            attempt.duration_ms,
            error,
            url=origin,
            headers=dict(attempt.headers or {}),
        )


RATE_LIMIT_HINT = "the service is limiting requests; wait a while and retry"
ENDPOINT_HINT = (
    "check the endpoint settings in cdpio.yaml (or --sandbox-url): this answer is not what the service sends"
)


def _unreachable(check_id: str, route: str, answer: Answer, what: str) -> Check:
    from cdpio_cli.transport import answered_too_slowly

    hint = unreachable_hint(answer.url)
    if answer.error and answer.status is None and answered_too_slowly(answer.error):
        # It took the connection: it is up, but too slow (the request may have arrived).
        message = f"{what} answered too slowly: {answer.error}"
        hint = NETWORK_HINT
    elif answer.error and answer.status is None:
        message = f"could not reach {what}: {answer.error}"
    elif answer.error:
        # It answered, but not in a way cdpio may act on (a week's
        # Retry-After, a redirect to a foreign host, the wrong JSON shape).
        message = f"{what} answered {answer.status}: {answer.error}"
        hint = (
            RATE_LIMIT_HINT
            if answer.status == 429
            else (NETWORK_HINT if (answer.status or 0) >= 500 else ENDPOINT_HINT)
        )
    else:
        # "Is the sandbox running?" only when nothing answered: a 503 comes from a running service.
        message = f"{what} answered {answer.status}"
        hint = NETWORK_HINT
    return Check(
        id=check_id,
        route=route,
        tier=Tier.AUTHENTICATED,
        status=Status.FAILED,
        message=message,
        http_status=answer.status,
        duration_ms=answer.ms,
        failure=FailureKind.UNREACHABLE,
        hint=hint,
    )


def check_track(settings: Settings, http: ServiceHttp) -> list[Check]:
    site, key = settings.customerio.site_id, settings.customerio.track_api_key
    if not site or not key:
        missing = "site_id" if not site else "track_api_key"
        return [
            Check(
                id="customerio.track",
                route="customerio",
                tier=Tier.AUTHENTICATED,
                status=Status.SKIPPED,
                message=f"customerio.{missing} is not configured; the Track API cannot be checked",
            )
        ]
    configured = settings.config.customerio.region
    # The region endpoint answers on either regional host (docs/contracts.md).
    base = settings.endpoint("track", "us" if configured == "auto" else configured)
    answer = http.call("GET", f"{base}/api/v1/accounts/region", auth=(site, key))
    if answer.status == 200 and isinstance(answer.body, dict) and not answer.error:
        region = str(answer.body.get("region", "")).lower()
        workspace = answer.body.get("environment_id")
        settings.detected_region = region if region in ("us", "eu") else None
        checks = [
            Check(
                id="customerio.track",
                route="customerio",
                tier=Tier.AUTHENTICATED,
                status=Status.PASSED,
                message=f"Track API accepted the site id and key: workspace {workspace}, region {region.upper()}",
                http_status=200,
                duration_ms=answer.ms,
                details={"region": region, "workspace_id": workspace},
            )
        ]
        checks.extend(_region_checks(settings, region))
        return checks
    if answer.status in (400, 401, 403):
        detail = answer.text
        return [
            Check(
                id="customerio.track",
                route="customerio",
                tier=Tier.AUTHENTICATED,
                status=Status.FAILED,
                message=f"Track API rejected the site id and Track API key ({answer.status}"
                + (f": {detail}" if detail else "")
                + ")",
                http_status=answer.status,
                duration_ms=answer.ms,
                failure=FailureKind.CREDENTIAL,
                hint="use a Track API pair from Account Settings > API Credentials > Track API Keys; "
                "an App API key does not work here",
            )
        ]
    return [_unreachable("customerio.track", "customerio", answer, "the Customer.io Track API")]


def _region_checks(settings: Settings, detected: str) -> list[Check]:
    out = []
    configured = settings.config.customerio.region
    if configured != "auto" and configured != detected:
        out.append(
            Check(
                id="customerio.region",
                route="customerio",
                tier=Tier.AUTHENTICATED,
                status=Status.FAILED,
                message=f"customerio.region is {configured} but these credentials belong to the {detected.upper()} "
                "region",
                hint=f"set customerio.region: {detected} (or auto) in cdpio.yaml",
                file=_config_file(settings),
                line=settings.loaded.line_of("customerio.region"),
            )
        )
    else:
        how = "configured" if configured != "auto" else "detected"
        out.append(
            Check(
                id="customerio.region",
                route="customerio",
                tier=Tier.AUTHENTICATED,
                status=Status.PASSED,
                message=f"region {detected.upper()} ({how})",
                details={"region": detected},
            )
        )
    pkey = settings.customerio.pipelines_api_key
    key_region = pipelines_key_region(pkey) if pkey else None
    if key_region and key_region != detected:
        out.append(
            Check(
                id="customerio.pipelines_region",
                route="pipelines",
                tier=Tier.FORMAT,
                status=Status.WARNING,
                message=f"the Pipelines key is for the {key_region.upper()} region but the Track "
                f"credentials belong to {detected.upper()}",
                hint="check that both keys come from the same workspace",
            )
        )
    return out


def _live_region(settings: Settings) -> str:
    """The region the keys really belong to: once the Track API has told us,
    a wrongly configured region fails its own check and no longer makes the
    App and Pipelines keys look rejected."""
    return settings.detected_region or settings.customerio_region()


def check_app(settings: Settings, http: ServiceHttp) -> list[Check]:
    key = settings.customerio.app_api_key
    if not key:
        return [
            Check(
                id="customerio.app",
                route="customerio",
                tier=Tier.AUTHENTICATED,
                status=Status.SKIPPED,
                message="no App API key: send-test cannot verify delivery",
                hint="set customerio.app_api_key to let cdpio find your test events in Customer.io",
            )
        ]
    region = _live_region(settings)
    headers = {"Authorization": f"Bearer {key}"}
    answer = http.call("GET", f"{settings.endpoint('app', region)}/v1/workspaces", headers=headers)
    if answer.status == 200 and not answer.error:
        workspaces = dig(answer.body, "workspaces")
        names = [w.get("name") for w in (workspaces if isinstance(workspaces, list) else []) if isinstance(w, dict)]
        return [
            Check(
                id="customerio.app",
                route="customerio",
                tier=Tier.AUTHENTICATED,
                status=Status.PASSED,
                message=f"App API accepted the key ({region.upper()} region; workspace "
                f"{', '.join(map(str, names)) or 'unknown'})",
                http_status=200,
                duration_ms=answer.ms,
            )
        ]
    if answer.status in (401, 403):
        return [_app_key_rejected(settings, http, answer, region, headers)]
    return [_unreachable("customerio.app", "customerio", answer, "the Customer.io App API")]


def _app_key_rejected(
    settings: Settings, http: ServiceHttp, answer: Answer, region: str, headers: dict[str, str]
) -> Check:
    """A 401/403 from the App API: the key of the other region, or no key at all."""
    # The App API does not redirect: a key from the other region gets 401.
    other = "eu" if region == "us" else "us"
    retry = http.call("GET", f"{settings.endpoint('app', other)}/v1/workspaces", headers=headers)
    if retry.status == 200 and not retry.error:
        return Check(
            id="customerio.app",
            route="customerio",
            tier=Tier.AUTHENTICATED,
            status=Status.FAILED,
            message=f"App API key works only in the {other.upper()} region, but cdpio used {region.upper()}",
            http_status=answer.status,
            duration_ms=answer.ms,
            failure=FailureKind.CHECK,
            # Once the Track API has named the region, changing it would break
            # Track: the App key is the one from another workspace.
            hint="use an App API key from the same workspace as the Track API key"
            if settings.detected_region
            else f"set customerio.region: {other}",
        )
    return Check(
        id="customerio.app",
        route="customerio",
        tier=Tier.AUTHENTICATED,
        status=Status.FAILED,
        message=f"App API rejected the key ({answer.status})",
        http_status=answer.status,
        duration_ms=answer.ms,
        failure=FailureKind.CREDENTIAL,
        hint="create an App API key under Account Settings > API Credentials > App API Keys; "
        "a Track API key does not work here",
    )


def pipelines_auth(key: str) -> dict:
    """Bearer for pk_/sk_ keys, Basic `key:` for legacy keys (docs/contracts.md)."""
    import base64

    if pipelines_key_region(key):
        return {"Authorization": f"Bearer {key}"}
    token = base64.b64encode(f"{key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def check_pipelines(settings: Settings, http: ServiceHttp) -> list[Check]:
    key = settings.customerio.pipelines_api_key
    if not key:
        return [
            Check(
                id="customerio.pipelines",
                route="pipelines",
                tier=Tier.AUTHENTICATED,
                status=Status.SKIPPED,
                message="no Pipelines key configured",
            )
        ]
    # An empty batch in strict mode: a bad key gets 401, a good one creates no data.
    headers = {**pipelines_auth(key), "X-Strict-Mode": "1", "Content-Type": "application/json"}
    answer = http.call(
        "POST",
        f"{settings.endpoint('pipelines', _live_region(settings))}/v1/batch",
        headers=headers,
        content=b'{"batch":[]}',
    )
    if answer.status is not None and not answer.error and (200 <= answer.status < 300 or answer.status in (400, 422)):
        return [
            Check(
                id="customerio.pipelines",
                route="pipelines",
                tier=Tier.AUTHENTICATED,
                status=Status.PASSED,
                message=f"Pipelines API accepted the key in strict mode ({answer.status} to an empty batch; no data "
                "created)",
                http_status=answer.status,
                duration_ms=answer.ms,
            )
        ]
    if answer.status in (401, 403):
        return [
            Check(
                id="customerio.pipelines",
                route="pipelines",
                tier=Tier.AUTHENTICATED,
                status=Status.FAILED,
                message=f"Pipelines API rejected the key in strict mode ({answer.status})",
                http_status=answer.status,
                duration_ms=answer.ms,
                failure=FailureKind.CREDENTIAL,
                hint="copy the API key of your Customer.io API source (Data & Integrations > "
                "Integrations); check the region prefix",
            )
        ]
    return [_unreachable("customerio.pipelines", "pipelines", answer, "the Customer.io Pipelines API")]


def check_keys(settings: Settings, *, offline: bool = False, timeout: float = 10.0) -> Report:
    """Run every check-keys check and return the report."""
    report = Report("check-keys", run_id=settings.run_id)
    report.extend(format_checks(settings))
    if not any(c.configured for c in settings.credentials.values()):
        # Zero credentials is never "OK": in CI it means the secrets are missing.
        report.add(
            Check(
                id="credentials",
                route="config",
                tier=Tier.FORMAT,
                status=Status.FAILED,
                message=f"no credentials are configured in {settings.config_path or 'the config'}",
                hint="set segment.write_key and customerio.site_id/track_api_key (start from `cdpio init`)",
                failure=FailureKind.USAGE,
                file=_config_file(settings),
            )
        )
        return report
    if offline:
        report.summary["offline"] = True
        return report
    http = ServiceHttp.for_settings(settings, timeout)
    try:
        report.extend(check_track(settings, http))
        report.extend(check_app(settings, http))
        report.extend(check_pipelines(settings, http))
        from cdpio_cli.diagnosis import segment_region_check
        from cdpio_cli.keys_segment import check_segment

        # The settings lookup names the source's Segment region (never compared with Customer.io's).
        report.extend(segment_region_check(settings, check_segment(settings, http)))
    finally:
        http.close()
    if settings.detected_region:
        report.summary["customerio_region"] = settings.detected_region
    return report
