"""The shared HTTP policy, against the sandbox over real loopback sockets."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import orjson
import pytest

from cdpio_cli import __version__, transport
from cdpio_cli.errors import UsageError
from cdpio_cli.sandbox import defaults
from cdpio_cli.transport import RequestSpec, RetryPolicy, TokenBucket
from tests.cli_helpers import run_cli

FAST = dict(base_delay=0.001, max_delay=0.01, max_retry_after=0.01)


def track_spec(sb, *, key=defaults.WRITE_KEY, mid="m-1", path="/v1/track", base=None):
    body = orjson.dumps({"type": "track", "event": "Signed Up", "userId": "u1", "messageId": mid})
    return RequestSpec(
        "POST",
        (base or sb.endpoint("segment")) + path,
        {"Content-Type": "application/json", "Authorization": transport.basic_auth(key)},
        body,
        secrets=(key,),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def client():
    with transport.make_client(5.0) as c:
        yield c


def test_client_policy(client):
    assert client.headers["user-agent"] == f"cdpio/{__version__}"
    assert client.follow_redirects is False


def test_success_single_attempt(sandbox, client):
    attempt = transport.send(client, track_spec(sandbox), RetryPolicy(3, **FAST))
    assert attempt.ok and attempt.status == 200
    assert attempt.attempts == 1 and attempt.retries == 0
    assert attempt.json() == {"success": True}
    assert attempt.url.endswith("/segment/v1/track")


def test_retries_injected_5xx_until_success(sandbox_factory, client):
    sb = sandbox_factory(fail_rate=0.5, seed=11)
    results = [transport.send(client, track_spec(sb, mid=f"m{i}"), RetryPolicy(15, **FAST)) for i in range(20)]
    assert all(r.ok for r in results)
    assert sum(r.retries for r in results) > 0  # seed 11 injects some failures
    for r in results:
        assert r.history[-1] == 200 and set(r.history[:-1]) <= {500}
        assert len(r.latencies) == r.attempts == len(r.history)


def test_no_retry_reports_service_error(sandbox_factory, client):
    sb = sandbox_factory(fail_rate=1.0, fail_status=503)
    attempt = transport.send(client, track_spec(sb), transport.NO_RETRY)
    assert attempt.status == 503 and attempt.attempts == 1
    assert "injected" in attempt.describe_failure()


def test_gives_up_after_max_retries(sandbox_factory, client):
    sb = sandbox_factory(fail_rate=1.0, fail_status=500)
    attempt = transport.send(client, track_spec(sb), RetryPolicy(3, **FAST))
    assert attempt.status == 500 and attempt.attempts == 4 and attempt.retries == 3


def test_4xx_is_not_retried(sandbox, client):
    spec = track_spec(sandbox)
    spec.content = b"{not json"
    attempt = transport.send(client, spec, RetryPolicy(5, **FAST))
    assert attempt.status == 400 and attempt.attempts == 1


def test_429_retry_after_is_honoured_and_capped(sandbox_factory, client):
    sb = sandbox_factory(throttle=2)
    # Burn the bucket: the sandbox starts with `throttle` tokens.
    statuses = [transport.send(client, track_spec(sb, mid=f"b{i}")).status for i in range(4)]
    assert 429 in statuses
    seen = []
    policy = RetryPolicy(20, base_delay=0.001, max_delay=0.01, max_retry_after=0.2)
    attempt = transport.send(client, track_spec(sb, mid="after"), policy, rng=lambda a, b: seen.append(b) or 0.0)
    assert attempt.ok
    # Retry-After (1 s) won over jitter, so the rng was never consulted.
    assert seen == []


def test_dropped_connection_is_retried_and_sanitised(sandbox_factory, client):
    sb = sandbox_factory(drop_connections=1.0)
    attempt = transport.send(client, track_spec(sb, key="SecretWriteKey0123456789"), RetryPolicy(1, **FAST))
    assert attempt.status is None and attempt.attempts == 2 and not attempt.reached
    assert attempt.error and "SecretWriteKey0123456789" not in attempt.error
    assert "/segment/v1" not in attempt.error


def test_unreachable_host(client):
    port = free_port()
    spec = RequestSpec(
        "POST",
        f"http://127.0.0.1:{port}/segment/v1/batch",
        {"Authorization": transport.basic_auth("AnotherSecretKey9876")},
        b"{}",
        secrets=("AnotherSecretKey9876",),
    )
    attempt = transport.send(client, spec, RetryPolicy(2, **FAST))
    assert attempt.status is None and attempt.attempts == 3
    assert "could not connect" in attempt.error
    assert "AnotherSecretKey9876" not in attempt.describe_failure()


def test_write_key_in_path_never_in_error_text(client):
    key = "PathWriteKey1234567890"
    port = free_port()
    spec = RequestSpec(
        "GET", f"http://127.0.0.1:{port}/segment-cdn/v1/projects/{key}/settings", {}, None, secrets=(key,)
    )
    attempt = transport.send(client, spec)
    assert key not in attempt.describe_failure() and key not in attempt.url
    assert "ends 7890" in attempt.url


def test_newline_in_key_gives_a_clean_error(sandbox, client):
    key = defaults.WRITE_KEY
    spec = RequestSpec(
        "POST", sandbox.endpoint("segment") + "/v1/track", {"Authorization": f"Bearer {key}\n"}, b"{}", secrets=(key,)
    )
    attempt = transport.send(client, spec)
    assert attempt.status is None
    assert key not in attempt.describe_failure()


def test_refuses_credentials_over_plain_http(client):
    spec = RequestSpec(
        "POST", "http://api.segment.example/v1/batch", {"Authorization": transport.basic_auth("k" * 20)}, b"{}"
    )
    with pytest.raises(UsageError, match="plain http://"):
        transport.send(client, spec)
    # The client's own guard catches requests built outside `send`.
    with pytest.raises(UsageError):
        client.post("http://api.segment.example/v1/batch", headers={"Authorization": "Basic eA=="})
    # No credentials, or loopback: allowed (checked without sending).
    transport.check_credentials_transport("http://example.com/x", has_credentials=False)
    transport.check_credentials_transport("http://127.0.0.1:9/x", has_credentials=True)
    transport.check_credentials_transport("http://[::1]:9/x", has_credentials=True)
    transport.check_credentials_transport("https://example.com/x", has_credentials=True)


def test_track_redirect_to_eu_keeps_credentials(sandbox_factory, client):
    sb = sandbox_factory(region="eu")
    op = {"type": "person", "identifiers": {"id": "eu-1"}, "action": "identify", "attributes": {"plan": "pro"}}
    spec = RequestSpec(
        "POST",
        sb.endpoint("track", "us") + "/api/v2/entity",
        {
            "Content-Type": "application/json",
            "Authorization": transport.basic_auth(defaults.SITE_ID, defaults.TRACK_API_KEY),
        },
        orjson.dumps(op),
        secrets=(defaults.TRACK_API_KEY,),
    )
    attempt = transport.send(client, spec)
    assert attempt.ok, attempt.describe_failure()
    assert attempt.history == [307, 200]
    assert attempt.redirects and "/track-eu/" in attempt.redirects[0]
    res = httpx.get(
        sb.endpoint("app", "eu") + "/v1/customers/eu-1/attributes",
        headers={"Authorization": f"Bearer {defaults.APP_API_KEY}"},
    )
    assert res.json()["customer"]["attributes"]["plan"] == "pro"


@pytest.mark.parametrize(
    "origin,target,keep",
    [
        ("https://track.customer.io/a", "https://track-eu.customer.io/a", True),
        ("https://api.segment.io/v1", "https://api.segment.io/v2", True),
        ("https://track.customer.io/a", "https://evil.example/a", False),
        ("https://track.customer.io/a", "http://track-eu.customer.io/a", False),
        ("https://track.customer.io/a", "https://customer.io.evil.example/a", False),
        ("http://127.0.0.1:1/a", "http://localhost:2/b", True),
    ],
)
def test_redirect_credential_rule(origin, target, keep):
    assert transport.may_receive_credentials(origin, target) is keep


def test_parse_retry_after():
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert transport.parse_retry_after("3") == 3.0
    assert transport.parse_retry_after(" 0.5 ") == 0.5
    assert transport.parse_retry_after("-4") == 0.0
    assert transport.parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert transport.parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    for bad in (None, "", "soon", "nan"):
        assert transport.parse_retry_after(bad) is None


def test_backoff_is_exponential_full_jitter_and_capped():
    policy = RetryPolicy(max_retries=10, base_delay=0.5, max_delay=4.0, max_retry_after=60)
    top = lambda a, b: b  # noqa: E731 - the jitter ceiling
    assert [policy.delay(n, rng=top) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(3, rng=lambda a, b: a) == 0.0
    assert policy.delay(1, retry_after=10) == 10
    assert policy.delay(1, retry_after=600) == 60
    assert all(RetryPolicy.retryable_status(s) for s in (408, 429, 500, 502, 503, 599))
    assert not any(RetryPolicy.retryable_status(s) for s in (None, 200, 207, 400, 401, 403, 404, 413))


def test_token_bucket_spaces_slots_exactly():
    now = [100.0]
    bucket = TokenBucket(40, clock=lambda: now[0])
    slots = [bucket.reserve() for _ in range(401)]
    assert slots[0] == 100.0
    assert slots[-1] == pytest.approx(110.0)  # 400 intervals of 1/40 s
    gaps = {round(b - a, 9) for a, b in zip(slots, slots[1:], strict=False)}
    assert gaps == {0.025}
    # An idle bucket does not bank a burst (burst=1)...
    now[0] = 1000.0
    assert bucket.reserve() == 1000.0 and bucket.reserve() == 1000.025
    # ...unless asked to.
    burst = TokenBucket(10, burst=3, clock=lambda: now[0])
    burst.reserve()
    now[0] = 2000.0
    assert [burst.reserve() for _ in range(4)] == pytest.approx([1999.8, 1999.9, 2000.0, 2000.1])


def test_token_bucket_is_thread_safe():
    now = [0.0]
    bucket = TokenBucket(1000, clock=lambda: now[0])
    out: list[float] = []
    lock = threading.Lock()

    def worker():
        mine = [bucket.reserve() for _ in range(500)]
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(round(s, 9) for s in out)) == 4000  # no slot handed out twice


def test_paced_requests_never_see_429(sandbox_factory, client):
    sb = sandbox_factory(throttle=100)
    bucket = TokenBucket(100)
    statuses = []

    def worker(n):
        for i in range(20):
            statuses.append(transport.send(client, track_spec(sb, mid=f"w{n}-{i}"), rate_limiter=bucket).status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == 80


@pytest.mark.parametrize(
    "body,expected",
    [
        (b'{"code":"invalid_request","message":"Bad thing"}', "invalid_request: Bad thing"),
        (b"Bad Request\n", "Bad Request"),
        (b'{"meta":{"error":"Unauthorized request"}}', "Unauthorized request"),
        (b'{"meta":{"errors":["a is wrong","b too"]}}', "a is wrong; b too"),
        (
            b'{"errors":[{"reason":"required","field":"identifiers","message":"missing"}]}',
            "identifiers: missing (required)",
        ),
        (b"", None),
        (b"<html><title>502 Bad Gateway</title></html>", "502 Bad Gateway"),
    ],
)
def test_service_error_shapes(body, expected):
    ctype = "text/html" if body.startswith(b"<html") else None
    assert transport.service_error(body, ctype) == expected


def test_batch_errors_by_index():
    body = (
        b'{"errors":[{"batch_index":2,"reason":"invalid","field":"name","message":"too long"},'
        b'{"batch_index":2,"message":"second"},{"batch_index":"x"},{"message":"no index"}]}'
    )
    assert transport.batch_errors(body) == {2: "name: too long (invalid); second"}
    assert transport.batch_errors(b"nope") == {}


def test_sanitize_masks_keys_urls_and_auth_tokens():
    text = (
        "error for https://cdn.segment.com/v1/projects/AbCdEf0123456789XyZ/settings "
        "with Authorization: Basic QWJDZEVmMDEyMzQ1Njc4OVh5Wjo="
    )
    out = transport.sanitize(text, ("AbCdEf0123456789XyZ",))
    assert "AbCdEf0123456789XyZ" not in out and "QWJDZEVm" not in out
    assert "https://cdn.segment.com" in out and "/projects/" not in out


# --- issue 12: bounded bodies, deadlines, masking (in-process; the CLI cases are in
# tests/reliability/test_hostile_server.py) ------------------------------------------------


def test_a_gzip_bomb_is_read_only_up_to_the_cap():
    import tracemalloc

    from tests.reliability.hostile import HostileServer

    with HostileServer("gzip_bomb", size=64 * 1024 * 1024) as server, transport.make_client(5.0) as c:
        tracemalloc.start()
        try:
            attempt = transport.send(c, RequestSpec("GET", server.url() + "/bomb"), RetryPolicy(3, **FAST))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert attempt.status is None and attempt.attempts == 1  # not retried
    assert "larger than 10 MB (decompressed)" in attempt.describe_failure()
    assert peak < 40 * 1024 * 1024, peak


def test_a_deadline_is_not_outwaited_by_retry_after():
    from tests.reliability.hostile import WEEK, HostileServer

    with HostileServer("retry_after", seconds=WEEK) as server, transport.make_client(5.0) as c:
        attempt = transport.send(
            c, RequestSpec("GET", server.url() + "/x"), RetryPolicy(5), deadline=transport.Deadline(30)
        )
    assert attempt.status == 429 and attempt.attempts == 1
    assert f"asked to retry after {WEEK} s; the command's 30 s deadline passed" in attempt.describe_failure()


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e300, 0, -1])
def test_timeouts_must_be_finite_positive_seconds(value):
    with pytest.raises(UsageError, match="--timeout"):
        transport.check_timeout(value, "--timeout")


def test_error_bodies_are_masked_before_they_are_cut():
    from cdpio_cli import credentials

    key = "wkQz7SECRETcdpioWriteKey4821"
    credentials.register_secret(key)
    try:
        text = transport.service_error(b"E" * 282 + key.encode() + b" and more")
    finally:
        credentials.forget_secrets()
    assert key[:8] not in text and len(text) <= 300, text


def test_the_lean_wire_and_httpx_send_the_same_request():
    """`make_client`'s clients send through wire.py; any other httpx client
    through httpx.  Same policy, same request on the wire, same Attempt."""
    from tests.reliability.hostile import HostileServer

    headers = {"Content-Type": "application/json", "Authorization": transport.basic_auth("k" * 20)}
    with HostileServer("ok", body={"ok": True}) as server:
        spec = RequestSpec("POST", server.url() + "/v1/batch?x=1", headers, b'{"batch":[]}', secrets=("k" * 20,))
        with transport.make_client(5.0) as lean:
            assert lean.wire is not None
            by_wire = [transport.send(lean, spec) for _ in range(3)]
        with httpx.Client(headers=dict(lean.headers), timeout=5.0) as plain:
            by_httpx = transport.send(plain, spec)
    seen_wire, seen_httpx = server.seen[0], server.seen[-1]
    assert (seen_wire.method, seen_wire.path) == (seen_httpx.method, seen_httpx.path) == ("POST", "/v1/batch?x=1")
    assert seen_wire.headers == seen_httpx.headers
    for attempt in by_wire:
        assert (attempt.status, attempt.body, attempt.attempts, attempt.url) == (
            by_httpx.status,
            by_httpx.body,
            by_httpx.attempts,
            by_httpx.url,
        )
        assert attempt.headers == by_httpx.headers


def test_a_kept_alive_connection_the_server_closed_is_not_reused():
    """A connection the server closed while idle is replaced before sending,
    so the request is sent once (no retry spent on a stale connection)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    connections: list[int] = []

    def serve() -> None:
        for n in range(2):
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b'{"n"' not in data or not data.endswith(b"}"):
                    data += conn.recv(65536)
                connections.append(n)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            # closed right after answering, though HTTP/1.1 said keep-alive

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with transport.make_client(5.0) as c:
        first = transport.send(c, RequestSpec("POST", f"http://127.0.0.1:{port}/x", {}, b'{"n":1}'))
        time.sleep(0.2)  # let the close arrive
        second = transport.send(c, RequestSpec("POST", f"http://127.0.0.1:{port}/x", {}, b'{"n":2}'))
    thread.join(5)
    listener.close()
    assert (first.status, second.status) == (200, 200)
    assert (first.attempts, second.attempts) == (1, 1)
    assert connections == [0, 1]


