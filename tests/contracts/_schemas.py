"""Load the in-repo vendor contracts (tests/contracts/schemas/) as validators.

`validator(doc, pointer)` validates against the schema at `pointer` inside
one of the schema documents; for the `*.subset.json` files the pointer is the
published document's own (see extract_schemas.py).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema", reason="the contract tests need the `test` extra (jsonschema)")

from referencing import Registry, Resource  # noqa: E402  (installed with jsonschema)
from referencing.jsonschema import DRAFT202012  # noqa: E402

SCHEMAS = Path(__file__).parent / "schemas"
TRACK = "journeys-track.subset.json"
PIPELINES = "pipelines.subset.json"
APP = "app-api.json"
CAMPAIGNS = "app-api-campaigns.json"  # segments, campaigns, actions, messages


def _any_of(node):
    """The published documents use `oneOf` where branches overlap: an identify
    with both userId and anonymousId is a "Known User" and an "Anonymous User"
    (pipelines.json #/components/schemas/identify), and attribute-change data
    matches both data shapes (journeys-track.json
    #/components/schemas/activityObject/properties/data).  Read strictly, valid
    messages fail; so `oneOf` is read as `anyOf` (at least one branch holds)."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_any_of(v) for v in node]
    return node


@cache
def _document(name: str) -> dict:
    return _any_of(json.loads((SCHEMAS / name).read_text()))


@cache
def _registry() -> Registry:
    resources = [
        (f"urn:cdpio:{name}", Resource.from_contents(_document(name), default_specification=DRAFT202012))
        for name in (TRACK, PIPELINES, APP, CAMPAIGNS)
    ]
    return Registry().with_resources(resources)


@cache
def validator(name: str, pointer: str):
    """A Draft 2020-12 validator for `#pointer` in schema document `name`."""
    schema = {"$ref": f"urn:cdpio:{name}#{pointer}"}
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def problems(name: str, pointer: str, instance) -> list[str]:
    """Every way `instance` breaks the contract, as readable lines (empty: it holds)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
        for e in validator(name, pointer).iter_errors(instance)
    ]


def limits(name: str = APP) -> dict:
    return _document(name)["x-limits"]


def pointer_for(path: str, method: str, *parts: str) -> str:
    """`#/paths/<escaped path>/<method>/...`, the published document's pointer."""
    escaped = path.replace("~", "~0").replace("/", "~1")
    return "/".join(["", "paths", escaped, method, *parts])


def request_body_pointer(path: str, method: str = "post") -> str:
    return pointer_for(path, method, "requestBody", "content", "application~1json", "schema")


CONTRACT_FOR = {
    "activities": "/$defs/activitiesResponse",
    "attributes": "/$defs/attributesResponse",
    "customers": "/$defs/customersByEmailResponse",
    "workspaces": "/$defs/workspacesResponse",
}


def capture_problems(record: dict) -> list[str]:
    """How one `send-test --capture` file breaks the contract for its kind
    (an error answer must hold to the error envelope)."""
    status, body = record["response"]["status"], record["response"]["body"]
    if status == 200 and record["kind"] in CONTRACT_FOR:
        return problems(APP, CONTRACT_FOR[record["kind"]], body)
    if status is not None and status >= 400 and isinstance(body, dict) and "errors" in body:
        return problems(APP, "/$defs/errorEnvelope", body)
    return []
