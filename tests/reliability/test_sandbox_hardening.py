"""The sandbox under attack (issue 12, findings 9, 3 and 10): credentials it
was given, its control endpoints, its request log, `--record` on a full disk,
huge and gzip-bombed request bodies, and NaN flags.  See docs/sandbox.md.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import textwrap

import httpx
import pytest

from cdpio_cli.sandbox import defaults
from tests.cli_helpers import run_cli, write_config
from tests.reliability._support import assert_clean_failure, one_error_line, run_all

HTTP = httpx.Client(timeout=30)
USER_WRITE_KEY = "wkUSERrealWriteKey0123456789"
USER_SITE_ID = "5ec2e7a1b2c3d4e5f6a7"
USER_TOKEN = "sgp_USERrealPublicApiToken42"


def _public(sb, path: str, token: str) -> httpx.Response:
    return HTTP.get(sb.url + "/segment-api" + path, headers={"authorization": f"Bearer {token}"})


def test_public_api_shows_your_credentials_only_to_your_token(sandbox_factory):
    # Your credentials, the default token (the banner prints it): the write key
    # and site id never come back.
    sb = sandbox_factory(write_key=USER_WRITE_KEY, site_id=USER_SITE_ID)
    answers = [
        _public(sb, path, defaults.PUBLIC_API_TOKEN)
        for path in (
            "/sources",
            f"/sources/{defaults.SEGMENT_SOURCE_ID}",
            f"/sources/{defaults.SEGMENT_SOURCE_ID}/connected-destinations",
            "/destinations",
        )
    ]
    for r in answers:
        assert r.status_code == 200
        assert USER_WRITE_KEY not in r.text and USER_WRITE_KEY[:-4] not in r.text
        assert USER_SITE_ID not in r.text and USER_SITE_ID[:-4] not in r.text
    assert answers[0].json()["data"]["sources"][0]["writeKeys"] == []  # as for a token without permission
    site = answers[3].json()["data"]["destinations"][0]["settings"]["siteId"]
    assert site == f"[{len(USER_SITE_ID)} chars, ends {USER_SITE_ID[-4:]}]"

    # Your own token sees them: check-keys can still match the write key to its source.
    sb = sandbox_factory(write_key=USER_WRITE_KEY, site_id=USER_SITE_ID, public_api_token=USER_TOKEN)
    assert _public(sb, "/sources", USER_TOKEN).json()["data"]["sources"][0]["writeKeys"] == [USER_WRITE_KEY]
    dest = _public(sb, "/destinations", USER_TOKEN).json()["data"]["destinations"][0]
    assert dest["settings"]["siteId"] == USER_SITE_ID


def test_embedded_sandbox_still_matches_your_write_key_to_its_source(tmp_path):
    # `--sandbox` with your credentials and no token: the run's own client gets a
    # private token, so check-keys still proves the source and its destination.
    write_config(
        tmp_path,
        f"segment:\n  write_key: {USER_WRITE_KEY}\n"
        f"customerio:\n  site_id: {USER_SITE_ID}\n  track_api_key: 5ec2e7f0e1d2c3b4a596\n",
    )
    res = run_cli("--sandbox", "check-keys", "--json", cwd=tmp_path, timeout=60)
    checks = {c["id"]: c["status"] for c in res.json["checks"] if c["id"] in ("segment.source", "segment.destination")}
    assert checks == {"segment.source": "passed", "segment.destination": "passed"}, res.stdout
    assert USER_WRITE_KEY not in res.output and USER_SITE_ID not in res.output


def test_request_log_never_holds_a_credential(sandbox_factory):
    sb = sandbox_factory(write_key=USER_WRITE_KEY, site_id=USER_SITE_ID)
    key = USER_WRITE_KEY
    for path in (
        f"/segment-cdn/v1/projects/{key}/settings",  # the settings lookup
        f"//segment-cdn/v1/projects/{key}/settings",  # a doubled slash
        f"/segment/v1/projects/{key}/settings",  # the wrong prefix
        f"/segment-cdn/v1/projects/x/{key}/settings",
        f"/track/api/v1/customers/{USER_SITE_ID}",
    ):
        HTTP.get(sb.url + path)
    HTTP.post(sb.url + "/segment/v1/track", auth=(key, ""), json={"userId": "u", "event": "E"})
    log = HTTP.get(sb.url + "/_sandbox/requests").text
    assert json.loads(log)["total"] == 6
    for secret in (key, USER_SITE_ID):
        assert secret not in log and secret[:-4] not in log, log


def test_control_endpoints_refuse_rebinding_hosts_and_cross_origin_posts(sandbox):
    HTTP.post(sandbox.url + "/segment/v1/track", auth=(defaults.WRITE_KEY, ""), json={"userId": "u1", "event": "Kept"})
    port = sandbox.port

    def received() -> int:
        return HTTP.get(sandbox.url + "/_sandbox/deliveries").json()["summary"]["received"]

    # DNS rebinding: the attacker's name, re-pointed at 127.0.0.1.
    for host in ("evil.example", f"evil.example:{port}", f"localhost.evil.example:{port}", f"127.0.0.1:{port + 1}"):
        r = HTTP.post(sandbox.url + "/_sandbox/reset", headers={"host": host})
        assert r.status_code == 421 and "DNS rebinding" in r.json()["message"], (host, r.text)
        assert HTTP.get(sandbox.url + "/_sandbox/requests", headers={"host": host}).status_code == 421
        assert HTTP.get(sandbox.url + "/", headers={"host": host}).status_code == 421
    # A cross-origin form POST from a page elsewhere.
    for origin in ("http://evil.example", "null", f"https://127.0.0.1:{port}", f"http://localhost:{port + 1}"):
        r = HTTP.post(sandbox.url + "/_sandbox/reset", headers={"origin": origin})
        assert r.status_code == 403 and origin in r.json()["message"], (origin, r.text)
    assert received() == 1  # nothing was reset

    # The sandbox's own names, with no Origin (curl, the CLI) or its own.
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert HTTP.get(sandbox.url + "/_sandbox/health", headers={"host": host}).status_code == 200
    assert HTTP.post(sandbox.url + "/_sandbox/reset", headers={"origin": f"http://localhost:{port}"}).status_code == 200
    assert received() == 0
    # The emulated services answer under any name (SDKs in containers).
    r = HTTP.post(
        sandbox.url + "/segment/v1/track",
        auth=(defaults.WRITE_KEY, ""),
        headers={"host": "host.docker.internal:8975"},
        json={"userId": "u1", "event": "E"},
    )
    assert r.status_code == 200


def _start_sandbox(*args: str, max_file_bytes: int) -> tuple[subprocess.Popen, str]:
    """`cdpio sandbox` under a file-size limit (soft; the hard limit stays unlimited)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDPIO_SANDBOX_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    argv = [sys.executable, "-m", "cdpio_cli", "sandbox", "--port", "0", *args]
    limited = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({max_file_bytes}, resource.RLIM_INFINITY)); "
        f"os.execv(sys.executable, {argv!r})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", limited], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    url = re.search(r"listening on (http://\S+)", "".join(lines))
    if not url:
        proc.kill()
        pytest.fail("".join(lines) + proc.stderr.read())
    return proc, url.group(1)


