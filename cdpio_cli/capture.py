"""`send-test --capture DIR`: keep every raw App API response a delivery verdict
was made from, so one run against a real workspace can settle what the
published documents leave open (docs/contracts.md, "Captures").

One JSON file per response, written as it arrives (an interrupted run keeps
what it read): `NNN-<kind>.json` with the request (method, path, query) and
the response (status, headers, body).  Credentials never reach the files:
credential headers are dropped and every known secret is masked wherever it
appears (length and last four characters at most).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from cdpio_cli.errors import UsageError
from cdpio_cli.transport import mask_secrets

if TYPE_CHECKING:
    from cdpio_cli.keys import Answer

FORMAT = "cdpio-capture/1"
# Response headers that can carry a credential or a session.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-workspace-id"}
)
INDEX = "capture.json"


def prepare_dir(path: str, flag: str = "--capture") -> str:
    """The directory to write into (created if missing); UsageError when it cannot be."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(
            f"{flag} {path} is a file, not a directory", hint=f"pass {flag} with a directory, e.g. {flag} captures/"
        )
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(path) and not os.path.isdir(parent):
        raise UsageError(
            f"{flag} {path}: the directory {parent} does not exist",
            hint=f"create it (mkdir -p {parent}), or pass {flag} with a path in an existing directory",
        )
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot create the directory ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: the directory is not writable", hint=f"pass {flag} with a writable directory")
    return path


def kind_of(path: str) -> str:
    """`activities`, `attributes`, `customers`, `workspaces`: which contract a response answers."""
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return tail if tail in ("activities", "attributes", "customers", "workspaces") else "other"


class Capture:
    def __init__(self, directory: str, secrets: tuple[str, ...] = (), *, run_id: str | None = None):
        self.directory = directory
        self.secrets = tuple(s for s in secrets if s)
        self.run_id = run_id
        self.files: list[str] = []

    def _mask(self, value: Any) -> Any:
        return json.loads(mask_secrets(json.dumps(value), self.secrets))

    def add(self, method: str, path: str, params: dict[str, Any] | None, answer: Answer) -> None:
        """Record one App API answer."""
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in CREDENTIAL_HEADERS}
        body = answer.body if answer.body is not None else (answer.text or None)
        response: dict[str, Any] = {"status": answer.status, "headers": headers, "body": body}
        if answer.error:
            response["error"] = answer.error
        record = {
            "format": FORMAT,
            "kind": kind_of(path),
            "request": {"method": method, "path": path, "query": dict(params or {})},
            "response": response,
        }
        name = f"{len(self.files) + 1:03d}-{record['kind']}.json"
        with open(os.path.join(self.directory, name), "w", encoding="utf-8") as fh:
            json.dump(self._mask(record), fh, indent=1, sort_keys=True)
            fh.write("\n")
        self.files.append(name)

    def close(self) -> None:
        """Write the index: which run, which files."""
        index = {"format": FORMAT, "run_id": self.run_id, "responses": self.files}
        with open(os.path.join(self.directory, INDEX), "w", encoding="utf-8") as fh:
            json.dump(index, fh, indent=1)
            fh.write("\n")
