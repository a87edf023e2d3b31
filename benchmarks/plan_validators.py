"""Which JSON Schema validator checks tracking-plan rules fastest?

    .venv/bin/python benchmarks/plan_validators.py [N]      (default 100,000 objects)

Validates N event-property objects (90% valid, 10% with one violation) against
one compiled per-event schema, as `lint --plan` does, with each maintained
validator on PyPI: jsonschema (pure Python), fastjsonschema (generates Python
code) and jsonschema-rs (Rust).  Prints objects/s and the compile time; the
fastest with format checking (email, date-time) is the one cdpio uses
(cdpio_cli/plan/check.py).  The optional validators are skipped when not installed.
"""

from __future__ import annotations

import random
import sys
import time

SCHEMA = {
    "type": "object",
    "properties": {
        "plan_type": {"type": "string", "enum": ["Free", "Pro", "Enterprise"]},
        "email": {"type": "string", "format": "email"},
        "signed_up_at": {"type": "string", "format": "date-time"},
        "seats": {"type": "integer", "minimum": 1},
        "is_trial": {"type": "boolean"},
        "referrer": {"type": "string"},
    },
    "required": ["plan_type", "email"],
}


def objects(n: int) -> list[dict]:
    rnd = random.Random(7)
    out = []
    for i in range(n):
        obj = {
            "plan_type": rnd.choice(["Free", "Pro", "Enterprise"]),
            "email": f"user{i}@example.com",
            "signed_up_at": "2026-11-01T10:00:00.000Z",
            "seats": 1 + i % 20,
            "is_trial": i % 3 == 0,
            "referrer": "google",
        }
        if i % 10 == 9:  # one violation in ten
            obj[rnd.choice(["plan_type", "seats", "email"])] = rnd.choice(["pro", 0, "not an email"])
        out.append(obj)
    return out


def candidates():
    import jsonschema

    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    v = jsonschema.Draft202012Validator(SCHEMA, format_checker=checker)
    yield "jsonschema", lambda: jsonschema.Draft202012Validator(SCHEMA, format_checker=checker), v.is_valid
    try:
        import fastjsonschema
    except ImportError:
        print("fastjsonschema: not installed (pip install fastjsonschema)")
    else:
        validate = fastjsonschema.compile(SCHEMA)

        def is_valid(obj, validate=validate, exc=fastjsonschema.JsonSchemaException):
            try:
                validate(obj)
                return True
            except exc:
                return False

        yield "fastjsonschema", lambda: fastjsonschema.compile(SCHEMA), is_valid
    try:
        import jsonschema_rs
    except ImportError:
        print("jsonschema-rs: not installed")
    else:
        v = jsonschema_rs.validator_for(SCHEMA, validate_formats=True)
        yield "jsonschema-rs", lambda: jsonschema_rs.validator_for(SCHEMA, validate_formats=True), v.is_valid


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    data = objects(n)
    expected_invalid = sum(1 for i in range(n) if i % 10 == 9)
    print(f"{n:,} objects, {expected_invalid:,} with one violation")
    results = []
    for name, compile_, is_valid in candidates():
        t0 = time.perf_counter()
        compile_()
        compile_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        invalid = sum(1 for obj in data if not is_valid(obj))
        took = time.perf_counter() - t0
        results.append((name, n / took, compile_ms, invalid))
    best = max(r[1] for r in results)
    for name, rate, compile_ms, invalid in sorted(results, key=lambda r: -r[1]):
        # A validator that misses violations (e.g. no format checks) is not a candidate.
        agrees = "ok" if invalid == expected_invalid else f"found {invalid:,} invalid: formats not checked?"
        print(
            f"{name:15s} {rate:>12,.0f} objects/s  ({rate / best:5.2f}x of best)  "
            f"compile {compile_ms:7.2f} ms  {agrees}"
        )


if __name__ == "__main__":
    main()
