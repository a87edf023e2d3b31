"""Regenerate the vendor-schema subsets in tests/contracts/schemas/ from
Customer.io's published OpenAPI documents.

    python tests/contracts/extract_schemas.py journeys-track.json pipelines.json

(download them from https://docs.customer.io/files/journeys-track.json and
https://docs.customer.io/files/pipelines.json).  Each subset keeps the
published document's structure, so a JSON pointer into the subset is the same
pointer into the published file: `#/paths/~1api~1v2~1entity/post/...` cites
journeys-track.json at that pointer.  Only the paths cdpio calls are kept,
with every component they reference.  The tests never need the originals.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent / "schemas"

TRACK_PATHS = {
    "/api/v1/accounts/region": ["get"],
    "/api/v1/customers/{identifier}": ["put"],
    "/api/v1/customers/{identifier}/devices": ["put"],
    "/api/v1/customers/{identifier}/events": ["post"],
    "/api/v1/events": ["post"],
    "/api/v1/merge_customers": ["post"],
    "/api/v1/metrics": ["post"],
    "/api/v2/entity": ["post"],
    "/api/v2/batch": ["post"],
}
TRACK_COMPONENTS = ["activityObject", "customer_identifiers", "customer_id"]


def _refs(node, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def subset(doc: dict, published: str, paths: dict[str, list[str]] | None, components: list[str]) -> dict:
    kept_paths = {}
    for path, methods in (paths or doc["paths"]).items():
        item = doc["paths"][path]
        kept_paths[path] = {m: item[m] for m in (methods or item) if m in item}
    schemas = doc["components"]["schemas"]
    wanted: set[str] = set(components)
    _refs(kept_paths, wanted)
    done: set[str] = set()
    while wanted - done:
        name = sorted(wanted - done)[0]
        done.add(name)
        _refs(schemas[name], wanted)
    return {
        "$comment": f"A subset of Customer.io's published {published} (openapi "
        f"{doc.get('openapi')}, info.version {doc.get('info', {}).get('version')}), "
        "unmodified; pointers are the published document's. "
        "Regenerate with tests/contracts/extract_schemas.py.",
        "x-source": f"https://docs.customer.io/files/{published}",
        "info": doc.get("info", {}),
        "paths": kept_paths,
        "components": {"schemas": {k: schemas[k] for k in sorted(done)}},
    }


def main(track_file: str, pipelines_file: str) -> None:
    track = json.loads(Path(track_file).read_text())
    pipelines = json.loads(Path(pipelines_file).read_text())
    out = {
        "journeys-track.subset.json": subset(track, "journeys-track.json", TRACK_PATHS, TRACK_COMPONENTS),
        "pipelines.subset.json": subset(pipelines, "pipelines.json", None, []),
    }
    for name, doc in out.items():
        (HERE / name).write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
