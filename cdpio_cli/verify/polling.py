"""Polling the App API until what was sent shows up.

Polling backs off exponentially from `poll_interval` up to 4x it, within one
overall deadline (delivery can take a while, so the budget is generous; a 404
for the person means "not yet": docs/contracts.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cdpio_cli.errors import FailureKind
from cdpio_cli.verify.app_api import AppApi, AppApiError
from cdpio_cli.verify.target import Target, activity_matches, failed_attribute_names, run_evidence

BACKOFF_FACTOR = 1.6
BACKOFF_CAP = 4.0  # the longest wait between polls, in poll intervals


def poll_once(api: AppApi, target: Target, now: Callable[[], float] = time.monotonic) -> None:
    """One look at the person; records what has arrived so far."""
    person = api.person(user_id=target.user_id, email=target.email if target.user_id is None else None)
    if person is None:
        return
    target.person = person
    if target.person_found_at is None:
        target.person_found_at = now()
    if target.traits_ok_at is None and not target.trait_mismatches():
        target.traits_ok_at = now()
    if target.devices_ok_at is None and not target.missing_devices():
        target.devices_ok_at = now()
    ref = person["_ref"]
    pending = [e for e in target.activities if e.found_at is None]
    refused: set[int] = set()
    # One unfiltered listing serves every expected activity: two reads per
    # person and poll, however many events; the order is not relied on.
    for page in api.activity_pages(ref) if pending else ():
        for activity in page:
            for expected in pending:
                if expected.found_at is not None or not activity_matches(activity, expected.type, expected.name):
                    continue
                evidence = run_evidence(target, activity)
                if evidence is None:
                    refused.add(id(expected))
                    continue
                expected.found_at = now()
                expected.evidence = evidence
                expected.found_id = str(activity["id"]) if activity.get("id") is not None else None
        if all(e.found_at is not None for e in pending):
            break
    for expected in pending:
        expected.earlier_only = expected.found_at is None and id(expected) in refused
    if target.traits_ok_at is None and target.trait_mismatches():
        # A 200 can end in an "Attribute Update Failure" (docs/contracts.md, identify).
        failures = api.activities(ref, type_="failed_attribute_change")
        target.failed_attributes = failed_attribute_names(failures)


def wait_for(
    api: AppApi,
    targets: list[Target],
    *,
    timeout: float,
    poll_interval: float,
    progress: Callable[[str], None] | None = None,
    now: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until every target is complete or `timeout` seconds have passed.

    Waits start at `poll_interval` and grow by 1.6x up to 4x it; the last wait
    is cut so the final look happens at the deadline.  A credential error
    stops polling at once (it will not fix itself).
    """
    start = now()
    deadline = start + max(0.0, timeout)
    interval = max(0.05, poll_interval)
    wait = interval
    polls = 0
    while True:
        polls += 1
        for target in targets:
            if target.done or (target.error and target.error.failure == FailureKind.CREDENTIAL):
                continue
            try:
                poll_once(api, target, now)
                target.error = None
            except AppApiError as exc:
                target.error = exc
        pending = [t for t in targets if not t.done and not (t.error and t.error.failure == FailureKind.CREDENTIAL)]
        if not pending:
            return
        remaining = deadline - now()
        if remaining <= 0:
            return
        if progress:
            progress(
                f"waiting for {', '.join(t.key for t in pending)} in Customer.io "
                f"({now() - start:.0f}s of {timeout:.0f}s, poll {polls})"
            )
        sleep(min(wait, remaining))
        wait = min(wait * BACKOFF_FACTOR, interval * BACKOFF_CAP)