def test_a_threads_connection_closes_with_the_thread(sandbox):
    """The wire keeps one connection per thread; a finished thread's is closed,
    not left open until the client closes."""
    import gc

    with transport.make_client(5.0) as c:
        worker = threading.Thread(target=lambda: transport.send(c, track_spec(sandbox)))
        worker.start()
        worker.join(10)
        del worker
        gc.collect()
        assert c.wire is not None and not [conn for conn in c.wire._all if conn.sock is not None]
        assert transport.send(c, track_spec(sandbox, mid="m-2")).status == 200


_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def test_a_send_without_a_proxy_imports_no_httpx(sandbox):
    """The CLI's send path (replay, send-test, check-keys) runs on wire.py:
    httpx, httpcore, h11 and anyio stay unimported (issue 17: their imports
    were 43% of a replay run's)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    spec = track_spec(sandbox)
    code = (
        "import sys\n"
        "from cdpio_cli import transport\n"
        f"spec = transport.RequestSpec('POST', {spec.url!r}, {spec.headers!r}, {spec.content!r},"
        f" secrets={spec.secrets!r})\n"
        "with transport.make_client(5.0) as c:\n"
        "    attempt = transport.send(c, spec)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore', 'h11', 'anyio'))\n"
        "print(attempt.status, heavy)\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k.upper() not in _PROXY_VARS}
    proc = subprocess.run(
        [sys.executable, "-c", code], env={**env, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["200", "[]"], proc.stdout


def test_a_proxy_from_the_environment_carries_the_request(monkeypatch):
    """A proxy configured in the environment stays httpx's job: the request
    goes to the proxy (in absolute form), not over the lean wire."""
    from tests.reliability.hostile import HostileServer

    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with HostileServer("ok", body={"ok": True}) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url())
        with transport.make_client(5.0) as c:
            assert c.wire is None
            attempt = transport.send(c, RequestSpec("GET", "http://127.0.0.1:9/v1/x", {}, None))
    assert attempt.status == 200 and attempt.url == "http://127.0.0.1:9/v1/x"
    assert proxy.seen[0].path == "http://127.0.0.1:9/v1/x"


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"PATH": "/bin", "HOME": "/root"},
        {"http_proxy": "http://proxy:3128"},
        {"HTTPS_PROXY": "http://proxy:3128"},
        {"All_Proxy": "socks5://proxy:1080"},
        {"no_proxy": "localhost, .internal"},
        {"NO_PROXY": " , "},
        {"ftp_proxy": "http://proxy:21"},
        {"http_proxy": ""},
        {"MY_PROXY_HOST": "x", "proxy": "y", "_proxy": "z"},
    ],
)
def test_proxies_configured_answers_as_urllib_does_without_importing_it(monkeypatch, environ):
    """The shortcut (no variable named *_proxy: no proxy) gives the answer
    urllib.request.getproxies() gives, and only imports urllib.request when
    such a variable exists (issue 17: a replay run's imports)."""
    import os
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    from cdpio_cli.transport.client import proxies_configured

    monkeypatch.setattr(os, "environ", dict(environ))
    proxies = urllib.request.getproxies()
    expected = any(proxies.get(s) for s in ("http", "https", "all")) or any(
        h.strip() for h in proxies.get("no", "").split(",")
    )
    assert proxies_configured() is expected
    code = (
        "import sys\n"
        "from cdpio_cli.transport.client import proxies_configured\n"
        "print(proxies_configured(), 'urllib.request' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(root), **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    named = any(name.lower().endswith("_proxy") for name in environ)
    assert proc.stdout.split() == [str(expected), str(named)], proc.stdout


def test_a_watched_client_sends_through_httpx_and_its_hooks_see_each_request(sandbox):
    """Adding an event hook (contract tests capture requests so) takes the
    client off the lean wire: the hook sees every request `send` makes."""
    seen = []
    with transport.make_client(5.0) as c:
        assert c.wire_for_send() is c.wire is not None
        c.event_hooks["request"].append(lambda request: seen.append(request.url.path))
        assert c.wire_for_send() is None
        assert transport.send(c, track_spec(sandbox)).status == 200
    assert seen == ["/segment/v1/track"]


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_an_unusable_ssl_cert_file_is_a_config_error_not_a_crash(tmp_path, content):
    # The TLS context is built on the first https connection; a missing or
    # certificate-free SSL_CERT_FILE is the user's setting to fix (exit 2).
    cafile = tmp_path / "ca.pem"
    if content is not None:
        cafile.write_text(content)
    (tmp_path / "cdpio.yaml").write_text(
        "version: 1\nsegment:\n  write_key: abcdefghijklmnopqrstuvwxyz123456\n  endpoint: https://127.0.0.1:9\n"
    )
    res = run_cli("send-test", "--route", "segment", cwd=tmp_path, env={"SSL_CERT_FILE": str(cafile)})
    assert res.code == 2, res.stderr
    assert f"SSL_CERT_FILE={cafile} cannot be used for verifying TLS" in res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
