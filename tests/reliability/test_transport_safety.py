"""Transport safety, end to end: credentials never go over plain http except
to loopback, TLS certificates are verified, a redirect to another host never
carries credentials, and the sandbox listens on loopback unless told otherwise.

All traffic stays on this machine: "another host" is a name for 127.0.0.1
that cdpio cannot know is loopback (the machine's own hostname).
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cdpio_cli import transport
from cdpio_cli.sandbox import defaults
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.runner import EmbeddedSandbox
from tests.cli_helpers import write_config
from tests.reliability._support import assert_clean_failure, run_bounded

CONFIG = """\
version: 1
segment:
  write_key: ${WK}
  endpoint: ${SEGMENT_ENDPOINT:-}
customerio:
  site_id: ${SID}
  track_api_key: ${TKEY}
  pipelines_api_key: ${PKEY}
  region: us
  track_endpoint: ${TRACK_ENDPOINT:-}
  app_endpoint: ${APP_ENDPOINT:-}
  pipelines_endpoint: ${PIPELINES_ENDPOINT:-}
replay: {max_retries: 0, timeout: 3s}
"""
ENV = {
    "WK": defaults.WRITE_KEY,
    "SID": defaults.SITE_ID,
    "TKEY": defaults.TRACK_API_KEY,
    "PKEY": defaults.PIPELINES_API_KEY,
}
BASIC_TRACK = base64.b64encode(f"{defaults.SITE_ID}:{defaults.TRACK_API_KEY}".encode()).decode()


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records every request's headers; answers what `server.answer` says."""

    def _handle(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append({"path": self.path, "headers": dict(self.headers)})
        status, headers = self.server.answer(self)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, *args):
        pass


def serve(answer, *, tls_context: ssl.SSLContext | None = None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads = True
    server.seen = []
    server.answer = answer
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def other_name_for_loopback() -> str | None:
    """A host name that resolves to 127.x but that cdpio has no reason to treat
    as loopback (so it counts as another host)."""
    for name in (socket.gethostname(), "localhost.localdomain"):
        if transport.is_loopback(name):
            continue
        try:
            if ipaddress.ip_address(socket.gethostbyname(name)).is_loopback:
                return name
        except (OSError, ValueError):
            continue
    return None


# --- plain http -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command,endpoint_var",
    [
        (("check-keys",), "TRACK_ENDPOINT"),
        (("send-test", "--no-verify", "--route", "segment"), "SEGMENT_ENDPOINT"),
        (("send-test", "--no-verify", "--route", "pipelines"), "PIPELINES_ENDPOINT"),
        (("replay", "in.ndjson", "--route", "customerio"), "TRACK_ENDPOINT"),
    ],
)
def test_credentials_are_refused_over_plain_http_to_a_remote_host(tmp_path, command, endpoint_var):
    # example.invalid never resolves: had cdpio tried to connect, it would
    # report an unreachable service (exit 4), not this refusal (exit 2).
    write_config(tmp_path, CONFIG)
    (tmp_path / "in.ndjson").write_text('{"type":"track","userId":"u1","event":"Signed Up"}\n')
    env = {**ENV, endpoint_var: "http://example.invalid"}
    res = run_bounded(*command, cwd=tmp_path, env=env, timeout=30)
    assert res.code == 2, (res.code, res.stderr)
    assert "refusing to send credentials over plain http:// to example.invalid" in res.stderr
    assert "could not connect" not in res.stderr and "Traceback" not in res.output


def test_plain_http_to_loopback_is_allowed(tmp_path, sandbox):
    # The sandbox is plain http on 127.0.0.1: the one place that is fine.
    write_config(tmp_path, CONFIG)
    env = {**ENV, "TRACK_ENDPOINT": sandbox.endpoint("track"), "APP_ENDPOINT": sandbox.endpoint("app")}
    res = run_bounded("--json", "check-keys", cwd=tmp_path, env=env, timeout=30)
    track = [c for c in res.json["checks"] if c["id"] == "customerio.track" and c["tier"] == "authenticated"]
    assert track and track[0]["status"] == "passed", res.stderr


# --- TLS ------------------------------------------------------------------------------------


def _make_cert_with_cryptography(d: Path) -> bool:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return True


