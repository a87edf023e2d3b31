"""A Segment Protocols tracking plan, fetched through the Segment Public API, as a cdpio plan (`cdpio plan pull`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cdpio_cli import results
from cdpio_cli.errors import UsageError
from cdpio_cli.plan.load import parse_plan
from cdpio_cli.plan.write import dump_plan

if TYPE_CHECKING:
    from cdpio_cli.keys import ServiceHttp
    from cdpio_cli.settings import Settings

# Segment Public API rule types (https://docs.segmentapis.com/tag/Tracking-Plans):
# each rule's jsonSchema describes the whole message; the part we keep is
# properties.properties (track, page, screen) or properties.traits (identify, group).
_SEGMENT_TYPES = {
    "TRACK": ("events", "properties"),
    "IDENTIFY": ("identify", "traits"),
    "GROUP": ("group", "traits"),
    "PAGE": ("page", "properties"),
    "SCREEN": ("screen", "properties"),
}


def _segment_part(schema: dict, fld: str) -> dict:
    part = ((schema or {}).get("properties") or {}).get(fld) or {}
    out: dict[str, Any] = {fld: dict(part.get("properties") or {})}
    if part.get("required"):
        out["required"] = sorted(part["required"])
    return out


def plan_from_segment_rules(rules: Iterable[dict]) -> tuple[dict, list[str]]:
    """Segment tracking-plan rules -> (plan data, notes about what was left out)."""
    data: dict[str, Any] = {"events": {}}
    notes: list[str] = []
    for rule in rules:
        rtype = str(rule.get("type") or "").upper()
        if rule.get("deprecatedAt"):
            notes.append(f"left out the deprecated {rtype} rule {rule.get('key') or ''}".rstrip())
            continue
        target = _SEGMENT_TYPES.get(rtype)
        if target is None:
            notes.append(f"left out a {rtype or 'typeless'} rule (cdpio plans have no equivalent)")
            continue
        section, fld = target
        part = _segment_part(rule.get("jsonSchema") or {}, fld)
        if section == "events":
            key = rule.get("key")
            if not key:
                notes.append("left out a TRACK rule without a key (event name)")
                continue
            data["events"][str(key)] = part
        else:
            data[section] = part
    data["unplanned_events"] = "error"
    data["unplanned_properties"] = "warning"
    return data, notes


def fetch_segment_plan(
    settings: Settings, http: ServiceHttp, plan_id: str | None, *, page_size: int = 200
) -> tuple[dict[str, Any], str, list[Any]]:
    """(tracking plan metadata, plan id, rules) through the Segment Public API:
    GET /tracking-plans (to pick one when no id is given), GET
    /tracking-plans/{id} and every page of GET /tracking-plans/{id}/rules."""
    from cdpio_cli.errors import CredentialError, UnreachableError

    base = settings.endpoint("segment_api")
    headers = {
        "Authorization": f"Bearer {settings.segment.public_api_token}",
        "Accept": "application/vnd.segment.v1+json",
    }

    def get(path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = http.call("GET", f"{base}{path}", headers=headers, params=params)
        if answer.status in (401, 403):
            raise CredentialError(
                f"the Segment Public API rejected segment.public_api_token ({answer.status})",
                hint="the token needs the Protocols read permission (Workspace Member or Tracking Plan Read-only)",
            )
        if answer.status == 404:
            raise UsageError(
                f"the Segment Public API has no {path}",
                hint="list the plans with `cdpio plan pull` (no id) and pass one of their ids",
            )
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise UnreachableError(f"the Segment Public API GET {path} answered {answer.status or answer.error}")
        data = answer.body.get("data")
        return data if isinstance(data, dict) else {}

    def pages(path: str, key: str) -> list[Any]:
        items: list[Any] = []
        cursor = None
        for _ in range(10_000):
            params: dict[str, Any] = {"pagination.count": page_size}
            if cursor:
                params["pagination.cursor"] = cursor
            data = get(path, params)
            items.extend(data.get(key) or [])
            cursor = (data.get("pagination") or {}).get("next")
            if not cursor:
                break
        return items

    if not plan_id:
        plans = pages("/tracking-plans", "trackingPlans")
        live = [p for p in plans if p.get("type") in (None, "LIVE")]
        if len(live) != 1:
            names = ", ".join(f"{p.get('id')} ({p.get('name')})" for p in live[:10]) or "none"
            raise UsageError(
                f"the workspace has {len(live)} live tracking plans: {names}", hint="pass the one to pull with --id"
            )
        plan_id = str(live[0].get("id"))
    meta = get(f"/tracking-plans/{plan_id}").get("trackingPlan") or {}
    rules = pages(f"/tracking-plans/{plan_id}/rules", "rules")
    return meta, plan_id, rules


def pulled_plan(meta: dict, plan_id: str, rules: list) -> tuple[dict, str, results.Report]:
    """(plan data, its YAML, `cdpio plan pull`'s report) for a fetched Segment
    tracking plan; the converted plan must load like any plan file."""
    data, left_out = plan_from_segment_rules(rules)
    if meta.get("name"):
        data = {"name": str(meta["name"]), **data}
    parse_plan(data, f"Segment tracking plan {plan_id}")
    header = [
        f"Tracking plan pulled by `cdpio plan pull` from Segment Protocols plan {plan_id}"
        + (f" ({meta.get('name')})" if meta.get("name") else ""),
        f"{len(rules)} rule(s); updated {meta.get('updatedAt') or 'unknown'}.",
    ]
    text = dump_plan(data, header=header + [n[0].upper() + n[1:] + "." for n in left_out])
    report = results.Report(command="plan pull")
    report.add(
        results.Check(
            id="plan.pull",
            route="segment",
            tier=results.Tier.AUTHENTICATED,
            status=results.Status.PASSED,
            message=f"{len(rules)} rule(s) of tracking plan {plan_id}: {len(data['events'])} "
            "event(s)" + (f"; {len(left_out)} left out" if left_out else ""),
        )
    )
    report.summary.update({"tracking_plan_id": plan_id, "rules": len(rules), "left_out": left_out})
    return data, text, report
