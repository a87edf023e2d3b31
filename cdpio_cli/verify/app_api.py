"""Reading Customer.io's App API: people and their activities, at most 10 requests in any second.

Only documented App API behaviour is relied on (docs/contracts.md, "Customer.io
App API"): `next` is followed until the activity is found or the list ends (a
missing, empty or null `next`), at most 10 requests in any second (the App
API's documented rate limit).  Unknown fields are ignored.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from cdpio_cli import limits
from cdpio_cli.errors import FailureKind

if TYPE_CHECKING:
    from cdpio_cli.capture import Capture
    from cdpio_cli.keys import Answer, ServiceHttp

# getPersonActivities `limit` max 100 (docs/contracts.md); the rate limit is
# limits.APP_API_RATE.  A lookup follows `next` for at most this many pages per poll.
ACTIVITY_PAGE_LIMIT = 100
MAX_ACTIVITY_PAGES = 50


class AppApiError(Exception):
    """The App API refused (credential) or could not be reached."""

    def __init__(self, message: str, failure: FailureKind, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.message = message
        self.failure = failure
        self.status = status
        self.url = url  # the App API base URL (no secrets)


class RateWindow:
    """At most `rate` calls in any `window`-second window (the App API's limit is
    stated per second), so a handful of reads never waits at all."""

    def __init__(
        self,
        rate: int = limits.APP_API_RATE,
        *,
        window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = rate
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self.recent: deque[float] = deque()

    def wait(self) -> None:
        now = self.clock()
        while self.recent and now - self.recent[0] >= self.window:
            self.recent.popleft()
        if len(self.recent) >= self.rate:
            self.sleep(self.window - (now - self.recent[0]))
            self.recent.popleft()
        self.recent.append(self.clock())


class AppApi:
    """Thin App API reader over the shared transport (keys.ServiceHttp)."""

    def __init__(self, http: ServiceHttp, base_url: str, app_api_key: str, *, capture: Capture | None = None):
        self.http = http
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {app_api_key}", "Accept": "application/json"}
        self.calls = 0
        # The server counts arrivals: a request sent 1.0 s after the tenth may
        # arrive before a slow first one did.  A tenth of a second of slack
        # keeps every second under the limit (tests/test_campaigns.py counts).
        self.limit = RateWindow(window=1.1)
        self.capture = capture  # capture.Capture: every response, for send-test --capture

    def _get(self, path: str, params: dict | None = None) -> Answer:
        self.calls += 1
        self.limit.wait()
        answer = self.http.call("GET", f"{self.base}{path}", headers=self.headers, params=params)
        if self.capture is not None:
            self.capture.add("GET", path, params, answer)
        if answer.status in (401, 403):
            raise AppApiError(
                f"the App API rejected the key ({answer.status}); a key from another "
                "region or workspace, or a send-only key, cannot read people",
                FailureKind.CREDENTIAL,
                answer.status,
                self.base,
            )
        if answer.status is None or answer.status >= 500:
            raise AppApiError(
                "could not read the App API: " + (answer.error or f"it answered {answer.status}"),
                FailureKind.UNREACHABLE,
                answer.status,
                self.base,
            )
        return answer

    def person(self, *, user_id: str | None = None, email: str | None = None) -> dict | None:
        """The person's `customer` object (attributes, devices...), or None if not (yet) there."""
        if user_id is not None:
            ref = (user_id, "id")
        else:
            answer = self._get("/v1/customers", {"email": email})
            results = (answer.body or {}).get("results") if isinstance(answer.body, dict) else None
            if answer.status != 200 or not results:
                return None
            first = results[0] if isinstance(results[0], dict) else {}
            if first.get("cio_id"):
                ref = (str(first["cio_id"]), "cio_id")
            elif first.get("id"):
                ref = (str(first["id"]), "id")
            else:
                return None
        answer = self._get(f"/v1/customers/{quote(ref[0], safe='')}/attributes", {"id_type": ref[1]})
        if answer.status != 200 or not isinstance(answer.body, dict):
            return None  # 404: not there yet
        customer = answer.body.get("customer")
        if not isinstance(customer, dict):
            return None
        customer["_ref"] = ref
        return customer

    def activity_pages(
        self, ref: tuple[str, str], *, type_: str | None = None, name: str | None = None
    ) -> Iterator[list[dict]]:
        """Each page of the person's activities, following the opaque `next`
        cursor (sent back as `start`) until it is missing, empty or null."""
        params: dict[str, Any] = {"id_type": ref[1], "limit": ACTIVITY_PAGE_LIMIT}
        if type_:
            params["type"] = type_
        if name:
            params["name"] = name
        seen: set[str] = set()
        for _ in range(MAX_ACTIVITY_PAGES):
            answer = self._get(f"/v1/customers/{quote(ref[0], safe='')}/activities", params)
            if answer.status != 200 or not isinstance(answer.body, dict):
                return
            items = answer.body.get("activities")
            yield [a for a in items if isinstance(a, dict)] if isinstance(items, list) else []
            cursor = answer.body.get("next")
            if not isinstance(cursor, str) or not cursor or cursor in seen:
                return
            seen.add(cursor)
            params["start"] = cursor

    def activities(self, ref: tuple[str, str], *, type_: str | None = None, name: str | None = None) -> list[dict]:
        """Every page of the person's activities (bounded by MAX_ACTIVITY_PAGES)."""
        return [a for page in self.activity_pages(ref, type_=type_, name=name) for a in page]
