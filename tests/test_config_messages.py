# ruff: noqa: E501  (a table of whole error lines)
"""Every config problem keeps its wording: a table of configs and the one line each is reported as.

The expected lines were recorded from the pydantic models that config_schema.py replaced, so this
table holds the new checker to the old wording (types, bounds, literals, unions, unknown keys,
values from the environment); the lenient readings that are no problem are checked too.
"""

from __future__ import annotations

import dataclasses

import pytest

from cdpio_cli.config import load_config
from cdpio_cli.errors import ConfigError

ENV = {"RATE": "sk_live_secret_0123"}

REPORTED = [
    ("version: 2\n", "cdpio.yaml:1: version: must be 1 (see docs/configuration.md)"),
    ("version: '1'\n", "cdpio.yaml:1: version: must be 1 (see docs/configuration.md)"),
    ("version:\n", "cdpio.yaml:1: version: must be 1 (see docs/configuration.md)"),
    (
        "segment: 5\n",
        "cdpio.yaml:1: segment: must be a mapping (key: value lines) (got the number 5) (see docs/configuration.md)",
    ),
    (
        "segment:\n",
        "cdpio.yaml:1: segment: must be a mapping (key: value lines) (got nothing (an empty value)) (see docs/configuration.md)",
    ),
    (
        "segment: [a]\n",
        "cdpio.yaml:1: segment: must be a mapping (key: value lines) (got a list) (see docs/configuration.md)",
    ),
    ("segment: {region: mars}\n", "cdpio.yaml:1: segment.region: must be 'us' or 'eu' (see docs/configuration.md)"),
    ("segment: {region: EU}\n", "cdpio.yaml:1: segment.region: must be 'us' or 'eu' (see docs/configuration.md)"),
    ("segment: {region: 1}\n", "cdpio.yaml:1: segment.region: must be 'us' or 'eu' (see docs/configuration.md)"),
    (
        "segment: {write_key: 12345}\n",
        "cdpio.yaml:1: segment.write_key: must be text (got the number 12345) (see docs/configuration.md)",
    ),
    (
        "segment: {write_key: true}\n",
        "cdpio.yaml:1: segment.write_key: must be text (got true) (see docs/configuration.md)",
    ),
    (
        "segment: {write_key: [a]}\n",
        "cdpio.yaml:1: segment.write_key: must be text (got a list) (see docs/configuration.md)",
    ),
    (
        "segment: {write_key: 1.5}\n",
        "cdpio.yaml:1: segment.write_key: must be text (got the number 1.5) (see docs/configuration.md)",
    ),
    (
        "segment: {write_key: {a: b}}\n",
        "cdpio.yaml:1: segment.write_key: must be text (got a mapping) (see docs/configuration.md)",
    ),
    (
        "segment: {endpoint: 'ftp://x'}\n",
        "cdpio.yaml:1: segment.endpoint: 'ftp://x' is not a base URL; write it like https://api.segment.io (see docs/configuration.md)",
    ),
    (
        "segment: {endpoint: 5}\n",
        "cdpio.yaml:1: segment.endpoint: must be text (got the number 5) (see docs/configuration.md)",
    ),
    (
        "segment: {cdn_endpoint: 'http://'}\n",
        "cdpio.yaml:1: segment.cdn_endpoint: 'http://' is not a base URL; write it like https://api.segment.io (see docs/configuration.md)",
    ),
    ("segment: {wrte_key: x}\n", "cdpio.yaml:1: unknown key 'segment.wrte_key' (did you mean 'segment.write_key'?)"),
    (
        "segment: {zzzz: x}\n",
        "cdpio.yaml:1: unknown key 'segment.zzzz' (known keys here: write_key, region, public_api_token, endpoint, cdn_endpoint, public_api_endpoint)",
    ),
    (
        "customerio: {region: mars}\n",
        "cdpio.yaml:1: customerio.region: must be 'auto', 'us' or 'eu' (see docs/configuration.md)",
    ),
    (
        "customerio: {subscriptions: 5}\n",
        "cdpio.yaml:1: customerio.subscriptions: must be a list (got the number 5) (see docs/configuration.md)",
    ),
    (
        "customerio: {subscriptions: [1]}\n",
        "cdpio.yaml:1: customerio.subscriptions.0: must be a mapping (key: value lines) (got the number 1) (see docs/configuration.md)",
    ),
    (
        "customerio: {subscriptions: [{1: 1}]}\n",
        "cdpio.yaml:1: customerio.subscriptions.0.1.[key]: must be text (got the number 1) (see docs/configuration.md)",
    ),
    (
        "customerio: {subscriptions: {a: 1}}\n",
        "cdpio.yaml:1: customerio.subscriptions: must be a list (got a mapping) (see docs/configuration.md)",
    ),
    (
        "send_test: {user_id: 5}\n",
        "cdpio.yaml:1: send_test.user_id: must be text (got the number 5) (see docs/configuration.md)",
    ),
    (
        "send_test: {user_id:}\n",
        "cdpio.yaml:1: send_test.user_id: must be text (got nothing (an empty value)) (see docs/configuration.md)",
    ),
    (
        "send_test: {traits: 5}\n",
        "cdpio.yaml:1: send_test.traits: must be a mapping (key: value lines) (got the number 5) (see docs/configuration.md)",
    ),
    (
        "send_test: {traits: [a]}\n",
        "cdpio.yaml:1: send_test.traits: must be a mapping (key: value lines) (got a list) (see docs/configuration.md)",
    ),
    (
        "send_test: {traits:}\n",
        "cdpio.yaml:1: send_test.traits: must be a mapping (key: value lines) (got nothing (an empty value)) (see docs/configuration.md)",
    ),
    (
        "send_test: {traits: {1: a}}\n",
        "cdpio.yaml:1: send_test.traits.1.[key]: must be text (got the number 1) (see docs/configuration.md)",
    ),
    (
        "send_test: {events: 5}\n",
        "cdpio.yaml:1: send_test.events: must be a list (got the number 5) (see docs/configuration.md)",
    ),
    (
        "send_test: {events: [5]}\n",
        "cdpio.yaml:1: send_test.events.0: must be a mapping (key: value lines) (got the number 5) (see docs/configuration.md)",
    ),
    (
        "send_test: {events: [{type: bogus}]}\n",
        "cdpio.yaml:1: send_test.events: event 1 has type 'bogus'; expected one of identify, track, page, screen, group, alias (see docs/configuration.md)",
    ),
    (
        "send_test: {events: [{type: track}]}\n",
        "cdpio.yaml:1: send_test.events: event 1 is a track without an `event` name (see docs/configuration.md)",
    ),
    (
        "send_test: {events: [{type: identify}, {type: track, event: ''}]}\n",
        "cdpio.yaml:1: send_test.events: event 2 is a track without an `event` name (see docs/configuration.md)",
    ),
    (
        "send_test: {expect_status: 200}\n",
        "cdpio.yaml:1: send_test.expect_status: must be a list (got the number 200) (see docs/configuration.md)",
    ),
    (
        "send_test: {expect_status: [abc, 1.5, true, null]}\n",
        "cdpio.yaml: 3 problems: line 1: send_test.expect_status.0: must be a whole number (got the text 'abc') (see docs/configuration.md); line 1: send_test.expect_status.1: must be a valid integer, got a number with a fractional part (see docs/configuration.md); line 1: send_test.expect_status.3: must be a whole number (got nothing (an empty value)) (see docs/configuration.md)",
    ),
    (
        "send_test: {routes: [dumy]}\n",
        "cdpio.yaml:1: send_test.routes.0: must be 'segment', 'customerio' or 'pipelines' (see docs/configuration.md)",
    ),
    (
        "send_test: {routes: segment}\n",
        "cdpio.yaml:1: send_test.routes: must be a list (got the text 'segment') (see docs/configuration.md)",
    ),
    (
        "send_test: {routes: [5]}\n",
        "cdpio.yaml:1: send_test.routes.0: must be 'segment', 'customerio' or 'pipelines' (see docs/configuration.md)",
    ),
    (
        "send_test: {expect: 5}\n",
        "cdpio.yaml:1: send_test.expect: must be a mapping (key: value lines) (got the number 5) (see docs/configuration.md)",
    ),
    (
        "send_test: {expect: {segments: [1, a, 1.5, true, {a: 1}, null, 2.0]}}\n",
        "cdpio.yaml: 6 problems: line 1: send_test.expect.segments.2.int: must be a valid integer, got a number with a fractional part (see docs/configuration.md); line 1: send_test.expect.segments.2.str: must be text (got the number 1.5) (see docs/configuration.md); line 1: send_test.expect.segments.4.int: must be a whole number (got a mapping) (see docs/configuration.md); line 1: send_test.expect.segments.4.str: must be text (got a mapping) (see docs/configuration.md); line 1: send_test.expect.segments.5.int: must be a whole number (got nothing (an empty value)) (see docs/configuration.md); line 1: send_test.expect.segments.5.str: must be text (got nothing (an empty value)) (see docs/configuration.md)",
    ),
    (
        "send_test: {expect: {campaigns: x}}\n",
        "cdpio.yaml:1: send_test.expect.campaigns: must be a list (got the text 'x') (see docs/configuration.md)",
    ),
    ("send_test: {expect: {bogus: 1}}\n", "cdpio.yaml:1: unknown key 'send_test.expect.bogus'"),
    (
        "send_test: {bogus: 1}\n",
        "cdpio.yaml:1: unknown key 'send_test.bogus' (known keys here: user_id, traits, events, expect_status, routes, expect)",
    ),
    (
        "verify: {timeout: soon}\n",
        "cdpio.yaml:1: verify.timeout: 'soon' is not a duration; write it like 90s, 10m or 500ms (see docs/configuration.md)",
    ),
    (
        "verify: {timeout: -1}\n",
        "cdpio.yaml:1: verify.timeout: a duration cannot be negative (see docs/configuration.md)",
    ),
    (
        "verify: {timeout: true}\n",
        "cdpio.yaml:1: verify.timeout: expected a duration like 90s, 10m or 500ms (see docs/configuration.md)",
    ),
    (
        "verify: {timeout: [1]}\n",
        "cdpio.yaml:1: verify.timeout: [1] is not a duration; write it like 90s, 10m or 500ms (see docs/configuration.md)",
    ),
    (
        "verify: {timeout:}\n",
        "cdpio.yaml:1: verify.timeout: None is not a duration; write it like 90s, 10m or 500ms (see docs/configuration.md)",
    ),
    (
        "replay: {rate: -1}\n",
        "cdpio.yaml:1: replay.rate: must be greater than or equal to 0 (see docs/configuration.md)",
    ),
    (
        "replay: {rate: abc}\n",
        "cdpio.yaml:1: replay.rate: must be a number (got the text 'abc') (see docs/configuration.md)",
    ),
    (
        "replay: {rate: .nan}\n",
        "cdpio.yaml:1: replay.rate: must be greater than or equal to 0 (see docs/configuration.md)",
    ),
    (
        "replay: {rate:}\n",
        "cdpio.yaml:1: replay.rate: must be a number (got nothing (an empty value)) (see docs/configuration.md)",
    ),
    (
        "replay: {concurrency: 0}\n",
        "cdpio.yaml:1: replay.concurrency: must be greater than or equal to 1 (see docs/configuration.md)",
    ),
    (
        "replay: {concurrency: 65}\n",
        "cdpio.yaml:1: replay.concurrency: must be less than or equal to 64 (see docs/configuration.md)",
    ),
    (
        "replay: {concurrency: 1.5}\n",
        "cdpio.yaml:1: replay.concurrency: must be a valid integer, got a number with a fractional part (see docs/configuration.md)",
    ),
    (
        "replay: {concurrency: lots}\n",
        "cdpio.yaml:1: replay.concurrency: must be a whole number (got the text 'lots') (see docs/configuration.md)",
    ),
    (
        "replay: {concurrency:}\n",
        "cdpio.yaml:1: replay.concurrency: must be a whole number (got nothing (an empty value)) (see docs/configuration.md)",
    ),
    (
        "replay: {batch_size: 2501}\n",
        "cdpio.yaml:1: replay.batch_size: must be less than or equal to 2500 (see docs/configuration.md)",
    ),
    (
        "replay: {max_retries: -1}\n",
        "cdpio.yaml:1: replay.max_retries: must be greater than or equal to 0 (see docs/configuration.md)",
    ),
    (
        "replay: {max_retries: 21}\n",
        "cdpio.yaml:1: replay.max_retries: must be less than or equal to 20 (see docs/configuration.md)",
    ),
    (
        "replay: {route: dumy}\n",
        "cdpio.yaml:1: replay.route: must be 'segment', 'customerio' or 'pipelines' (see docs/configuration.md)",
    ),
    (
        "replay: {route: 5}\n",
        "cdpio.yaml:1: replay.route: must be 'segment', 'customerio' or 'pipelines' (see docs/configuration.md)",
    ),
    (
        "replay: {route:}\n",
        "cdpio.yaml:1: replay.route: must be 'segment', 'customerio' or 'pipelines' (see docs/configuration.md)",
    ),
    (
        "replay: {concurrency: lots, batch_size: 0, bogus: 1}\n",
        "cdpio.yaml: 3 problems: line 1: replay.concurrency: must be a whole number (got the text 'lots') (see docs/configuration.md); line 1: replay.batch_size: must be greater than or equal to 1 (see docs/configuration.md); line 1: unknown key 'replay.bogus' (known keys here: rate, concurrency, batch_size, max_retries, timeout, route)",
    ),
    (
        "replay: 5\n",
        "cdpio.yaml:1: replay: must be a mapping (key: value lines) (got the number 5) (see docs/configuration.md)",
    ),
    (
        "lint: {disable: x}\n",
        "cdpio.yaml:1: lint.disable: must be a list (got the text 'x') (see docs/configuration.md)",
    ),
    (
        "lint: {disable: [1, a]}\n",
        "cdpio.yaml:1: lint.disable.0: must be text (got the number 1) (see docs/configuration.md)",
    ),
    (
        "lint: {severity: {a: loud}}\n",
        "cdpio.yaml:1: lint.severity.a: must be 'error', 'warning', 'info' or 'off' (see docs/configuration.md)",
    ),
    (
        "lint: {severity: {a: error, b: off, c: 5}}\n",
        "cdpio.yaml: 2 problems: line 1: lint.severity.b: must be 'error', 'warning', 'info' or 'off' (see docs/configuration.md); line 1: lint.severity.c: must be 'error', 'warning', 'info' or 'off' (see docs/configuration.md)",
    ),
    (
        "lint: {severity: [a]}\n",
        "cdpio.yaml:1: lint.severity: must be a mapping (key: value lines) (got a list) (see docs/configuration.md)",
    ),
    (
        "lint: {severity: {1: error}}\n",
        "cdpio.yaml:1: lint.severity.1.[key]: must be text (got the number 1) (see docs/configuration.md)",
    ),
    ("lint: {plan: 5}\n", "cdpio.yaml:1: lint.plan: must be text (got the number 5) (see docs/configuration.md)"),
    (
        "sandbox: 5\n",
        "cdpio.yaml:1: sandbox: must be a mapping (key: value lines) (got the number 5) (see docs/configuration.md)",
    ),
    (
        "sandbox: 'yes'\n",
        "cdpio.yaml:1: sandbox: must be a mapping (key: value lines) (got the text 'yes') (see docs/configuration.md)",
    ),
    (
        "sandbox: {url: 'x'}\n",
        "cdpio.yaml:1: sandbox.url: 'x' is not a base URL; write it like https://api.segment.io (see docs/configuration.md)",
    ),
    (
        "sandbox: {enabled: 2}\n",
        "cdpio.yaml:1: sandbox.enabled: must be true or false (got the number 2) (see docs/configuration.md)",
    ),
    (
        "sandbox: {enabled: maybe}\n",
        "cdpio.yaml:1: sandbox.enabled: must be true or false (got the text 'maybe') (see docs/configuration.md)",
    ),
    (
        "sandbox: {region: xx, activity_data: all}\n",
        "cdpio.yaml: 2 problems: line 1: sandbox.region: must be 'us' or 'eu' (see docs/configuration.md); line 1: sandbox.activity_data: must be 'none' or 'properties' (see docs/configuration.md)",
    ),
    (
        "sandbox: {workspace: 5}\n",
        "cdpio.yaml:1: sandbox.workspace: must be text (got the number 5) (see docs/configuration.md)",
    ),
    (
        "sandbox:\n",
        "cdpio.yaml:1: sandbox: must be a mapping (key: value lines) (got nothing (an empty value)) (see docs/configuration.md)",
    ),
    (
        "bogus: 1\n",
        "cdpio.yaml:1: unknown key 'bogus' (known keys here: version, segment, customerio, send_test, verify, replay, lint, sandbox)",
    ),
    ("segmnt: {a: 1}\n", "cdpio.yaml:1: unknown key 'segmnt' (did you mean 'segment'?)"),
    ("sandbx: true\n", "cdpio.yaml:1: unknown key 'sandbx' (did you mean 'sandbox'?)"),
    ("Segment: {}\n", "cdpio.yaml:1: unknown key 'Segment' (did you mean 'segment'?)"),
    ("segment:\n  region: us\n  region: eu\n", "cdpio.yaml:3: key 'region' appears twice (keep one of them)"),
    (
        "replay:\n  concurrency: 1.5\n  rate: -2\n",
        "cdpio.yaml: 2 problems: line 2: replay.concurrency: must be a valid integer, got a number with a fractional part (see docs/configuration.md); line 3: replay.rate: must be greater than or equal to 0 (see docs/configuration.md)",
    ),
    (
        "segment: {write_key: x}\ncustomerio: {site_id: 1, track_api_key: 2}\n",
        "cdpio.yaml: 2 problems: line 2: customerio.site_id: must be text (got the number 1) (see docs/configuration.md); line 2: customerio.track_api_key: must be text (got the number 2) (see docs/configuration.md)",
    ),
    (
        "replay: {rate: '${RATE}'}\n",
        "cdpio.yaml:1: replay.rate: must be a number (got the value of RATE) (see docs/configuration.md)",
    ),
    (
        "replay: {concurrency: '${RATE}'}\n",
        "cdpio.yaml:1: replay.concurrency: must be a whole number (got the value of RATE) (see docs/configuration.md)",
    ),
    (
        "segment: {region: '${RATE}'}\n",
        "cdpio.yaml:1: segment.region: must be 'us' or 'eu' (see docs/configuration.md)",
    ),
    (
        "send_test: {expect_status: [1e3]}\n",
        "cdpio.yaml:1: send_test.expect_status.0: must be a whole number (got the text '1e3') (see docs/configuration.md)",
    ),
    (
        "send_test: {expect_status: [1.0e2]}\n",
        "cdpio.yaml:1: send_test.expect_status.0: must be a whole number (got the text '1.0e2') (see docs/configuration.md)",
    ),
    (
        "replay: {batch_size: 1e2}\n",
        "cdpio.yaml:1: replay.batch_size: must be a whole number (got the text '1e2') (see docs/configuration.md)",
    ),
    (
        "customerio: {site_id: 2020-01-01}\n",
        "cdpio.yaml:1: customerio.site_id: must be text (got date) (see docs/configuration.md)",
    ),
    (
        "replay: {rate: 2020-01-01}\n",
        "cdpio.yaml:1: replay.rate: must be a number (got date) (see docs/configuration.md)",
    ),
]


