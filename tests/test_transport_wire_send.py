"""wire.py writes a request's head and body with one `sendmsg` (no copy of the
body behind the head); a body the socket takes only in part is finished
byte for byte."""

from __future__ import annotations

import socket
import threading
import time

from cdpio_cli import transport
from cdpio_cli.transport import RequestSpec


def _serve_once(listener: socket.socket, got: list[bytes], delay: float) -> None:
    conn, _ = listener.accept()
    with conn:
        time.sleep(delay)  # a slow reader: the client's first write cannot take the whole body
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:])
        while len(body) < length:
            body += conn.recv(1 << 20)
        got.append(head + b"\r\n\r\n" + body)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")


def test_a_body_sent_in_parts_arrives_whole_and_in_order():
    body = bytes(range(256)) * (48 * 1024)  # 12 MB: more than the loopback's socket buffers
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        got: list[bytes] = []
        server = threading.Thread(target=_serve_once, args=(listener, got, 0.3), daemon=True)
        server.start()
        with transport.make_client(20.0) as client:
            assert client.wire is not None
            spec = RequestSpec("POST", f"http://127.0.0.1:{port}/v1/batch", {"Content-Type": "x/y"}, body)
            attempt = transport.send(client, spec)
        server.join(20)
    assert attempt.status == 200
    (request,) = got
    head, _, received = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/batch HTTP/1.1\r\n") and b"\r\nContent-Length: %d" % len(body) in head
    assert received == body
