"""`lint --plan` output against another tree: byte-identical or not.

    .venv/bin/python benchmarks/plan_lint_compare.py BASE_TREE [WORK_DIR]

BASE_TREE is a checkout to compare with (e.g. `git archive main | tar -x -C
/tmp/plan-base`); this file's own tree is the other side.  Every case runs the
CLI once per tree (`PYTHONPATH=tree python -m cdpio_cli ...`) and compares the
`--json` report (run_id and durations removed), the human output (stdout and
stderr) and the exit code.  A `--json` case must have linted messages with the
plan (its summary names the plan), so a config error cannot pass for a match.

The cases: examples/ (the tracking plan on the example fixtures, broken.ndjson
with --max-per-rule 0); tests/data/lint with the example plan and with a strict
plan; a generated 100,000-line corpus where every plan/* rule fires (wrong
types, enums, formats, constraints, missing and unplanned keys, unplanned
events, plus bad JSON, batches and blank lines), with --max-per-rule 0, with
severities overridden and rules disabled in a config, with unplanned keys and
events allowed; a YAML file with NaN, infinity, integral floats and huge
integers; keys that are not strings (judged as they go on the wire).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent.parent

STRICT_PLAN = """\
events:
  Signed Up:
    properties:
      plan_type: {type: string, enum: [Free, Pro, Enterprise]}
      seats: {type: integer, minimum: 1}
      email: {type: string, format: email}
      tags: {type: array, items: {type: string}}
      coupon: {type: [string, "null"]}
      signup_at: {type: string, format: date-time, description: when}
    required: [plan_type, seats]
  Order Completed:
    properties:
      revenue: {type: number, minimum: 0}
      currency: {enum: [USD, EUR]}
      order_id: {type: string, pattern: "^o[0-9]+$"}
      products: {type: array}
      meta: {type: object, properties: {a: {type: integer}}, required: [a]}
      qty: {type: integer, enum: [1, 2, 3]}
    required: [order_id, revenue, legacy_id]
  Viewed Pricing: {}
  Clicked CTA:
    properties:
      cta_label: {type: string, maxLength: 12}
      position: {const: top}
identify:
  traits:
    email: {type: string, format: email}
    is_trial: {type: boolean}
    plan_type: {type: string, enum: [Free, Pro, Enterprise]}
    seats: {type: number}
    created_at: {type: string, format: date-time}
    firstName: {type: string, maxLength: 20}
  required: [email]
page:
  properties:
    url: {type: string, format: uri}
    title: {type: string}
  required: [url]
group:
  traits:
    name: {type: string}
  required: [name]
