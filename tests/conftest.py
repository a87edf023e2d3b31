"""Shared fixtures: a running sandbox for every test that needs one."""

from __future__ import annotations

import pytest

from cdpio_cli.ci import CI_ENV_VARS
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.runner import EmbeddedSandbox


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch):
    """The suite runs with CI=true in CI; cdpio code called in-process must see
    a developer's machine unless a test sets a CI variable itself."""
    for name in (*CI_ENV_VARS, "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _shared_sandbox():
    # No App API rate limit here: tests read the App API directly, many at a
    # time.  cdpio's own clients are checked against the limit on sandboxes
    # started with the default (10 requests/s), e.g. in tests/test_campaigns.py.
    with EmbeddedSandbox(SandboxOptions(app_api_rate=0)) as sb:
        yield sb


@pytest.fixture
def sandbox(_shared_sandbox):
    """A running EmbeddedSandbox with default options, empty at the start of the test."""
    _shared_sandbox.reset()
    yield _shared_sandbox


@pytest.fixture
def sandbox_factory():
    """Start sandboxes with custom options: `sb = sandbox_factory(region="eu", throttle=5)`."""
    started: list[EmbeddedSandbox] = []

    def start(options: SandboxOptions | None = None, **overrides) -> EmbeddedSandbox:
        opts = (options or SandboxOptions()).with_(**overrides) if overrides else (options or SandboxOptions())
        sb = EmbeddedSandbox(opts).start()
        started.append(sb)
        return sb

    yield start
    for sb in started:
        sb.stop()