@pytest.mark.parametrize("text, expected", REPORTED)
def test_each_problem_is_worded_as_before(tmp_path, text, expected):
    path = tmp_path / "cdpio.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV)
    assert caught.value.one_line().replace(str(tmp_path) + "/", "") == expected
    assert "sk_live" not in caught.value.one_line()


# Lenient readings, as before: the repr of the sections each config writes, as plain data
# (exact types: 2.0 read as a whole number is 2, `true` read as a number is 1.0).
ACCEPTED = [
    ("version: 1\n", "{'version': 1}"),
    ("version: 1.0\n", "{'version': 1}"),
    ("version: true\n", "{'version': 1}"),
    (
        "segment: {write_key: null}\n",
        "{'segment': {'write_key': None, 'region': 'us', 'public_api_token': None, 'endpoint': None, 'cdn_endpoint': None, 'public_api_endpoint': None}}",
    ),
    (
        "segment: {endpoint: ''}\n",
        "{'segment': {'write_key': None, 'region': 'us', 'public_api_token': None, 'endpoint': None, 'cdn_endpoint': None, 'public_api_endpoint': None}}",
    ),
    (
        "segment: {endpoint: '  '}\n",
        "{'segment': {'write_key': None, 'region': 'us', 'public_api_token': None, 'endpoint': None, 'cdn_endpoint': None, 'public_api_endpoint': None}}",
    ),
    (
        "segment: {endpoint: 'https://a.b/c/'}\n",
        "{'segment': {'write_key': None, 'region': 'us', 'public_api_token': None, 'endpoint': 'https://a.b/c', 'cdn_endpoint': None, 'public_api_endpoint': None}}",
    ),
    (
        "customerio: {region: auto}\n",
        "{'customerio': {'site_id': None, 'track_api_key': None, 'app_api_key': None, 'pipelines_api_key': None, 'region': 'auto', 'track_endpoint': None, 'app_endpoint': None, 'pipelines_endpoint': None, 'subscriptions': None}}",
    ),
    (
        "customerio: {subscriptions: [{a: 1}]}\n",
        "{'customerio': {'site_id': None, 'track_api_key': None, 'app_api_key': None, 'pipelines_api_key': None, 'region': 'auto', 'track_endpoint': None, 'app_endpoint': None, 'pipelines_endpoint': None, 'subscriptions': [{'a': 1}]}}",
    ),
    (
        "send_test: {events:}\n",
        "{'send_test': {'user_id': 'cdpio-test-{run_id}', 'traits': {'email': 'cdpio+{run_id}@example.com', 'plan_type': 'Pro', 'is_trial': True}, 'events': None, 'expect_status': [200], 'routes': None, 'expect': None}}",
    ),
    (
        "send_test: {expect_status: ['200']}\n",
        "{'send_test': {'user_id': 'cdpio-test-{run_id}', 'traits': {'email': 'cdpio+{run_id}@example.com', 'plan_type': 'Pro', 'is_trial': True}, 'events': None, 'expect_status': [200], 'routes': None, 'expect': None}}",
    ),
    (
        "send_test: {routes: [segment, pipelines]}\n",
        "{'send_test': {'user_id': 'cdpio-test-{run_id}', 'traits': {'email': 'cdpio+{run_id}@example.com', 'plan_type': 'Pro', 'is_trial': True}, 'events': None, 'expect_status': [200], 'routes': ['segment', 'pipelines'], 'expect': None}}",
    ),
    (
        "send_test: {routes:}\n",
        "{'send_test': {'user_id': 'cdpio-test-{run_id}', 'traits': {'email': 'cdpio+{run_id}@example.com', 'plan_type': 'Pro', 'is_trial': True}, 'events': None, 'expect_status': [200], 'routes': None, 'expect': None}}",
    ),
    (
        "send_test: {expect:}\n",
        "{'send_test': {'user_id': 'cdpio-test-{run_id}', 'traits': {'email': 'cdpio+{run_id}@example.com', 'plan_type': 'Pro', 'is_trial': True}, 'events': None, 'expect_status': [200], 'routes': None, 'expect': None}}",
    ),
    ("verify: {timeout: '5'}\n", "{'verify': {'timeout': 5.0, 'poll_interval': 3.0}}"),
    ("verify: {timeout: 5m}\n", "{'verify': {'timeout': 300.0, 'poll_interval': 3.0}}"),
    ("verify: {poll_interval: 1h}\n", "{'verify': {'timeout': 90.0, 'poll_interval': 3600.0}}"),
    ("verify: {poll_interval: 1.5}\n", "{'verify': {'timeout': 90.0, 'poll_interval': 1.5}}"),
    (
        "replay: {rate: '5'}\n",
        "{'replay': {'rate': 5.0, 'concurrency': 4, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'segment'}}",
    ),
    (
        "replay: {rate: true}\n",
        "{'replay': {'rate': 1.0, 'concurrency': 4, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'segment'}}",
    ),
    (
        "replay: {rate: .inf}\n",
        "{'replay': {'rate': inf, 'concurrency': 4, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'segment'}}",
    ),
    (
        "replay: {rate: 0}\n",
        "{'replay': {'rate': 0.0, 'concurrency': 4, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'segment'}}",
    ),
    (
        "replay: {concurrency: 2.0}\n",
        "{'replay': {'rate': 50.0, 'concurrency': 2, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'segment'}}",
    ),
    (
        "replay: {concurrency: '3'}\n",
        "{'replay': {'rate': 50.0, 'concurrency': 3, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'segment'}}",
    ),
    (
        "replay: {concurrency: ' 3 '}\n",
        "{'replay': {'rate': 50.0, 'concurrency': 3, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'segment'}}",
    ),
    (
        "replay: {concurrency: true}\n",
        "{'replay': {'rate': 50.0, 'concurrency': 1, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'segment'}}",
    ),
    (
        "replay: {concurrency: '1.0'}\n",
        "{'replay': {'rate': 50.0, 'concurrency': 1, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'segment'}}",
    ),
    (
        "replay: {timeout: 0}\n",
        "{'replay': {'rate': 50.0, 'concurrency': 4, 'batch_size': 100, 'max_retries': 5, 'timeout': 0.0, 'route': 'segment'}}",
    ),
    (
        "replay: {timeout: 500ms}\n",
        "{'replay': {'rate': 50.0, 'concurrency': 4, 'batch_size': 100, 'max_retries': 5, 'timeout': 0.5, 'route': 'segment'}}",
    ),
    (
        "replay: {route: pipelines}\n",
        "{'replay': {'rate': 50.0, 'concurrency': 4, 'batch_size': 100, 'max_retries': 5, 'timeout': 10.0, 'route': 'pipelines'}}",
    ),
    ("lint: {plan: plan.yaml}\n", "{'lint': {'disable': [], 'severity': {}, 'plan': 'plan.yaml'}}"),
    (
        "sandbox: true\n",
        "{'sandbox': {'enabled': True, 'url': None, 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: false\n",
        "{'sandbox': {'enabled': False, 'url': None, 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: {url: 'http://127.0.0.1:9'}\n",
        "{'sandbox': {'enabled': True, 'url': 'http://127.0.0.1:9', 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: {url: 'http://127.0.0.1:9', enabled: false}\n",
        "{'sandbox': {'enabled': False, 'url': 'http://127.0.0.1:9', 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: {enabled: 'yes'}\n",
        "{'sandbox': {'enabled': True, 'url': None, 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: {enabled: 'on'}\n",
        "{'sandbox': {'enabled': True, 'url': None, 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: {enabled: 1}\n",
        "{'sandbox': {'enabled': True, 'url': None, 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: {enabled: 'True'}\n",
        "{'sandbox': {'enabled': True, 'url': None, 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: {enabled: 'f'}\n",
        "{'sandbox': {'enabled': False, 'url': None, 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: {enabled: 0.0}\n",
        "{'sandbox': {'enabled': False, 'url': None, 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "sandbox: {url: ''}\n",
        "{'sandbox': {'enabled': False, 'url': None, 'region': 'us', 'activity_data': 'none', 'workspace': None}}",
    ),
    (
        "verify: {timeout: 2m, poll_interval: 500ms}\nreplay: {timeout: 3s}\n",
        "{'verify': {'timeout': 120.0, 'poll_interval': 0.5}, 'replay': {'rate': 50.0, 'concurrency': 4, 'batch_size': 100, 'max_retries': 5, 'timeout': 3.0, 'route': 'segment'}}",
    ),
    (
        "segment: {write_key: !!binary aGVsbG8=}\n",
        "{'segment': {'write_key': 'hello', 'region': 'us', 'public_api_token': None, 'endpoint': None, 'cdn_endpoint': None, 'public_api_endpoint': None}}",
    ),
]


@pytest.mark.parametrize("text, expected", ACCEPTED)
def test_lenient_values_read_as_before(tmp_path, text, expected):
    path = tmp_path / "cdpio.yaml"
    path.write_text(text)
    read = dataclasses.asdict(load_config(path, env=ENV).config)
    written = [name for name in read if f"{name}:" in text]
    assert repr({name: read[name] for name in written}) == expected