unplanned_events: error
unplanned_properties: warning
"""

EDGE_YAML = """\
- {type: track, userId: u1, event: Signed Up, properties: {plan_type: Pro, seats: 3.0}}
- {type: track, userId: u1, event: Signed Up, properties: {plan_type: Pro, seats: .nan}}
- {type: track, userId: u1, event: Signed Up, properties: {plan_type: Pro, seats: .inf}}
- {type: track, userId: u1, event: Signed Up, properties: {plan_type: Pro, seats: 123456789012345678901234567890}}
- {type: identify, userId: u1, traits: {email: a@b.co, seats: .nan}}
- {type: identify, userId: u1, traits: {email: a@b.co, seats: -.inf, is_trial: 1}}
- {type: track, userId: u1, event: Order Completed, properties: {order_id: o1, revenue: 1, legacy_id: 1, qty: 2.0}}
- {type: track, userId: u1, event: Order Completed, properties: {order_id: o1, revenue: 1, legacy_id: 1, qty: true}}
- {type: track, userId: u1, event: 5, properties: {a: 1}}
- {type: page, userId: u1}
- {type: group, userId: u1, groupId: g1, traits: [1, 2]}
"""

NON_STR_KEY_YAML = """\
- {type: track, userId: u1, event: Order Completed, properties: {order_id: o1, revenue: 1, legacy_id: 1, meta: {7: x}}}
- {type: track, userId: u1, event: Order Completed, properties: {order_id: o1, revenue: 1, 7: x}}
"""


def _signed_up(rnd: random.Random) -> dict[str, Any]:
    props: dict[str, Any] = {"plan_type": rnd.choice(["Free", "Pro", "Enterprise"]), "seats": rnd.randint(1, 50)}
    if rnd.random() < 0.5:
        props["email"] = f"user{rnd.randrange(10_000)}@example.com"
    if rnd.random() < 0.3:
        props["tags"] = ["a", "b"]
    if rnd.random() < 0.3:
        props["coupon"] = rnd.choice([None, "SPRING"])
    if rnd.random() < 0.3:
        props["signup_at"] = "2026-11-01T10:00:00Z"
    return props


def _order(rnd: random.Random) -> dict[str, Any]:
    props: dict[str, Any] = {"order_id": f"o{rnd.randrange(10**6)}", "revenue": round(rnd.random() * 100, 2)}
    props["legacy_id"] = rnd.choice([1, "L1", None])
    if rnd.random() < 0.5:
        props["currency"] = rnd.choice(["USD", "EUR"])
    if rnd.random() < 0.3:
        props["products"] = [{"sku": "a"}]
    if rnd.random() < 0.3:
        props["meta"] = {"a": 1}
    if rnd.random() < 0.3:
        props["qty"] = rnd.choice([1, 2, 3])
    return props


# Each mutation makes one plan/* rule (or an edge of one) fire.
_MUTATIONS = {
    "track": [
        lambda p: p.pop("seats", None),  # missing-required
        lambda p: p.update(seats="3"),  # wrong-type
        lambda p: p.update(seats=0),  # constraint (minimum)
        lambda p: p.update(seats=2.5),  # wrong-type (not an integer)
        lambda p: p.update(seats=True),  # wrong-type (a boolean)
        lambda p: p.update(plan_type="pro"),  # not-in-enum
        lambda p: p.update(plan_type=7),  # wrong-type over enum
        lambda p: p.update(email="ada"),  # format
        lambda p: p.update(signup_at="yesterday"),  # format
        lambda p: p.update(tags=["a", 1]),  # wrong-type inside an array
        lambda p: p.update(coupon=3),  # wrong-type of a type list
        lambda p: p.update(utm_source="ads"),  # unplanned-property
        lambda p: p.update(Plan_Type="Pro"),  # unplanned-property (a variant)
    ],
    "order": [
        lambda p: p.pop("legacy_id", None),  # missing-required (required-only key)
        lambda p: p.update(revenue=-1),  # constraint
        lambda p: p.update(order_id="X1"),  # constraint (pattern)
        lambda p: p.update(currency="usd"),  # not-in-enum without a type
        lambda p: p.update(currency=1),  # not-in-enum, a number
        lambda p: p.update(meta={"a": "1"}),  # nested wrong-type
        lambda p: p.update(meta={}),  # nested missing-required
        lambda p: p.update(products={"sku": "a"}),  # wrong-type
        lambda p: p.update(qty=4),  # not-in-enum (numbers)
        lambda p: p.update(coupon="X"),  # unplanned-property
    ],
    "identify": [
        lambda t: t.pop("email", None),
        lambda t: t.update(email="not-an-email"),
        lambda t: t.update(is_trial="true"),
        lambda t: t.update(plan_type="Gold"),
        lambda t: t.update(seats="3"),
        lambda t: t.update(created_at="2026-13-45"),
        lambda t: t.update(firstName="A" * 30),
        lambda t: t.update(company="Acme"),
    ],
    "page": [
        lambda p: p.pop("url", None),
        lambda p: p.update(url="not a uri"),
        lambda p: p.update(title=5),
        lambda p: p.update(referrer="x"),
    ],
}


def write_corpus(path: Path, n: int = 100_000, seed: int = 17) -> None:
    """n lines: mostly conforming messages, one in six mutated, plus bad lines."""
    rnd = random.Random(seed)
    with path.open("wb") as fh:
        for i in range(n):
            roll = rnd.random()
            if roll < 0.002:
                fh.write(b"{not json\n")
                continue
            if roll < 0.003:
                fh.write(b"\n")
                continue
            uid = f"user-{rnd.randrange(20_000)}"
            ts = f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.000Z"
            kind = rnd.choice(["signed", "order", "identify", "page", "cta", "pricing", "group", "other"])
            mutate = rnd.random() < 1 / 6
            if kind in ("signed", "order", "identify", "page"):
                msg = _planned(rnd, kind, uid, ts, mutate)
            else:
                msg = _other(rnd, kind, i, uid, ts)
            fh.write(orjson.dumps(msg) + b"\n")


def _planned(rnd: random.Random, kind: str, uid: str, ts: str, mutate: bool) -> dict[str, Any]:
    """A message of a planned kind, with one mutation when `mutate`."""
    if kind in ("signed", "order"):
        props = _signed_up(rnd) if kind == "signed" else _order(rnd)
        if mutate:
            rnd.choice(_MUTATIONS["track" if kind == "signed" else "order"])(props)
        event = "Signed Up" if kind == "signed" else "Order Completed"
        return {"type": "track", "userId": uid, "event": event, "timestamp": ts, "properties": props}
    if kind == "identify":
        traits: dict[str, Any] = {"email": f"{uid}@example.com", "is_trial": rnd.random() < 0.5}
        if rnd.random() < 0.5:
            traits.update(plan_type="Pro", seats=3, created_at="2026-10-01T00:00:00Z", firstName="Ada")
        if mutate:
            rnd.choice(_MUTATIONS["identify"])(traits)
        return {"type": "identify", "userId": uid, "timestamp": ts, "traits": traits}
    props = {"url": "https://example.com/pricing", "title": "Pricing"}
    if mutate:
        rnd.choice(_MUTATIONS["page"])(props)
    return {"type": "page", "userId": uid, "name": "Pricing", "timestamp": ts, "properties": props}


def _other(rnd: random.Random, kind: str, i: int, uid: str, ts: str) -> dict[str, Any]:
    """Planned events without mutations, groups, and unplanned events (some in batches)."""
    msg: dict[str, Any]
    if kind == "cta":
        props = {"cta_label": rnd.choice(["Start", "Buy now", "A much longer label"])}
        if rnd.random() < 0.5:
            props["position"] = rnd.choice(["top", "top", "bottom"])
        return {"type": "track", "userId": uid, "event": "Clicked CTA", "timestamp": ts, "properties": props}
    if kind == "pricing":
        pricing: dict[str, Any] = {} if rnd.random() < 0.7 else {"plan": "Pro"}
        msg = {"type": "track", "anonymousId": f"a{i}", "event": "Viewed Pricing", "timestamp": ts}
        if pricing or rnd.random() < 0.5:
            msg["properties"] = pricing
        return msg
    if kind == "group":
        traits = {"name": "Acme"} if rnd.random() < 0.8 else {"size": 3}
        return {"type": "group", "userId": uid, "groupId": "g1", "timestamp": ts, "traits": traits}
    event = rnd.choice(["Signed Upp", "signed up", "Totally New Event", f"Event {i % 50}", ""])
    msg = {"type": "track", "userId": uid, "event": event, "timestamp": ts, "properties": {"x": 1}}
    if rnd.random() < 0.1:
        msg = {"batch": [msg, {"type": "identify", "userId": uid, "traits": {"email": "x"}}]}
    return msg


def _normalise_json(text: str) -> Any:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("run_id", "duration_ms", "durations")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(json.loads(text))


_DURATION = re.compile(r"\b\d+(\.\d+)?\s?(ms|s)\b")


def run(tree: Path, args: list[str], cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PYTHONPATH=str(tree), COLUMNS="200", NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "cdpio_cli", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout, proc.stderr


def cases(work: Path) -> list[tuple[str, list[str]]]:
    ex = HERE / "examples"
    lint_files = sorted(str(p) for p in (HERE / "tests/data/lint").iterdir())
    fixtures = [str(p) for p in sorted((ex / "fixtures").iterdir()) if p.suffix in (".ndjson", ".yaml")]
    example_plan, strict = str(ex / "tracking-plan.yaml"), str(work / "strict-plan.yaml")
    allow = str(work / "allow-plan.yaml")
    corpus = str(work / "corpus.ndjson")
    out: list[tuple[str, list[str]]] = []
    for fmt in (["--json"], []):
        tag = "json" if fmt else "human"
        out += [
            (f"{tag} examples", [*fmt, "lint", *fixtures, "--plan", example_plan]),
            (
                f"{tag} broken all",
                [*fmt, "lint", str(ex / "fixtures/broken.ndjson"), "--plan", example_plan, "--max-per-rule", "0"],
            ),
            (
                f"{tag} tests/data example plan",
                [*fmt, "lint", *lint_files, "--plan", example_plan, "--max-per-rule", "0"],
            ),
            (f"{tag} tests/data strict plan", [*fmt, "lint", *lint_files, "--plan", strict, "--max-per-rule", "0"]),
            (f"{tag} corpus", [*fmt, "lint", corpus, "--plan", strict]),
            (f"{tag} corpus all", [*fmt, "lint", corpus, "--plan", strict, "--max-per-rule", "0"]),
            (f"{tag} corpus allow", [*fmt, "lint", corpus, "--plan", allow, "--max-per-rule", "0"]),
            (
                f"{tag} corpus severities",
                [
                    *fmt,
                    "--config",
                    str(work / "severities.yaml"),
                    "lint",
                    corpus,
                    "--plan",
                    strict,
                    "--max-per-rule",
                    "0",
                ],
            ),
            (
                f"{tag} corpus disabled",
                [
                    *fmt,
                    "--config",
                    str(work / "disabled.yaml"),
                    "lint",
                    corpus,
                    "--plan",
                    strict,
                    "--max-per-rule",
                    "0",
                ],
            ),
            (f"{tag} corpus plan from config", [*fmt, "--config", str(work / "with-plan.yaml"), "lint", corpus]),
            (f"{tag} edges", [*fmt, "lint", str(work / "edges.yaml"), "--plan", strict, "--max-per-rule", "0"]),
            (f"{tag} non-string key", [*fmt, "lint", str(work / "non-str-key.yaml"), "--plan", strict]),
        ]
    return out


def prepare(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / "strict-plan.yaml").write_text(STRICT_PLAN)
    allow = STRICT_PLAN.replace("unplanned_events: error", "unplanned_events: allow")
    (work / "allow-plan.yaml").write_text(allow.replace("unplanned_properties: warning", "unplanned_properties: allow"))
    (work / "edges.yaml").write_text(EDGE_YAML)
    (work / "non-str-key.yaml").write_text(NON_STR_KEY_YAML)
    (work / "severities.yaml").write_text(
        "version: 1\nlint:\n  severity: {plan/unplanned-property: error, plan/format: warning, "
        "plan/constraint: info, plan/unplanned-event: warning}\n  disable: [plan/not-in-enum]\n"
    )
    (work / "disabled.yaml").write_text(
        "version: 1\nlint:\n  disable: [plan/unplanned-property, plan/unplanned-event, plan/missing-required]\n"
    )
    (work / "with-plan.yaml").write_text("version: 1\nlint:\n  plan: strict-plan.yaml\n")
    if not (work / "corpus.ndjson").exists():
        write_corpus(work / "corpus.ndjson")


def main() -> int:
    base = Path(sys.argv[1]).resolve()
    work = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/plan-lint-compare").resolve()
    prepare(work)
    failures = 0
    all_cases = cases(work)
    for name, args in all_cases:
        rc_a, out_a, err_a = run(base, args, work)
        rc_b, out_b, err_b = run(HERE, args, work)
        same = rc_a == rc_b and _DURATION.sub("T", err_a) == _DURATION.sub("T", err_b)
        if out_a.lstrip().startswith("{"):
            ja, jb = _normalise_json(out_a), _normalise_json(out_b)
            same = same and ja == jb
            summary = ja.get("summary", {})
            plan_rules = {k: v for k, v in summary.get("by_rule", {}).items() if k.startswith("plan/")}
            linted = f"{summary.get('messages')} messages, plan {summary.get('plan')!r}, {plan_rules}"
            if "non-string" not in name and not (summary.get("messages") and summary.get("plan")):
                same, linted = False, f"did not lint with the plan: {out_a[:300]!r}"
        else:
            same = same and _DURATION.sub("T", out_a) == _DURATION.sub("T", out_b)
            linted = f"exit {rc_a}, {len(err_a)} bytes of stderr" + (
                f": {err_a.strip().splitlines()[-1][:120]}" if err_a.strip() else ""
            )
        failures += not same
        print(f"{'same' if same else 'DIFFERENT'}  {name}: {linted}", flush=True)
    print(f"{len(all_cases) - failures}/{len(all_cases)} cases identical")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
