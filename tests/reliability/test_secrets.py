"""Secrets sweep: every command, in every output mode, on success and on the
error paths, with distinctive credentials (some with stray whitespace).  The
credentials -- raw, cleaned, or in their Basic-auth base64 form -- appear
nowhere: not on stdout or stderr, not in any file cdpio writes (JUnit, GitHub
step summary, dead-letter file, checkpoint), not in the sandbox's request log.

Masks (`[20 chars, ends 9f3a]`) may show the last four characters, so we look
for each value minus its last four as well as the whole value.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.runner import EmbeddedSandbox
from tests.cli_helpers import write_config
from tests.reliability._support import closed_port, msgs, run_all, write_ndjson

# A long sweep (the secrets sweep: every command in every output mode and error path): .ci/run runs it with -m slow.
pytestmark = pytest.mark.slow

# Clean values, in each service's format (so format checks pass and live checks
# get as far as the service), with a distinctive middle that cannot occur by chance.
SECRETS = {
    "WK": "wkQz7SECRETcdpioWriteKey4821",
    "TOKEN": "sgp_QZ7SECRETcdpioPublicApiTok",
    "SID": "5ec2e7a1b2c3d4e5f6a7",
    "TKEY": "5ec2e7f0e1d2c3b4a596",
    "AKEY": "5ec2e7aa11bb22cc33dd44ee55ff6677",
    "PKEY": "pk_us_QZ7SECRETcdpioPipeline55",
}
# What the environment holds: stray whitespace, a newline, a zero-width space,
# quotes -- what users paste.
RAW_ENV = {
    "WK": f"  {SECRETS['WK']}\n",
    "TOKEN": SECRETS["TOKEN"],
    "SID": f"{SECRETS['SID']} ",
    "TKEY": f"\t{SECRETS['TKEY']}\r\n",
    "AKEY": f"\u200b{SECRETS['AKEY']}",
    "PKEY": f'"{SECRETS["PKEY"]}"',
}

CONFIG = """\
version: 1
segment:
  write_key: ${WK}
  public_api_token: ${TOKEN}
customerio:
  site_id: ${SID}
  track_api_key: ${TKEY}
  app_api_key: ${AKEY}
  pipelines_api_key: ${PKEY}