def _make_cert_with_openssl(d: Path) -> bool:
    if shutil.which("openssl") is None:
        return False
    proc = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(d / "key.pem"),
            "-out",
            str(d / "cert.pem"),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        capture_output=True,
        timeout=30,
    )
    return proc.returncode == 0


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A TLS server context for 127.0.0.1 with a self-signed certificate
    (made with the cryptography package if installed, else the openssl CLI)."""
    d = tmp_path_factory.mktemp("tls")
    if not (_make_cert_with_cryptography(d) or _make_cert_with_openssl(d)):
        pytest.skip("neither the cryptography package nor the openssl CLI is available to make a certificate")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


def test_make_client_verifies_certificates(self_signed):
    server = serve(lambda h: (200, {}), tls_context=self_signed)
    try:
        with transport.make_client(3.0) as client:
            spec = transport.RequestSpec(
                "GET", f"https://127.0.0.1:{server.server_port}/x", {"Authorization": transport.basic_auth("k" * 20)}
            )
            attempt = transport.send(client, spec)
        assert attempt.status is None and "certificate" in (attempt.error or "").lower(), attempt.error
        assert server.seen == []  # the handshake failed: no request, no header, was sent
    finally:
        server.shutdown()


def test_cli_refuses_a_self_signed_endpoint(tmp_path, self_signed):
    server = serve(lambda h: (200, {}), tls_context=self_signed)
    try:
        write_config(tmp_path, CONFIG)
        url = f"https://127.0.0.1:{server.server_port}"
        env = {**ENV, "TRACK_ENDPOINT": url, "APP_ENDPOINT": url, "SEGMENT_ENDPOINT": url, "PIPELINES_ENDPOINT": url}
        res = run_bounded("check-keys", "--timeout", "3", cwd=tmp_path, env=env, timeout=60)
        assert_clean_failure(res, 4)
        assert "certificate" in res.stderr.lower(), res.stderr
        assert server.seen == []
    finally:
        server.shutdown()


# --- redirects ------------------------------------------------------------------------------


@pytest.fixture
def redirect_pair():
    """`origin` answers 307 to the same path on `target`, reached by another
    name for 127.0.0.1; `target` answers 200.  Both record what they get."""
    other = other_name_for_loopback()
    if other is None:
        pytest.skip("no host name other than localhost resolves to loopback here")
    target = serve(lambda h: (200, {"content-type": "application/json"}))
    origin = serve(lambda h: (307, {"location": f"http://{other}:{target.server_port}{h.path}"}))
    yield origin, target, other
    origin.shutdown()
    target.shutdown()


def test_a_credentialed_redirect_to_another_host_is_not_followed(redirect_pair):
    # Not even without the header: the body is the user's data (docs/security.md).
    origin, target, other = redirect_pair
    with transport.make_client(3.0) as client:
        spec = transport.RequestSpec(
            "POST",
            f"http://127.0.0.1:{origin.server_port}/api/v2/entity",
            {"Authorization": f"Basic {BASIC_TRACK}", "Content-Type": "application/json"},
            b"{}",
        )
        attempt = transport.send(client, spec)
    assert attempt.history == [307] and not attempt.ok, attempt.describe_failure()
    assert "not followed" in attempt.describe_failure()
    assert origin.seen[0]["headers"].get("Authorization") == f"Basic {BASIC_TRACK}"
    assert target.seen == []


def test_cli_redirect_to_another_host_never_carries_credentials(tmp_path, redirect_pair):
    origin, target, other = redirect_pair
    write_config(tmp_path, CONFIG)
    url = f"http://127.0.0.1:{origin.server_port}"
    env = {**ENV, "TRACK_ENDPOINT": url, "APP_ENDPOINT": url, "SEGMENT_ENDPOINT": url, "PIPELINES_ENDPOINT": url}
    (tmp_path / "in.ndjson").write_text('{"type":"track","userId":"u1","event":"Signed Up"}\n')
    for args in (
        ("check-keys", "--timeout", "3"),
        ("send-test", "--no-verify"),
        ("replay", "in.ndjson", "--route", "customerio"),
    ):
        res = run_bounded(*args, cwd=tmp_path, env=env, timeout=60)
        assert "Traceback" not in res.output, res.stderr
    assert origin.seen, "the origin was never asked: the test proves nothing"
    assert any("Authorization" in r["headers"] for r in origin.seen)
    for r in target.seen:
        assert "Authorization" not in r["headers"], r
        assert defaults.TRACK_API_KEY not in r["path"] and defaults.WRITE_KEY not in r["path"], r


# --- the sandbox binds loopback -------------------------------------------------------------


def _sandbox_banner(*args: str) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpio_cli", "sandbox", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        for _ in range(40):  # the banner is ~20 lines; bounded either way
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return "".join(lines)


def test_sandbox_listens_on_loopback_by_default():
    banner = _sandbox_banner()
    assert "cdpio sandbox listening on http://127.0.0.1:" in banner, banner
    assert "warning" not in banner
    assert SandboxOptions().host == "127.0.0.1"
    # The embedded sandbox never takes another interface, whatever it is given.
    with EmbeddedSandbox(SandboxOptions(host="0.0.0.0")) as sb:
        assert sb.url.startswith("http://127.0.0.1:")


def test_sandbox_warns_when_asked_for_every_interface():
    banner = _sandbox_banner("--host", "0.0.0.0")
    assert "warning: serving on 0.0.0.0, not 127.0.0.1" in banner, banner
