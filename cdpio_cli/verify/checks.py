"""The `delivered` check for a polled target: what arrived, what did not, and how it was proven."""

from __future__ import annotations

from typing import Any

from cdpio_cli.errors import FailureKind
from cdpio_cli.keys import unreachable_hint
from cdpio_cli.results import Check, Status, Tier
from cdpio_cli.verify.app_api import AppApiError
from cdpio_cli.verify.target import EVIDENCE_TEXT, RUN_ID_KEY, Target
from cdpio_cli.verify.values import show


def missing_parts(target: Target) -> list[str]:
    """What has not shown up, in plain words."""
    out = []
    if target.person is None:
        out.append(f"no person with {target.who.replace('user ', 'id ')}")
        return out
    for key, (expected, actual) in target.trait_mismatches().items():
        if key == RUN_ID_KEY and target.run_id is not None:
            out.append(
                "this run's identify has not arrived (the person's cdpio_run_id is "
                + (f"{show(actual)}, an earlier run's)" if actual is not None else "not set)")
            )
            continue
        if actual is None:
            out.append(f"trait {key} missing (expected {show(expected)})")
        else:
            out.append(f"trait {key} is {show(actual)}, expected {show(expected)}")
    for token in target.missing_devices():
        out.append(f"device {show(token)} not registered")
    for expected in target.activities:
        if expected.found_at is None:
            text = f"{expected.label} not in the person's activities"
            notes = [expected.note] if expected.note else []
            if expected.earlier_only:
                notes.append("earlier runs' only")
            out.append(text + (f" ({'; '.join(notes)})" if notes else ""))
    return out


def found_parts(target: Target) -> str:
    parts = []
    if target.traits:
        parts.append(f"{len(target.traits)} trait{'s' if len(target.traits) != 1 else ''}")
    if target.activities:
        n = len(target.activities)
        parts.append(f"{n} event{'s' if n != 1 else ''}")
    if target.devices:
        parts.append(f"{len(target.devices)} device{'s' if len(target.devices) != 1 else ''}")
    return " with " + ", ".join(parts) if parts else ""


def app_error_hint(error: AppApiError, credential_hint: str) -> str:
    if error.failure == FailureKind.UNREACHABLE:
        return unreachable_hint(error.url, "check your network or proxy and retry; status page: status.customer.io")
    return credential_hint


def found_text(target: Target) -> str:
    """--verbose: which traits and events were found (names and activity ids, never values)."""
    found = target.found()
    parts = []
    if found.get("traits"):
        parts.append("traits " + ", ".join(found["traits"]))
    if found.get("events"):
        parts.append(
            "events "
            + ", ".join(
                e["label"]
                + (f" (activity {e['activity_id']})" if e.get("activity_id") else "")
                + (f" ({EVIDENCE_TEXT[e['matched_by']]})" if e.get("matched_by") in EVIDENCE_TEXT else "")
                for e in found["events"]
            )
        )
    if "run_id" in found:
        parts.append(f"all tagged {RUN_ID_KEY} {found['run_id']}")
    return "; ".join(parts)


def target_check(
    target: Target,
    *,
    check_id: str,
    route: str,
    timeout: float,
    causes: str | None = None,
    fix: str | None = None,
    nothing_head: str | None = None,
    verbose: bool = False,
) -> Check:
    """The `delivered` check for one target after polling."""
    took = target.seconds_to_delivery()
    details: dict[str, Any] = {"user_id": target.user_id, "email": target.email}
    if target.run_id is not None:
        details["run_id"] = target.run_id
    if took is not None:
        details["seconds_to_delivery"] = round(took, 3)
    found = target.found()
    if found.get("traits") or found.get("events") or found.get("devices"):
        details["found"] = found
    if took is not None:  # everything arrived (target.done)
        message = f"{target.who} is in Customer.io{found_parts(target)}, {took:.1f}s after sending"
        proofs = sorted({EVIDENCE_TEXT[a.evidence] for a in target.activities if a.evidence in EVIDENCE_TEXT})
        if proofs:
            details["evidence"] = proofs
            message += f" (events proven this run's: {', '.join(proofs)})"
        if verbose and found_text(target):
            message += f" (found: {found_text(target)})"
        return Check(
            id=check_id,
            route=route,
            tier=Tier.DELIVERED,
            status=Status.PASSED,
            message=message,
            duration_ms=took * 1000.0,
            details=details,
        )
    if target.error is not None:
        return Check(
            id=check_id,
            route=route,
            tier=Tier.DELIVERED,
            status=Status.FAILED,
            message=f"cannot verify delivery: {target.error.message}",
            http_status=target.error.status,
            failure=target.error.failure,
            hint=app_error_hint(
                target.error, "check customerio.app_api_key and customerio.region (`cdpio check-keys`)"
            ),
            details=details,
        )
    details["missing"] = missing_parts(target)
    message = _not_delivered_message(target, details["missing"], timeout, nothing_head, verbose)
    if causes:
        message += f". Likely causes: {causes}"
    return Check(
        id=check_id,
        route=route,
        tier=Tier.DELIVERED,
        status=Status.FAILED,
        message=message,
        failure=FailureKind.CHECK,
        hint=fix,
        details=details,
    )


def _not_delivered_message(
    target: Target, missing: list[str], timeout: float, nothing_head: str | None, verbose: bool
) -> str:
    """What did not arrive in time (and, with --verbose, what did)."""
    if target.nothing_arrived:
        head = f"{nothing_head or 'nothing arrived in Customer.io'} within {timeout:g}s"
        if target.person is not None:
            head += (
                f" ({target.who} is there, but nothing on it carries this run's "
                f"{RUN_ID_KEY} {target.run_id}: what it has came from earlier runs)"
            )
        head += ": "
    else:
        head = f"not everything arrived within {timeout:g}s: "
    message = head + "; ".join(missing)
    if verbose and found_text(target):
        message += f" (found: {found_text(target)})"
    if target.failed_attributes:
        message += "; Customer.io logged an Attribute Update Failure for " + ", ".join(target.failed_attributes)
    return message
