"""A hostile HTTP server for the reliability suite.

`HostileServer(behaviour, **params)` listens on 127.0.0.1 (plain or TLS) and
answers every request the way `behaviour` says:

- `ok`: 200 with a JSON body (`body=`), keep-alive;
- `answer`: any `status`, `body` and `headers`;
- `redirect`: 307 to the same path on `to` (a base URL);
- `slowloris`: the status line and then header bytes, one every `interval`
  seconds, forever;
- `huge`: 200 with a `size`-byte body, sent as fast as the client reads,
  delimited by closing the connection (`declare=True`: a Content-Length);
- `gzip_bomb`: 200 with `Content-Encoding: gzip` and a small body that
  decompresses to `size` bytes;
- `retry_after`: 429 with `Retry-After: seconds` (a week by default).

It records every request (method, path, lower-cased headers) in `seen`.

The other helpers let a CLI subprocess reach it under a foreign host name
without mocking any cdpio code: `make_tls` makes a CA-less self-signed
certificate for the given names, and `child_env` gives the subprocess a
`sitecustomize` that resolves those names to 127.0.0.1 and trusts that
certificate through `SSL_CERT_FILE` (which httpx honours).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WEEK = 7 * 24 * 3600


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class HostileServer:
    def __init__(self, behaviour: str, *, ssl_context: ssl.SSLContext | None = None, **params):
        if behaviour not in _BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.behaviour = behaviour
        self.params = params
        self.ssl_context = ssl_context
        self.seen: list[Seen] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> HostileServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the hostile server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def url(self, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host}:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.ssl_context))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    # -- one connection -----------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                self.seen.append(Seen(method, path, headers))
                keep_open = await _BEHAVIOURS[self.behaviour](self, path, writer)
                if not keep_open:
                    break
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ssl.SSLError,
            asyncio.CancelledError,
            OSError,
        ):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the peer may be gone already
                pass


async def _write_response(writer, status: int, body: bytes = b"", headers: dict | None = None) -> bool:
    reason = {200: "OK", 307: "Temporary Redirect", 429: "Too Many Requests"}.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
    return True


async def _ok(server, path, writer):
    body = server.params.get("body", {})
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await _write_response(writer, 200, data, {"Content-Type": "application/json"})


async def _answer(server, path, writer):
    body = server.params.get("body", b"")
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await _write_response(
        writer,
        server.params.get("status", 200),
        data,
        {"Content-Type": "application/json", **server.params.get("headers", {})},
    )


async def _redirect(server, path, writer):
    return await _write_response(writer, 307, b"", {"Location": server.params["to"].rstrip("/") + path})


async def _slowloris(server, path, writer):
    interval = server.params.get("interval", 0.5)
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: ":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(interval)
    while True:  # a header that never ends
        writer.write(b"a")
        await writer.drain()
        await asyncio.sleep(interval)


async def _huge(server, path, writer):
    size = server.params.get("size", 200 * 1024 * 1024)
    # By default no Content-Length: the body ends when the connection does,
    # so only a streaming cap can stop it (a declared size is refused upfront).
    length = f"Content-Length: {size}" if server.params.get("declare") else "Connection: close"
    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n\r\n".encode())
    chunk = b" " * 65536
    sent = 0
    while sent < size:
        piece = chunk[: size - sent]
        writer.write(piece)
        await writer.drain()
        sent += len(piece)
    return bool(server.params.get("declare"))


async def _gzip_bomb(server, path, writer):
    bomb = gzip_bomb(server.params.get("size", 200 * 1024 * 1024))
    return await _write_response(writer, 200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})


async def _retry_after(server, path, writer):
    return await _write_response(
        writer,
        429,
        b'{"message":"slow down"}',
        {"Content-Type": "application/json", "Retry-After": str(server.params.get("seconds", WEEK))},
    )


_BEHAVIOURS = {
    "ok": _ok,
    "answer": _answer,
    "redirect": _redirect,
    "slowloris": _slowloris,
    "huge": _huge,
    "gzip_bomb": _gzip_bomb,
    "retry_after": _retry_after,
}

_BOMBS: dict[int, bytes] = {}


def gzip_bomb(size: int) -> bytes:
    """gzip of `size` zero bytes (about size / 1000 bytes long); cached."""
    if size not in _BOMBS:
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = bytes(1024 * 1024)
        parts = []
        left = size
        while left > 0:
            parts.append(comp.compress(block[: min(left, len(block))]))
            left -= len(block)
        parts.append(comp.flush())
        _BOMBS[size] = b"".join(parts)
    return _BOMBS[size]


# ---------------------------------------------------------------------------------------------
# Foreign host names for a subprocess: TLS certificate + name resolution
# ---------------------------------------------------------------------------------------------


def make_tls(directory: Path, names: list[str]) -> tuple[ssl.SSLContext, Path]:
    """A self-signed certificate for 127.0.0.1, localhost and `names`:
    (server context, the PEM file a client trusts through SSL_CERT_FILE)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cdpio hostile test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    sans += [x509.DNSName(n) for n in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx, cert_file


_RESOLVER = """\
# Written by tests/reliability/hostile.py: resolve test host names to 127.0.0.1.
import socket

_NAMES = {names!r}
_real = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, (bytes, bytearray)):
        host = host.decode()
    if isinstance(host, str) and host.lower().rstrip(".") in _NAMES:
        host = "127.0.0.1"
    return _real(host, *args, **kwargs)


socket.getaddrinfo = getaddrinfo
"""


def child_env(directory: Path, names: list[str], cafile: Path | None = None) -> dict[str, str]:
    """Environment for a CLI subprocess in which `names` resolve to 127.0.0.1
    (a `sitecustomize` on PYTHONPATH; cdpio's code is untouched) and, with
    `cafile`, only that certificate is trusted."""
    site = directory / "resolver"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_RESOLVER.format(names=sorted(n.lower() for n in names)))
    path = [str(site), os.environ.get("PYTHONPATH", ""), str(REPO)]
    env = {"PYTHONPATH": os.pathsep.join(p for p in path if p)}
    if cafile is not None:
        env["SSL_CERT_FILE"] = str(cafile)
    return env


# ---------------------------------------------------------------------------------------------
# Peak memory of a CLI run
# ---------------------------------------------------------------------------------------------

_MEASURE = (
    "import json, resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(json.dumps({'code': p.returncode, 'stdout': p.stdout, 'stderr': p.stderr,\n"
    "                  'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
)


@dataclass
class Measured:
    code: int
    stdout: str
    stderr: str
    maxrss_mb: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_measured(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> Measured:
    """Run `cdpio ARGS` in a fresh wrapper process and return its peak RSS
    (ru_maxrss of the wrapper's only child: the CLI)."""
    from tests.cli_helpers import _SCRUB

    full_env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    full_env["COLUMNS"] = "200"
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "cdpio_cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    data = json.loads(proc.stdout)
    return Measured(data["code"], data["stdout"], data["stderr"], data["maxrss_kb"] / 1024)
