"""The sandbox ASGI app: every emulated service under its path prefix (docs/commands.md)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from cdpio_cli.sandbox import campaigns, control, customerio, debugger, protocols, segment
from cdpio_cli.sandbox.faults import FaultInjector
from cdpio_cli.sandbox.guard import BodyCap, HostGuard
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.state import SandboxState
from cdpio_cli.sandbox.web import bind, json_response, log

ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


class SandboxApp(Starlette):
    """Starlette behind the Host/Origin guard, the body cap and the fault injector."""

    sandbox_state: SandboxState

    def build_middleware_stack(self) -> ASGIApp:
        state = self.sandbox_state
        return HostGuard(BodyCap(FaultInjector(super().build_middleware_stack(), state)), state.options)


async def _not_found(request: Request, *, state: SandboxState) -> Response:
    if not request.url.path.startswith("/_sandbox"):
        log(request, state, "unknown", 404)
    return json_response(
        {"code": "not_found", "message": f"the sandbox has no {request.method} {request.url.path}"}, 404
    )


def create_app(options: SandboxOptions | None = None) -> SandboxApp:
    options = options or SandboxOptions()
    state = SandboxState(options)
    routes = [
        *control.routes(state),
        *debugger.routes(state),
        *segment.routes(state),
        *protocols.routes(state),
        *campaigns.routes(state),
        *customerio.routes(state),
        Route("/{path:path}", bind(_not_found, state=state), methods=ALL_METHODS),
    ]
    app = SandboxApp(routes=routes)
    app.sandbox_state = state  # read by build_middleware_stack on the first request
    return app