verify: {timeout: 3s, poll_interval: 200ms}
replay: {rate: 1000, max_retries: 1, timeout: 3s}
"""


def forbidden() -> list[str]:
    out = set()
    for value in SECRETS.values():
        out.add(value)
        out.add(value[:-4])  # more than a mask ever shows
    for raw in RAW_ENV.values():
        out.add(raw.strip())
    # Basic auth: Segment `write_key:`, Customer.io Track `site_id:api_key`.
    for user, password in (
        (SECRETS["WK"], ""),
        (SECRETS["SID"], SECRETS["TKEY"]),
        (SECRETS["PKEY"], ""),
        (SECRETS["AKEY"], ""),
    ):
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        out.update({token, token.rstrip("=")[:-4]})
    return sorted(out, key=len, reverse=True)


def assert_no_secret(where: str, text: str) -> None:
    for value in forbidden():
        assert value not in text, f"credential material {value[:3]}... found in {where}"


@pytest.fixture(scope="module")
def secret_sandbox():
    """A sandbox that accepts exactly these credentials."""
    opts = SandboxOptions(
        write_key=SECRETS["WK"],
        site_id=SECRETS["SID"],
        track_api_key=SECRETS["TKEY"],
        app_api_key=SECRETS["AKEY"],
        pipelines_api_key=SECRETS["PKEY"],
        public_api_token=SECRETS["TOKEN"],
    )
    with EmbeddedSandbox(opts) as sb:
        yield sb


@pytest.fixture(scope="module")
def other_sandbox():
    """A sandbox with its default keys: every one of ours is rejected (401 paths)."""
    with EmbeddedSandbox(SandboxOptions()) as sb:
        yield sb


@pytest.fixture(scope="module")
def rejecting_sandbox():
    """Accepts our keys but answers 400 to every request: everything is dead-lettered."""
    opts = SandboxOptions(
        write_key=SECRETS["WK"],
        site_id=SECRETS["SID"],
        track_api_key=SECRETS["TKEY"],
        app_api_key=SECRETS["AKEY"],
        pipelines_api_key=SECRETS["PKEY"],
        public_api_token=SECRETS["TOKEN"],
        fail_rate=1.0,
        fail_status=400,
    )
    with EmbeddedSandbox(opts) as sb:
        yield sb


COMMANDS = {
    "check-keys": ["check-keys", "--timeout", "3"],
    "send-test": ["send-test", "--verify", "--timeout", "3s"],
    "verify": ["verify", "--user-id", "somebody", "--within", "1s"],
    "doctor": ["doctor"],
    "replay-segment": ["replay", "{src}", "--dead-letter", "{dir}/dl.ndjson"],
    "replay-customerio": ["replay", "{src}", "--route", "customerio", "--dead-letter", "{dir}/dl.ndjson"],
    "replay-pipelines": ["replay", "{src}", "--route", "pipelines", "--dead-letter", "{dir}/dl.ndjson"],
    "lint": ["lint", "{src}"],
    "explain": ["explain", "{src}"],
}
# Where the services are: ours (success), another workspace (401), nobody
# (connection refused), and one that rejects every request (dead letters).
TARGETS = ["ok", "rejected", "refused", "failing"]


def _job(tmp: Path, command: str, target: str, sandboxes: dict, every_mode: bool):
    work = tmp / f"{command}-{target}-{'all' if every_mode else 'table'}"
    work.mkdir()
    write_config(work, CONFIG)
    src = write_ndjson(work / "in.ndjson", msgs(12, prefix="s"))
    url = {
        "ok": sandboxes["ok"].url,
        "rejected": sandboxes["rejected"].url,
        "refused": f"http://127.0.0.1:{closed_port()}",
        "failing": sandboxes["failing"].url,
    }[target]
    args = [a.format(src=src, dir=work) for a in COMMANDS[command]]
    env = dict(RAW_ENV)
    head = ["--sandbox-url", url]
    if every_mode:
        # JSON on stdout, the verbose table and GitHub annotations on stderr,
        # a JUnit file and a step summary, all at once.
        head += ["--json", "--verbose", "--junit", str(work / "report.xml")]
        env.update({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(work / "summary.md")})
    return work, (tuple(head + args), {"cwd": work, "env": env, "timeout": 60})


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, secret_sandbox, other_sandbox, rejecting_sandbox):
    tmp = tmp_path_factory.mktemp("secrets")
    sandboxes = {"ok": secret_sandbox, "rejected": other_sandbox, "failing": rejecting_sandbox}
    jobs, dirs = {}, {}
    for command in COMMANDS:
        for target in TARGETS:
            if command in ("lint", "explain") and target != "ok":
                continue  # offline commands: one target is enough
            modes = (True, False) if target == "ok" else (True,)
            for every_mode in modes:
                key = (command, target, every_mode)
                dirs[key], jobs[key] = _job(tmp, command, target, sandboxes, every_mode)
    results = run_all(jobs)
    return results, dirs


SWEEP = [
    (c, t, m)
    for c in COMMANDS
    for t in TARGETS
    for m in ((True, False) if t == "ok" else (True,))
    if not (c in ("lint", "explain") and t != "ok")
]


@pytest.mark.parametrize(
    "command,target,every_mode", SWEEP, ids=[f"{c}-{t}-{'all-modes' if m else 'table'}" for c, t, m in SWEEP]
)
def test_no_credential_anywhere(sweep, command, target, every_mode):
    results, dirs = sweep
    res, work = results[(command, target, every_mode)], dirs[(command, target, every_mode)]
    assert res is not None, "hung"
    assert "Traceback" not in res.output and "internal error" not in res.stderr, res.stderr
    assert_no_secret("stdout", res.stdout)
    assert_no_secret("stderr", res.stderr)
    written = [p for p in work.rglob("*") if p.is_file() and p.name not in ("cdpio.yaml", "in.ndjson")]
    for path in written:
        assert_no_secret(path.name, path.read_text(encoding="utf-8", errors="replace"))
    if every_mode:
        json.loads(res.stdout)  # still one clean JSON document
        assert (work / "report.xml").exists()
        if command not in ("lint", "explain"):
            assert (work / "summary.md").exists()
    # The paths really were taken (an exit code per target, by the contract).
    expected = {"ok": {0}, "rejected": {3}, "refused": {4}, "failing": {1, 3, 4}}[target]
    if command in ("lint", "explain"):
        expected = {0}
    elif command == "verify" and target == "ok":
        expected = {1}  # nobody called `somebody` exists
    elif command in ("replay-segment", "replay-pipelines") and target == "rejected":
        expected = {0}  # both answer 200 to unknown keys (silent drop)
    elif command.startswith("replay") and target == "failing":
        expected = {1}  # all in the dead-letter file
    assert res.code in expected, (res.code, res.stderr[-2000:])
    if command.startswith("replay") and target == "failing":
        dead = (work / "dl.ndjson").read_text()
        assert len(dead.splitlines()) == 12  # every message, with its reason


@pytest.mark.parametrize(
    "which",
    [
        "ok",
        "rejected",
        "failing",
    ],
)
def test_the_sandbox_request_logs_hold_no_credential(sweep, which, secret_sandbox, other_sandbox, rejecting_sandbox):
    sb = {"ok": secret_sandbox, "rejected": other_sandbox, "failing": rejecting_sandbox}[which]
    log = httpx.get(sb.url + "/_sandbox/requests").text
    deliveries = httpx.get(sb.url + "/_sandbox/deliveries").text
    assert json.loads(log)["total"] > 0
    assert "authorization" not in log.lower()
    assert_no_secret("/_sandbox/deliveries", deliveries)
    assert_no_secret("/_sandbox/requests", log)


def test_verbose_never_prints_authorization_headers(sweep):
    results, _ = sweep
    for key, res in results.items():
        if res is not None and key[2]:
            assert "authorization:" not in res.stderr.lower(), key
            assert "basic " not in res.output.lower() or "basic [redacted]" in res.output.lower(), key
