"""cdpio_cli.mapping against the Customer.io (Actions) destination's own unit tests.

tests/data/destination/ holds every test case of segmentio/action-destinations
`packages/destination-actions/src/destinations/customerio/__tests__` (commit in
manifest.json), transcribed as data: the input event (over the createTestEvent
defaults), the field-mapping departures, and the expected request per endpoint
form (entity, batch) and region.  See docs/mapping.md for how to refresh them.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from cdpio_cli import explain, mapping
from tests.cli_helpers import run_cli

DATA = Path(__file__).parent / "data" / "destination"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
DEFAULTS = json.loads((DATA / "create-test-event.json").read_text())["event"]


def load_cases() -> list[tuple[str, dict, dict]]:
    """(action, case, file) for every case of every action file in the manifest."""
    cases = []
    for entry in MANIFEST["files"]:
        data = json.loads((DATA / entry["file"]).read_text())
        for case in data["cases"]:
            cases.append((data["action"], case, data))
    return cases


CASES = load_cases()


def build_event(case: dict) -> dict:
    """createTestEvent(overrides): a top-level spread over the defaults."""
    event = {**copy.deepcopy(DEFAULTS), **copy.deepcopy(case["event"])}
    for key in case.get("unset", ()):
        event.pop(key, None)
    return event


def case_fields(action: str, case: dict) -> mapping.Fields:
    return mapping.fields_from_mapping(action, case.get("mapping"), case.get("unmapped", ()))


def check_body(actual: dict, expect: dict) -> None:
    if "absent" in expect:
        for key in expect["absent"]:
            assert key not in actual
        return
    wanted = expect["body"]
    if expect["compare"] == "subset":  # toMatchObject
        assert {k: actual.get(k) for k in wanted} == wanted
    else:  # toEqual / toStrictEqual
        assert actual == wanted


def test_manifest_covers_every_action_the_destination_has():
    actions = {json.loads((DATA / e["file"]).read_text())["action"] for e in MANIFEST["files"]}
    assert actions == set(mapping.ACTIONS) == set(mapping.ACTION_BUILDERS)
    assert MANIFEST["cases"] == len(CASES)
    for entry in MANIFEST["files"]:
        data = json.loads((DATA / entry["file"]).read_text())
        assert data["commit"] == MANIFEST["commit"] and len(data["cases"]) == entry["cases"]


@pytest.mark.parametrize("action,case,data", CASES, ids=[f"{a}: {c['name']}" for a, c, _ in CASES])
def test_mapping_agrees_with_the_destination_test(action, case, data):
    result = mapping.run_action(action, build_event(case), case_fields(action, case))
    expect = case["expect"]
    for run in data["runs"]:
        region = mapping.ACCOUNT_REGIONS.get(run["settings"].get("accountRegion"), "us")
        requests = mapping.track_requests(result, run["form"], region)
        if "error" in expect:
            # Upstream throws ("missing the required field ..."); nothing is sent in either form.
            assert not result.ok and result.drop_reason.startswith(f"MESSAGE_REJECTED: {action} requires")
            assert requests == []
            continue
        assert result.ok, result.drop_reason
        [(url, body)] = requests
        assert url == run["url"]
        if run["form"] == "batch" and result.endpoint == mapping.V2:
            [body] = body["batch"]
        check_body(body, expect)


@pytest.mark.parametrize("action,case,data", CASES, ids=[f"{a}: {c['name']}" for a, c, _ in CASES])
def test_explain_action_agrees_with_the_destination_test(action, case, data):
    """The library function behind `cdpio explain --action` gives the same operation."""
    exp = explain.explain_message(build_event(case), action=action, fields=case_fields(action, case))
    assert exp.action == action
    if "error" in case["expect"]:
        assert exp.dropped and exp.dropped_by == explain.DESTINATION
        return
    assert not exp.dropped, exp.drop_reason
    [op] = exp.to_details()["operations"]
    check_body(op, case["expect"])


def test_default_subscriptions_route_like_the_destination_presets():
    """presets.json: each automatic preset's trigger, from the destination's index.ts."""
    presets = json.loads((DATA / "presets.json").read_text())["presets"]
    seen = set()
    for preset in presets:
        action, subscribe = preset["partnerAction"], preset["subscribe"]
        seen.add(action)
        assert mapping.ACTIONS[action].title == preset["name"]
        if subscribe.startswith('type = "track" and '):
            excluded = re.findall(r'event != "([^"]*)"', subscribe)
            assert sorted(excluded) == sorted(mapping.SEMANTIC_EVENTS)
            msg = {"type": "track", "userId": "u", "event": "Anything Else"}
        elif subscribe.startswith("type = "):
            msg = {"type": subscribe.split('"')[1], "userId": "u"}
        else:
            for event in re.findall(r'event = "([^"]*)"', subscribe):
                assert mapping.SEMANTIC_EVENTS[event] == action
            continue
        assert mapping.map_message(msg).action == action
    assert seen == set(mapping.ACTIONS)


# --- `cdpio explain --action` in a subprocess, for a few actions -------------


@pytest.mark.parametrize("action", ["createUpdateDevice", "deleteRelationship"])
def test_cli_explain_action_gives_the_destination_bodies(tmp_path, action):
    """createTestEvent's messages are `track "Test Event"`, which the default
    subscriptions send to trackEvent: --action runs the named action instead."""
    cases = [c for a, c, _ in CASES if a == action and not c.get("mapping") and not c.get("unmapped")]
    path = tmp_path / f"{action}.ndjson"
    path.write_text("".join(json.dumps(build_event(c)) + "\n" for c in cases))
    res = run_cli("explain", "--action", action, "--json", str(path), cwd=tmp_path)
    doc = res.json
    assert doc["summary"]["action"] == action and doc["summary"]["messages"] == len(cases)
    assert [c["line"] for c in doc["checks"]] == list(range(1, len(cases) + 1))
    for case, check in zip(cases, doc["checks"], strict=False):
        assert check["id"] == action
        if "error" in case["expect"]:
            assert check["status"] == "warning" and check["details"]["dropped_by"] == "destination"
            continue
        assert check["status"] == "passed", check
        [op] = check["details"]["operations"]
        check_body(op, case["expect"])
    assert res.code == 0


def test_cli_explain_unknown_action_is_a_usage_error(tmp_path):
    path = tmp_path / "m.ndjson"
    path.write_text(json.dumps(DEFAULTS) + "\n")
    res = run_cli("explain", "--action", "trackEvents", "--json", str(path), cwd=tmp_path)
    assert res.code == 2
    assert "--action 'trackEvents' is not an action" in res.json["error"]["message"]
    assert "Traceback" not in res.stderr
