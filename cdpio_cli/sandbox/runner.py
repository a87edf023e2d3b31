"""Running the sandbox: embedded in a background thread, or in the foreground.

Only the standard library is imported at module level; starlette and uvicorn
load when a sandbox starts.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from cdpio_cli.sandbox.options import SandboxOptions

if TYPE_CHECKING:
    from types import TracebackType

    import uvicorn

    from cdpio_cli.sandbox.app import SandboxApp
    from cdpio_cli.sandbox.state import SandboxState

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
STARTUP_TIMEOUT = 10.0


class BindError(OSError):
    """The sandbox could not listen on its host and port (as opposed to any
    other OSError while starting, e.g. opening the --record file)."""


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say
    # they are TCP, and without it every answer waits ~40 ms for a delayed ACK.
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        raise BindError(exc.errno, exc.strerror or str(exc)) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise BindError(exc.errno, exc.strerror or str(exc)) from exc
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(options: SandboxOptions) -> tuple[SandboxApp, uvicorn.Server]:
    import uvicorn

    from cdpio_cli.sandbox.app import create_app

    app = create_app(options)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Ends the debugger page's event streams, which would otherwise
            # keep their connections (and Ctrl-C) waiting.
            app.sandbox_state.stopping = True
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        loop="asyncio",
        proxy_headers=False,
        server_header=False,
        date_header=False,
        timeout_keep_alive=30,
        # Nothing may hold up Ctrl-C for long.
        timeout_graceful_shutdown=3,
    )
    return app, Server(config)


class EmbeddedSandbox:
    """A sandbox on an ephemeral 127.0.0.1 port, served from a daemon thread.

    with EmbeddedSandbox() as sb:
        httpx.post(sb.url + "/segment/v1/track", ...)
        sb.state.workspace.find("id", "u1")
    """

    def __init__(self, options: SandboxOptions | None = None):
        self.options = options or SandboxOptions()
        if self.options.host not in LOCAL_HOSTS:
            self.options = self.options.with_(host="127.0.0.1")
        self.url: str = ""
        self.port: int = 0
        self.state: SandboxState | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EmbeddedSandbox:
        if self._thread is not None:
            return self
        app, server = _server(self.options)
        self.state = app.sandbox_state
        sock = _bind(self.options.host, self.options.port)
        self.port = sock.getsockname()[1]
        self.url = _url(self.options.host, self.port)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"cdpio-sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.state is not None:
            self.state.close()
        self._thread = None

    def reset(self) -> None:
        """Forget everything (people, deliveries, requests, dedupe); keep the options."""
        assert self.state is not None
        self.state.reset()
        faults = getattr(self.state, "faults", None)
        if faults is not None:
            faults.reset()

    def endpoint(self, service: str, region: str | None = None) -> str:
        """Base URL of one emulated service, e.g. endpoint("track") -> http://.../track."""
        from cdpio_cli.routes.endpoints import sandbox_endpoint

        return sandbox_endpoint(self.url, service, region or self.options.region_of(service))

    def __enter__(self) -> EmbeddedSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_CREDENTIAL_FIELDS = {
    "segment write key": "write_key",
    "segment public api token": "public_api_token",
    "customer.io site id": "site_id",
    "customer.io track api key": "track_api_key",
    "customer.io app api key": "app_api_key",
    "customer.io pipelines api key": "pipelines_api_key",
}


# SandboxOptions fields that hold a credential the sandbox accepts.
CREDENTIAL_OPTION_FIELDS = tuple(_CREDENTIAL_FIELDS.values())


def banner_credentials(options: SandboxOptions) -> dict[str, str]:
    """The credentials the sandbox accepts, for printing: the defaults in full
    (users copy them; they are not secrets), anything else masked (length and
    last four), since it may be a real key reused for a local rehearsal."""
    from cdpio_cli.credentials import mask
    from cdpio_cli.sandbox import defaults

    out = {}
    for label, field_name in _CREDENTIAL_FIELDS.items():
        value = getattr(options, field_name)
        out[label] = value if defaults.is_default(field_name, value) else f"{mask(value)} (yours)"
    return out


def debugger_url(base_url: str) -> str:
    """The address of the debugger page of the sandbox at `base_url`."""
    return base_url.rstrip("/") + "/"


def describe(options: SandboxOptions, url: str) -> str:
    """The banner `cdpio sandbox` prints: base URL, service URLs, accepted credentials."""
    from cdpio_cli.routes import registry
    from cdpio_cli.routes.endpoints import SANDBOX_PREFIXES

    regions = f"Customer.io region: {options.region}, Segment region: {options.region_of('segment')}"
    lines = [
        f"cdpio sandbox listening on {url}  ({regions})",
        f"debugger page: {debugger_url(url)}  (watch messages arrive; docs/debugger.md)",
        "services:",
    ]
    # A route's service is named by its title (the first route on it); the rest here.
    labels = {
        "segment_cdn": "Segment settings lookup",
        "segment_api": "Segment Public API",
        "app": "Customer.io App API",
    }
    for spec in registry.specs():
        labels.setdefault(spec.service, spec.title)
    for service, prefixes in SANDBOX_PREFIXES.items():
        lines.append(f"  {labels[service]:<26} {url}{prefixes[options.region_of(service)]}")
    lines.append(f"  {'inspection':<26} {url}/_sandbox/{{health,info,requests,deliveries,reset}}")
    lines.append("accepts (the sandbox's own credentials in full: they open only this local emulator; yours masked):")
    for name, value in banner_credentials(options).items():
        lines.append(f"  {name:<30} {value}")
    faults = []
    if options.fail_rate:
        faults.append(f"fail-rate {options.fail_rate:g} (status {options.fail_status})")
    if options.throttle:
        faults.append(f"throttle {options.throttle:g} req/s")
    if options.latency:
        faults.append(f"latency {options.latency:g}s")
    if options.drop_connections:
        faults.append(f"drop-connections {options.drop_connections:g}")
    if not options.segment_destination_enabled:
        faults.append("Customer.io (Actions) destination not connected")
    if faults:
        lines.append("faults: " + ", ".join(faults))
    if options.record:
        lines.append(f"recording accepted messages to {options.record}")
    lines.append("Ctrl-C stops it.")
    return "\n".join(lines)


def serve(options: SandboxOptions | None = None, *, out: TextIO | None = None, as_json: bool = False) -> int:
    """Serve in the foreground until Ctrl-C; returns the exit code (0).
    `as_json`: instead of the banner, one JSON line on stdout (URL, port,
    regions, credentials) for scripts that start it with --port 0."""
    options = options or SandboxOptions()
    out = out or sys.stderr
    if options.host not in LOCAL_HOSTS:
        print(
            f"warning: serving on {options.host}, not 127.0.0.1: anyone who can reach this "
            "interface can use the sandbox",
            file=out,
        )
    app, server = _server(options)  # opens --record: fails before the port is taken
    try:
        sock = _bind(options.host, options.port)
    except BaseException:
        app.sandbox_state.close()
        raise
    port = sock.getsockname()[1]
    if as_json:
        import json

        from cdpio_cli.sandbox.control import sandbox_info

        line = sandbox_info(options, _url(options.host, port), reveal_defaults=False)
        print(json.dumps(line), file=sys.stdout, flush=True)
    else:
        print(describe(options, _url(options.host, port)), file=out, flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        app.sandbox_state.close()
    return 0
