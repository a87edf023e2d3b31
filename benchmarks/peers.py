"""The other side of each comparison, one child process per run.

    python benchmarks/peers.py MODE SINK_URL FILE

MODE:
  segment-default  segment-analytics-python as shipped: Client(write_key, host)
                   (100 per batch, 1 upload thread, queue of 10,000; the driver
                   waits while the queue is full, so nothing is dropped)
  segment-tuned    the same client tuned: upload_size=100, thread=4, a queue
                   that holds the whole file
  cio-calls        the `customerio` client, one Track v1 call per event
                   (identify / track / pageview), its defaults
  cio-batch        the client's own batch() (Track v2), 100 operations per
                   request, one thread (how the client is used as shipped)
  cio-batch4       batch() with 100 operations per request from 4 threads
                   sharing the client's pooled session
  floor            not a client: read the file, parse and re-serialise each
                   line with orjson, cut batches of 100 and POST them over one
                   keep-alive connection (http.client) -- what this machine
                   can do at best in one Python process

Each run prints one JSON line ({"sent": N}); the harness times the process
from the outside and counts what arrived at the sink.
"""

from __future__ import annotations

import sys
from datetime import datetime

import orjson

WRITE_KEY = "cdpioSandboxWriteKey0000000000001"
SITE_ID = "c0ffee0000000000000a"
TRACK_API_KEY = "c0ffee0000000000000b"
BATCH = 100


def _unix(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())


def segment(url: str, path: str, tuned: bool) -> int:
    import time

    from segment.analytics import Client

    errors: list = []
    kwargs = dict(upload_size=BATCH, thread=4, max_queue_size=10_000_000) if tuned else {}
    client = Client(WRITE_KEY, host=url + "/segment", on_error=lambda e, b: errors.append(len(b)), **kwargs)
    q = client.queue
    sent = 0
    with open(path, "rb") as fh:
        for line in fh:
            m = orjson.loads(line)
            ts = datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
            while q.full():  # the default queue would drop the rest
                time.sleep(0.0005)
            common = dict(
                user_id=m.get("userId"),
                anonymous_id=m.get("anonymousId"),
                context=m.get("context"),
                timestamp=ts,
                message_id=m.get("messageId"),
            )
            kind = m["type"]
            if kind == "track":
                client.track(event=m["event"], properties=m.get("properties") or {}, **common)
            elif kind == "identify":
                client.identify(traits=m.get("traits") or {}, **common)
            elif kind == "page":
                client.page(name=m.get("name"), properties=m.get("properties") or {}, **common)
            else:
                raise SystemExit(f"unexpected type {kind}")
            sent += 1
    client.flush()
    client.join()
    if errors:
        raise SystemExit(f"{len(errors)} batches failed")
    return sent


def _cio_client(url: str):
    from urllib.parse import urlsplit

    from customerio import CustomerIO

    parts = urlsplit(url)
    cio = CustomerIO(SITE_ID, TRACK_API_KEY, host=parts.hostname, port=parts.port)
    # The client builds https:// URLs only; the sink speaks plain http.
    cio.base_url = url + "/track/api/v1"
    send = cio.send_request
    cio.send_request = lambda method, u, data: send(method, u.replace("https://", "http://", 1), data)
    return cio


def _operation(m: dict) -> dict:
    """The Track v2 operation a hand-written integration builds per event."""
    ts, user, kind = _unix(m["timestamp"]), m["userId"], m["type"]
    if kind == "identify":
        return {
            "type": "person",
            "action": "identify",
            "identifiers": {"id": user},
            "attributes": m.get("traits") or {},
            "timestamp": ts,
        }
    if kind == "page":
        props = m.get("properties") or {}
        return {
            "type": "person",
            "action": "page",
            "identifiers": {"id": user},
            "name": props.get("url"),
            "id": m.get("messageId"),
            "attributes": props,
            "timestamp": ts,
        }
    return {
        "type": "person",
        "action": "event",
        "identifiers": {"id": user},
        "name": m["event"],
        "id": m.get("messageId"),
        "attributes": m.get("properties") or {},
        "timestamp": ts,
    }


def cio_batch(url: str, path: str, threads: int) -> int:
    cio = _cio_client(url)
    sent = 0

    def batches():
        nonlocal sent
        ops = []
        with open(path, "rb") as fh:
            for line in fh:
                ops.append(_operation(orjson.loads(line)))
                sent += 1
                if len(ops) == BATCH:
                    yield ops
                    ops = []
        if ops:
            yield ops

    if threads == 1:
        for ops in batches():
            cio.batch(ops)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            for _f in list(pool.map(cio.batch, batches())):
                pass
    return sent


def cio_calls(url: str, path: str) -> int:
    cio = _cio_client(url)
    sent = 0
    with open(path, "rb") as fh:
        for line in fh:
            m = orjson.loads(line)
            ts, user, kind = _unix(m["timestamp"]), m["userId"], m["type"]
            if kind == "identify":
                cio.identify(id=user, _timestamp=ts, **(m.get("traits") or {}))
            elif kind == "page":
                props = m.get("properties") or {}
                cio.pageview(user, props.get("url"), timestamp=ts, **props)
            else:
                cio.track(user, m["event"], data=m.get("properties"), id=m.get("messageId"), timestamp=ts)
            sent += 1
    return sent


def floor(url: str, path: str) -> int:
    import base64
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
    }
    target = parts.path.rstrip("/") + "/segment/v1/batch"
    loads, dumps = orjson.loads, orjson.dumps
    sent = 0
    items: list[bytes] = []

    def post() -> None:
        conn.request("POST", target, b'{"batch":[' + b",".join(items) + b"]}", headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"HTTP {resp.status}")
        items.clear()

    with open(path, "rb") as fh:
        for line in fh:
            items.append(dumps(loads(line)))
            sent += 1
            if len(items) == BATCH:
                post()
    if items:
        post()
    return sent


def main() -> None:
    mode, url, path = sys.argv[1:4]
    if mode in ("segment-default", "segment-tuned"):
        sent = segment(url, path, tuned=mode == "segment-tuned")
    elif mode == "cio-calls":
        sent = cio_calls(url, path)
    elif mode in ("cio-batch", "cio-batch4"):
        sent = cio_batch(url, path, threads=4 if mode == "cio-batch4" else 1)
    elif mode == "floor":
        sent = floor(url, path)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(orjson.dumps({"sent": sent}).decode())


if __name__ == "__main__":
    main()
