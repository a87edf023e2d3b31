"""A raw HTTP sink for the benchmarks: not the sandbox, no framework.

    python benchmarks/raw_sink.py            # prints "listening on http://127.0.0.1:PORT"

A minimal asyncio HTTP/1.1 server (keep-alive, Content-Length bodies, gzip
accepted) that answers every request `200 {}` and counts each delivered
message on arrival, by its key:

- Segment batches (`.../v1/batch`) and single calls: each message's `messageId`;
- Customer.io Track v2 (`.../api/v2/batch`, `.../api/v2/entity`): each
  operation's `timestamp` (the benchmark events have one distinct timestamp
  each, and identify operations carry no id);
- Customer.io Track v1 (`.../api/v1/customers/...`): `_timestamp` (identify),
  `timestamp` (events), `data.timestamp` (page views).

Control endpoints (not counted): `POST /_reset` zeroes the counts and the CPU
clock; `GET /_stats` returns the counts per key, the request count and this
process's CPU seconds per request since the reset, so a benchmark can show
that the sink is not what caps a client; `/_sandbox/*` (health, the info cdpio
asks a sandbox URL for) answers `200 {}` uncounted.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
import time
from collections import Counter

import orjson

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.keys: Counter = Counter()
        self.requests = 0
        self.unkeyed = 0
        self.cpu0 = time.process_time()

    def snapshot(self) -> dict:
        cpu = time.process_time() - self.cpu0
        return {
            "requests": self.requests,
            "unkeyed": self.unkeyed,
            "cpu_seconds": round(cpu, 4),
            "cpu_us_per_request": round(cpu / self.requests * 1e6, 1) if self.requests else None,
            "keys": dict(self.keys),
        }


STATS = Stats()


def _count(path: str, body: bytes) -> None:
    data = orjson.loads(body) if body else None
    keys = STATS.keys
    if path.endswith("/v1/batch") and type(data) is dict:  # Segment batch
        for m in data.get("batch") or ():
            keys[m.get("messageId")] += 1
    elif path.endswith("/api/v2/batch") and type(data) is dict:  # Track v2 batch
        for op in data.get("batch") or ():
            keys[op.get("timestamp")] += 1
    elif path.endswith("/api/v2/entity") and type(data) is dict:
        keys[data.get("timestamp")] += 1
    elif "/api/v1/" in path and type(data) is dict:  # Track v1, one call per event
        key = data.get("_timestamp", data.get("timestamp"))
        if key is None and type(data.get("data")) is dict:
            key = data["data"].get("timestamp")
        keys[key] += 1
    elif "/v1/" in path and type(data) is dict:  # Segment single call
        keys[data.get("messageId")] += 1
    else:
        STATS.unkeyed += 1


class Conn(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buf = bytearray()
        self.head: tuple | None = None  # (method, path, length, gzip)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.head is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(buf[:end]).split(b"\r\n")
                del buf[: end + 4]
                method, path, _ = lines[0].split(b" ", 2)
                length, gz = 0, False
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"content-encoding" and b"gzip" in value.lower():
                        gz = True
                    elif name == b"transfer-encoding":
                        self.transport.write(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\n\r\n")
                        self.transport.close()
                        return
                self.head = (method.decode(), path.decode(), length, gz)
            method, path, length, gz = self.head
            if len(buf) < length:
                return
            body = bytes(buf[:length])
            del buf[:length]
            self.head = None
            self.transport.write(self.respond(method, path, gzip.decompress(body) if gz else body))

    def respond(self, method: str, path: str, body: bytes) -> bytes:
        if path.startswith("/_reset"):
            STATS.reset()
            return OK
        if path.startswith("/_stats"):
            out = orjson.dumps(STATS.snapshot(), option=orjson.OPT_NON_STR_KEYS)
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                len(out),
                out,
            )
        if path.startswith("/_sandbox/"):
            # health, and the info `--sandbox-url` asks a sandbox for: not a delivery.
            return OK
        STATS.requests += 1
        _count(path, body)
        return OK


async def main(port: int = 0) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Conn, "127.0.0.1", port, backlog=512)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on http://{host}:{port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    except KeyboardInterrupt:
        pass