def test_record_on_a_full_disk_is_503_and_the_retry_is_accepted(tmp_path):
    record = tmp_path / "accepted.ndjson"
    # The file-size limit stands in for a full disk (a real write error, EFBIG);
    # raising it later is space freed.
    proc, url = _start_sandbox("--record", str(record), max_file_bytes=1500)
    ids = [f"msg-{i}" for i in range(6)]
    failed = []
    try:
        for mid in ids:
            body = {"userId": "u1", "event": "Order Completed", "messageId": mid, "properties": {"pad": "x" * 200}}
            r = HTTP.post(url + "/segment/v1/track", auth=(defaults.WRITE_KEY, ""), json=body)
            if r.status_code != 200:
                assert r.status_code == 503, r.text
                assert r.json()["code"] == "record_failed" and str(record) in r.json()["message"]
                assert int(r.headers["retry-after"]) >= 1
                # Never half a line: what is in the file is whole messages.
                text = record.read_bytes()
                assert text.endswith(b"\n") and all(json.loads(line) for line in text.splitlines())
                failed.append(body)
        assert failed, "the file-size limit never hit"
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        for body in failed:  # the client's retry
            r = HTTP.post(url + "/segment/v1/track", auth=(defaults.WRITE_KEY, ""), json=body)
            assert r.status_code == 200, r.text
        summary = HTTP.get(url + "/_sandbox/deliveries").json()["summary"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert summary["delivered"] == 6 and summary["drop_reasons"] == {}, summary
    recorded = [json.loads(line)["messageId"] for line in record.read_text().splitlines()]
    assert sorted(recorded) == ids  # each once: none lost, none twice
    assert (record.stat().st_mode & 0o077) == 0  # event data: 0600
    assert "Traceback" not in err and "record" in err, err


_MEMORY_PROBE = textwrap.dedent("""
    import gzip, json, resource, httpx
    from cdpio_cli.sandbox import defaults
    from cdpio_cli.sandbox.runner import EmbeddedSandbox

    MB = 1 << 20
    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

    # 300 MB of zeros as 30 concatenated gzip members: about 300 KB on the wire.
    bomb = gzip.compress(bytes(10 * MB), 9) * 30
    def hundred_mb():
        for _ in range(100):
            yield b"x" * MB

    out = {"bomb_bytes": len(bomb)}
    with EmbeddedSandbox() as sb:
        c = httpx.Client(timeout=60)
        auth = (defaults.WRITE_KEY, "")
        gz = {"content-encoding": "gzip", "content-type": "application/json"}
        ok = gzip.compress(json.dumps({"batch": [{"type": "track", "userId": "g", "event": "Gz"}]}).encode())
        out["small_gzip"] = c.post(sb.url + "/segment/v1/batch", content=ok, headers=gz, auth=auth).status_code
        base = rss_mb()
        def post(path, **kw):
            r = c.post(sb.url + path, auth=auth, **kw)
            return [r.status_code, r.json().get("code")]
        out["segment_bomb"] = post("/segment/v1/batch", content=bomb, headers=gz)
        out["pipelines_strict_bomb"] = post("/pipelines/v1/batch", content=bomb,
                                            headers={**gz, "x-strict-mode": "1"})
        out["pipelines_bomb"] = post("/pipelines/v1/batch", content=bomb, headers=gz)
        out["segment_chunked"] = post("/segment/v1/batch", content=hundred_mb())
        out["segment_declared"] = post("/segment/v1/track", content=hundred_mb(),
                                       headers={"content-length": str(100 * MB)})
        out["track_chunked"] = post("/track/api/v1/customers/u1", content=hundred_mb())
        out["growth_mb"] = rss_mb() - base
        out["summary"] = c.get(sb.url + "/_sandbox/deliveries").json()["summary"]
    print(json.dumps(out))
""")


def test_huge_and_gzip_bombed_bodies_are_refused_in_bounded_memory():
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["bomb_bytes"] < 500 * 1024  # under the batch limit on the wire
    # A 300 MB bomb and three 100 MB bodies; the old sandbox grew by over 600 MB.
    assert out["growth_mb"] < 150, out
    assert out["small_gzip"] == 200
    assert out["segment_bomb"] == [400, "request_too_large"]
    assert out["pipelines_strict_bomb"] == [400, "request_too_large"]
    assert out["pipelines_bomb"][0] == 200  # Pipelines: "200, but it will not go through"
    assert out["segment_chunked"] == [400, "request_too_large"]
    assert out["segment_declared"] == [400, "request_too_large"]
    assert out["track_chunked"] == [413, "request_too_large"]
    assert out["summary"]["drop_reasons"] == {"batch_too_large": 1}
    assert out["summary"]["delivered"] == 1


def test_nan_infinite_and_symlinked_sandbox_flags_are_usage_errors(tmp_path):
    target = tmp_path / "elsewhere.ndjson"
    link = tmp_path / "accepted.ndjson"
    link.symlink_to(target)
    cases = {
        ("--throttle", "nan"): "--throttle",
        ("--latency", "nan"): "--latency",
        ("--throttle", "inf"): "--throttle",
        ("--latency", "inf"): "--latency",
        ("--record", str(link)): "symbolic link",
    }
    results = run_all({args: (("sandbox", "--port", "0", *args), {"timeout": 20}) for args in cases})
    for args, named in cases.items():
        res = results[args]
        assert res is not None, f"`cdpio sandbox {' '.join(args)}` started serving"
        assert_clean_failure(res, 2)
        assert named in one_error_line(res)
    assert not target.exists()
